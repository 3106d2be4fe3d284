// Image preprocessing, as pure math on RGBA arrays (testable in Node).
// Idefics3 / SmolVLM (do_image_splitting): alpha over white -> resize longest edge to
//   `longestEdge` (aspect kept, short side even) -> resize up to multiples of the tile size
//   -> split into rows x cols tiles (row-major) plus a global view resized to one tile
//   -> rescale (1/255) -> normalize (mean/std). A 512 px (or smaller) result is a single
//   global tile (rows = cols = 0), as in HF's Idefics3ImageProcessor.
// Gemma 3 (no splitting): alpha over white -> resize to tile x tile, aspect not kept
//   (Gemma3ImageProcessor, pan-and-scan off) -> rescale -> normalize; one tile per image.
// Resampling is PIL-style and separable (Lanczos-3, bilinear or bicubic as the processor's
// `resample` says; antialiased when shrinking, 8-bit rounding after each pass), so results
// are within ~1 LSB of PIL's.
// Layout: RgbaImage.data u8 [height, width, 4]; output pixels f32 [tiles, 3, tile, tile].
// Differences from HF: alpha is composited before resizing (equal for opaque images);
// Idefics3 with do_image_splitting = false resizes to one square tile (HF pads instead).
import { InvalidArgumentError } from '../errors.ts';
import type { ImageProcessorConfig, Resample } from '../model/vision_config.ts';

export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
}

export interface PreprocessedImage {
  /** f32 [tiles, 3, tileSize, tileSize]: the rows x cols tiles (row-major), then the global view. */
  pixels: Float32Array;
  tiles: number;
  /** Tile grid (0 x 0 when the image is one global tile). */
  rows: number;
  cols: number;
  tileSize: number;
  /** Qwen2-VL processors: the patch grid (rows, cols of patches) of the resized image; pixels are its flattened patches. */
  grid?: { h: number; w: number };
}

/** HF's rescale-to-max-len: longest edge -> maxLen, short side int() and made even; then capped at 4096. */
export function resizeForLongestEdge(height: number, width: number, maxLen: number): [number, number] {
  const aspect = width / height;
  let h = height, w = width;
  if (w >= h) {
    w = maxLen;
    h = Math.trunc(w / aspect);
    if (h % 2) h++;
  } else {
    h = maxLen;
    w = Math.trunc(h * aspect);
    if (w % 2) w++;
  }
  h = Math.max(h, 1), w = Math.max(w, 1);
  const cap = 4096; // HF MAX_IMAGE_SIZE
  const a2 = w / h;
  if (w >= h && w > cap) (w = cap), (h = Math.trunc(w / a2));
  else if (h > w && h > cap) (h = cap), (w = Math.trunc(h * a2));
  return [Math.max(h, 1), Math.max(w, 1)];
}

/** HF's resize_for_vision_encoder: both sides up to multiples of the tile size (aspect from the long side). */
export function resizeForTiles(height: number, width: number, tile: number): [number, number] {
  const aspect = width / height;
  let h: number, w: number;
  if (width >= height) {
    w = Math.ceil(width / tile) * tile;
    h = Math.ceil(Math.trunc(w / aspect) / tile) * tile;
  } else {
    h = Math.ceil(height / tile) * tile;
    w = Math.ceil(Math.trunc(h * aspect) / tile) * tile;
  }
  return [Math.max(h, tile), Math.max(w, tile)];
}

/** Tile grid and tile count an image of this size gets (without touching pixels). */
export function tileLayout(height: number, width: number, p: ImageProcessorConfig): { rows: number; cols: number; tiles: number; resized: [number, number] } {
  if (!p.doSplit) return { rows: 0, cols: 0, tiles: 1, resized: [p.tileSize, p.tileSize] };
  let [h, w] = p.doResize ? resizeForLongestEdge(height, width, p.longestEdge) : [height, width];
  [h, w] = resizeForTiles(h, w, p.tileSize);
  if (h > p.tileSize || w > p.tileSize) {
    const rows = h / p.tileSize, cols = w / p.tileSize;
    return { rows, cols, tiles: rows * cols + 1, resized: [h, w] };
  }
  return { rows: 0, cols: 0, tiles: 1, resized: [h, w] };
}

function lanczos(x: number): number {
  if (x === 0) return 1;
  if (x <= -3 || x >= 3) return 0;
  const px = Math.PI * x;
  return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
}

/** PIL's triangle filter (BILINEAR). */
function triangle(x: number): number {
  x = Math.abs(x);
  return x < 1 ? 1 - x : 0;
}

/** PIL's cubic filter (BICUBIC, a = -0.5). */
function cubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Each filter with its support in input pixels at scale 1 (PIL's filter table). */
const FILTERS: Record<Resample, { f: (x: number) => number; support: number }> = {
  lanczos: { f: lanczos, support: 3 },
  bilinear: { f: triangle, support: 1 },
  bicubic: { f: cubic, support: 2 },
};

/**
 * Integer arithmetic of a resampling pass: 'pil' rounds each f64 sum (within ~1 LSB of PIL's
 * 22-bit fixed point); 'torchvision' follows torch's antialiased uint8 kernels (what
 * torchvision's resize runs on uint8 tensors, as Qwen2VLImageProcessorFast does): the
 * normalized weights become int16 with as many fraction bits as the axis' largest weight
 * allows (below 2^15), sums start at half an LSB and are shifted down, then clamped.
 */
export type ResampleArithmetic = 'pil' | 'torchvision';

/** One resampling pass along an axis (PIL ImagingResample coefficients), u8 in and out. */
function resamplePass(src: Uint8Array, inW: number, inH: number, outLen: number, horizontal: boolean, resample: Resample, arith: ResampleArithmetic = 'pil'): Uint8Array {
  const inLen = horizontal ? inW : inH;
  const { f: filter, support: base } = FILTERS[resample];
  const scale = inLen / outLen, fscale = Math.max(scale, 1), support = base * fscale;
  const outW = horizontal ? outLen : inW, outH = horizontal ? inH : outLen;
  const dst = new Uint8Array(outW * outH * 4);
  const spans: { lo: number; w: number[]; sum: number }[] = [];
  let wMax = 0;
  for (let o = 0; o < outLen; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inLen);
    const w: number[] = [];
    let sum = 0;
    for (let i = lo; i < hi; i++) {
      const v = filter((i - center + 0.5) / fscale);
      w.push(v), (sum += v);
    }
    for (const v of w) wMax = Math.max(wMax, v / (sum || 1));
    spans.push({ lo, w, sum: sum || 1 });
  }
  let bits = 0;
  if (arith === 'torchvision') {
    while (bits < 15 && Math.trunc(0.5 + wMax * 2 ** (bits + 1)) < 2 ** 15) bits++;
    for (const sp of spans) {
      sp.w = sp.w.map((v) => v / sp.sum).map((v) => (v < 0 ? Math.trunc(v * 2 ** bits - 0.5) : Math.trunc(v * 2 ** bits + 0.5)));
      sp.sum = 1;
    }
  }
  const lines = horizontal ? inH : inW;
  for (let o = 0; o < outLen; o++) {
    const { lo, w, sum } = spans[o];
    for (let line = 0; line < lines; line++) {
      for (let ch = 0; ch < 4; ch++) {
        let acc = arith === 'torchvision' ? 2 ** (bits - 1) : 0;
        for (let k = 0; k < w.length; k++) {
          const si = horizontal ? (line * inW + lo + k) * 4 + ch : ((lo + k) * inW + line) * 4 + ch;
          acc += src[si] * w[k];
        }
        const v = arith === 'torchvision' ? Math.floor(acc / 2 ** bits) : Math.round(acc / sum);
        const di = horizontal ? (line * outW + o) * 4 + ch : (o * outW + line) * 4 + ch;
        dst[di] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return dst;
}

/** Resizes RGBA to width x height (horizontal pass first, as PIL; an unchanged axis is skipped). */
export function resizeRgba(img: RgbaImage, width: number, height: number, resample: Resample = 'lanczos', arith: ResampleArithmetic = 'pil'): RgbaImage {
  let data = img.data instanceof Uint8Array ? img.data : new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  let w = img.width;
  if (width !== img.width) (data = resamplePass(data, img.width, img.height, width, true, resample, arith)), (w = width);
  if (height !== img.height) data = resamplePass(data, w, img.height, height, false, resample, arith);
  return { width, height, data };
}

/** Composites RGBA over white (HF convert_to_rgb); alpha becomes 255. */
export function flattenAlpha(img: RgbaImage): RgbaImage {
  const d = new Uint8Array(img.data.length);
  for (let i = 0; i < d.length; i += 4) {
    const a = img.data[i + 3];
    for (let c = 0; c < 3; c++) d[i + c] = a === 255 ? img.data[i + c] : Math.round((img.data[i + c] * a + 255 * (255 - a)) / 255);
    d[i + 3] = 255;
  }
  return { width: img.width, height: img.height, data: d };
}

/** Writes the (x0, y0) tile of side t, rescaled and normalized, channels first, at out[offset..]. */
function writeTile(out: Float32Array, offset: number, img: RgbaImage, x0: number, y0: number, t: number, p: ImageProcessorConfig): void {
  const f = p.doRescale ? p.rescaleFactor : 1;
  for (let c = 0; c < 3; c++) {
    const m = p.doNormalize ? p.mean[c] : 0, s = p.doNormalize ? p.std[c] : 1;
    for (let y = 0; y < t; y++) {
      for (let x = 0; x < t; x++) {
        const v = Math.fround(img.data[((y0 + y) * img.width + x0 + x) * 4 + c] * f);
        out[offset + (c * t + y) * t + x] = (v - m) / s;
      }
    }
  }
}

/** The whole preprocessing of one RGBA image into tiles. */
export function preprocessRgba(img: RgbaImage, p: ImageProcessorConfig): PreprocessedImage {
  const t = p.tileSize;
  const layout = tileLayout(img.height, img.width, p);
  let im = flattenAlpha(img);
  const rs = p.resample;
  if (!p.doSplit) {
    // Without do_resize the image must already be one tile (HF would feed the tower a wrong size).
    if (!p.doResize && (im.width !== t || im.height !== t)) throw new InvalidArgumentError('images', `the processor does not resize (do_resize=false): images must be ${t} x ${t} pixels (got ${im.width} x ${im.height})`);
    im = resizeRgba(im, t, t, rs);
  } else {
    if (p.doResize) {
      const [h, w] = resizeForLongestEdge(im.height, im.width, p.longestEdge);
      im = resizeRgba(im, w, h, rs);
    }
    im = resizeRgba(im, layout.resized[1], layout.resized[0], rs);
  }
  const pixels = new Float32Array(layout.tiles * 3 * t * t);
  let k = 0;
  for (let r = 0; r < layout.rows; r++) for (let c = 0; c < layout.cols; c++) writeTile(pixels, k++ * 3 * t * t, im, c * t, r * t, t, p);
  const global = im.width === t && im.height === t ? im : resizeRgba(im, t, t, rs);
  writeTile(pixels, k * 3 * t * t, global, 0, 0, t, p);
  return { pixels, tiles: layout.tiles, rows: layout.rows, cols: layout.cols, tileSize: t };
}
