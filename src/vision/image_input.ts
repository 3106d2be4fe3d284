// Images as callers give them -> RGBA: raw RGBA arrays ({width, height, data}), ImageBitmap
// (drawn on an OffscreenCanvas, read back with getImageData), or encoded bytes (Blob,
// ArrayBuffer, Uint8Array: decoded with createImageBitmap). Typed errors: undecodable
// input -> ImageDecodeError; more pixels than the configured limit -> ImageTooLargeError.
import { ImageDecodeError, ImageTooLargeError } from '../errors.ts';
import type { RgbaImage } from './preprocess.ts';

export type ImageInput = RgbaImage | ImageBitmap | Blob | ArrayBuffer | Uint8Array;

/** Default limit on decoded pixels per image (the processor downsizes to 2048 px anyway). */
export const DEFAULT_MAX_IMAGE_PIXELS = 8192 * 8192;

function isRgba(x: unknown): x is RgbaImage {
  return typeof x === 'object' && x !== null && 'data' in x && 'width' in x && 'height' in x && !(x instanceof Blob);
}

function checkSize(width: number, height: number, maxPixels: number, index: number): void {
  if (width * height > maxPixels) throw new ImageTooLargeError(index, width, height, maxPixels);
}

export async function toRgba(input: ImageInput, index: number, maxPixels = DEFAULT_MAX_IMAGE_PIXELS): Promise<RgbaImage> {
  if (isRgba(input)) {
    const { width, height, data } = input;
    if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) throw new ImageDecodeError(index, `width and height must be positive integers (got ${width} x ${height})`);
    checkSize(width, height, maxPixels, index);
    if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray) || data.length !== width * height * 4) throw new ImageDecodeError(index, `RGBA data must be ${width * height * 4} bytes (u8 [height, width, 4]), got ${(data as { length?: number })?.length}`);
    return input;
  }
  let bitmap: ImageBitmap;
  let owned = false;
  if (typeof ImageBitmap !== 'undefined' && input instanceof ImageBitmap) bitmap = input;
  else {
    if (typeof createImageBitmap === 'undefined') throw new ImageDecodeError(index, 'createImageBitmap is not available here; pass RGBA arrays');
    const blob = input instanceof Blob ? input : new Blob([input as BlobPart]);
    try {
      bitmap = await createImageBitmap(blob, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
    } catch (e) {
      throw new ImageDecodeError(index, (e as Error)?.message ?? String(e));
    }
    owned = true;
  }
  try {
    checkSize(bitmap.width, bitmap.height, maxPixels, index);
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const g = canvas.getContext('2d', { willReadFrequently: true });
    if (!g) throw new ImageDecodeError(index, 'no 2d context on OffscreenCanvas');
    g.drawImage(bitmap, 0, 0);
    const d = g.getImageData(0, 0, bitmap.width, bitmap.height);
    return { width: d.width, height: d.height, data: d.data };
  } finally {
    if (owned) bitmap.close();
  }
}
