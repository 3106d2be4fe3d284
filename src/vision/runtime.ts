// What an engine holds for a VLM: vision config, image-processor settings, device weights and
// one tile of scratch; and the request path images -> RGBA -> tiles -> tower + connector ->
// image features [imageTokens, textHidden] on the device, plus the per-chunk splice rows and
// (Gemma 3) the per-row key ends of the bidirectional image mask.
import { MalformedFileError } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import type { ModelSource } from '../model/source.ts';
import type { Ops } from '../ops/ops.ts';
import { normalizeImageProcessor, type ImageProcessorConfig, type VisionConfig } from '../model/vision_config.ts';
import { toRgba, type ImageInput } from './image_input.ts';
import { preprocessRgba, type PreprocessedImage } from './preprocess.ts';
import { createVisionState, encodeTile, freeVisionState, visionWeightTensors, type VisionState, type VisionWeights } from './siglip.ts';

export interface VisionRuntime<T> {
  config: VisionConfig;
  processor: ImageProcessorConfig;
  weights: VisionWeights<T>;
  state: VisionState<T>;
}

/**
 * A VLM's runtime around its streamed vision weights (src/vision/siglip.ts planVisionWeights):
 * the image processor settings and one tile of scratch. On failure the weights are freed.
 */
export async function loadVisionRuntime<T>(ops: Ops<T>, c: ModelConfig, weights: VisionWeights<T>, source: ModelSource, signal?: AbortSignal): Promise<VisionRuntime<T>> {
  const v = c.vision!;
  try {
    const buf = await source.fetchFile('preprocessor_config.json', { optional: true, signal });
    let raw: Record<string, any> | null = null;
    if (buf) {
      try {
        raw = JSON.parse(new TextDecoder().decode(buf));
      } catch (e) {
        throw new MalformedFileError('preprocessor_config.json', `not valid JSON (${(e as Error).message})`);
      }
    }
    let processor: ImageProcessorConfig;
    try {
      processor = normalizeImageProcessor(raw, v);
    } catch (e) {
      throw new MalformedFileError('preprocessor_config.json', (e as Error).message);
    }
    return { config: v, processor, weights, state: createVisionState(ops, v) };
  } catch (e) {
    for (const t of visionWeightTensors(weights)) ops.free(t);
    throw e;
  }
}

export function freeVisionRuntime<T>(ops: Ops<T>, rt: VisionRuntime<T>): void {
  freeVisionState(ops, rt.state);
  for (const t of visionWeightTensors(rt.weights)) ops.free(t);
}

/** Decodes and preprocesses every image (typed errors for undecodable / too large ones). */
export async function preprocessImages(images: readonly ImageInput[], p: ImageProcessorConfig, maxPixels?: number): Promise<PreprocessedImage[]> {
  const out: PreprocessedImage[] = [];
  for (let i = 0; i < images.length; i++) out.push(preprocessRgba(await toRgba(images[i], i, maxPixels), p));
  return out;
}

/** Runs tower + connector over every tile; returns the features buffer [rows, textHidden] (caller frees). */
export function encodeImages<T>(ops: Ops<T>, rt: VisionRuntime<T>, images: readonly PreprocessedImage[]): { data: T; rows: number } {
  const v = rt.config, tileFloats = v.numChannels * v.imageSize ** 2;
  const tiles = images.reduce((a, im) => a + im.tiles, 0);
  const rows = tiles * v.tokensPerTile;
  const data = ops.alloc('image-features', Math.max(1, rows) * v.textHidden);
  let row = 0;
  for (const im of images) {
    for (let t = 0; t < im.tiles; t++) {
      const px = ops.upload('vision.tile', im.pixels.subarray(t * tileFloats, (t + 1) * tileFloats));
      encodeTile(ops, v, rt.weights, rt.state, px, data, row);
      ops.flush();
      ops.free(px);
      row += v.tokensPerTile;
    }
  }
  return { data, rows };
}

/** Splice rows for the chunk [start, end) of a prompt whose image tokens sit at `positions`. */
export function overrideRows<T>(data: T, positions: readonly number[], start: number, end: number): { data: T; rows: number[]; src: number[] } | undefined {
  const rows: number[] = [], src: number[] = [];
  positions.forEach((p, i) => p >= start && p < end && (rows.push(p - start), src.push(i)));
  return rows.length ? { data, rows, src } : undefined;
}

/**
 * Per-row key ends of the rows [start, end) of a prompt (Gemma 3's image mask): a row inside
 * an image run [s, e) sees keys up to e (its whole image), any other row up to itself (causal).
 * Undefined when no row of the chunk is an image row.
 */
export function keyEndRows(runs: readonly (readonly [number, number])[], start: number, end: number): number[] | undefined {
  let any = false;
  const out = Array.from({ length: end - start }, (_, i) => start + i + 1);
  for (const [s, e] of runs) {
    for (let p = Math.max(s, start); p < Math.min(e, end); p++) (out[p - start] = e), (any = true);
  }
  return any ? out : undefined;
}
