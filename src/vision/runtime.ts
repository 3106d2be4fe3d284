// What an engine holds for a VLM: its family (src/vision/family.ts), vision config,
// image-processor settings and the loaded tower; and the request path images -> RGBA ->
// the family's preprocessing -> tower + connector -> image features [imageTokens, textHidden]
// on the device (plus DeepStack features), the per-chunk splice rows, and (Gemma 3) the
// per-row key ends of the bidirectional image mask. Nothing here knows a family by name.
import { InvalidArgumentError, MalformedFileError } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import type { ModelSource } from '../model/source.ts';
import type { Ops } from '../ops/ops.ts';
import type { ImageProcessorConfig, VisionConfig } from '../model/vision_config.ts';
import type { VisionFamily, VisionTower } from './family.ts';
import { toRgba, type ImageInput } from './image_input.ts';
import type { PreprocessedImage } from './preprocess.ts';

export interface VisionRuntime<T> {
  family: VisionFamily;
  config: VisionConfig;
  processor: ImageProcessorConfig;
  tower: VisionTower<T>;
}

/**
 * A VLM's runtime around its streamed tower (the family's planTower): reads the image processor
 * settings (preprocessor_config.json). On failure the tower is freed.
 */
export async function loadVisionRuntime<T>(family: VisionFamily, c: ModelConfig, tower: VisionTower<T>, source: ModelSource, signal?: AbortSignal): Promise<VisionRuntime<T>> {
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
      processor = family.processor(raw, v);
    } catch (e) {
      throw new MalformedFileError('preprocessor_config.json', e instanceof MalformedFileError ? String(e.fields.detail) : (e as Error).message);
    }
    return { family, config: v, processor, tower };
  } catch (e) {
    tower.free();
    throw e;
  }
}

export function freeVisionRuntime<T>(rt: VisionRuntime<T>): void {
  rt.tower.free();
}

/** Decodes and preprocesses every image the family's way (typed errors for undecodable / too large ones). */
export async function preprocessImages(images: readonly ImageInput[], rt: Pick<VisionRuntime<unknown>, 'family' | 'config' | 'processor'>, maxPixels?: number, processor = rt.processor): Promise<PreprocessedImage[]> {
  const out: PreprocessedImage[] = [];
  for (let i = 0; i < images.length; i++) out.push(rt.family.preprocess(await toRgba(images[i], i, maxPixels), processor, rt.config));
  return out;
}

/** Image tokens the images fill in a prompt. */
export function imageTokenCount(rt: Pick<VisionRuntime<unknown>, 'family' | 'config'>, images: readonly PreprocessedImage[]): number {
  let n = 0;
  for (const im of images) n += rt.family.tokens(im, rt.config);
  return n;
}

/** What marks an image in the templated text. */
export function imagePlaceholder(rt: Pick<VisionRuntime<unknown>, 'family' | 'config'>): string {
  return rt.family.placeholder(rt.config);
}

/** Replaces the i-th placeholder of `text` with image i's expansion; the counts must agree. */
export function expandImages(text: string, images: readonly PreprocessedImage[], rt: Pick<VisionRuntime<unknown>, 'family' | 'config'>): string {
  const placeholder = imagePlaceholder(rt);
  const parts = text.split(placeholder);
  if (parts.length - 1 !== images.length) throw new InvalidArgumentError('images', `the text holds ${parts.length - 1} ${placeholder} placeholders but ${images.length} images were given`);
  let out = parts[0];
  for (let i = 0; i < images.length; i++) out += rt.family.expand(images[i], rt.config) + parts[i + 1];
  return out;
}

/** Image features on the device: [rows, textHidden], and DeepStack's per-layer features of the same rows (caller frees all). */
export interface ImageFeatures<T> {
  data: T;
  deepstack: T[];
  rows: number;
}

/** Runs tower + connector over every image, in prompt order. */
export function encodeImages<T>(ops: Ops<T>, rt: VisionRuntime<T>, images: readonly PreprocessedImage[]): ImageFeatures<T> {
  const v = rt.config;
  const rows = imageTokenCount(rt, images);
  const data = ops.alloc('image-features', Math.max(1, rows) * v.textHidden);
  const deepstack = Array.from({ length: v.deepstackLayers }, (_, j) => ops.alloc(`image-deepstack.${j}`, Math.max(1, rows) * v.textHidden));
  let row = 0;
  for (const im of images) {
    rt.tower.encode(im, data, row, deepstack);
    ops.flush();
    row += rt.family.tokens(im, v);
  }
  return { data, deepstack, rows };
}

export function freeImageFeatures<T>(ops: Ops<T>, f: ImageFeatures<T>): void {
  ops.free(f.data);
  for (const d of f.deepstack) ops.free(d);
}

/** Splice rows for the chunk [start, end) of a prompt whose image tokens sit at `positions`. */
export function overrideRows<T>(f: Pick<ImageFeatures<T>, 'data' | 'deepstack'>, positions: readonly number[], start: number, end: number): { data: T; rows: number[]; src: number[]; adds?: T[] } | undefined {
  const rows: number[] = [], src: number[] = [];
  positions.forEach((p, i) => p >= start && p < end && (rows.push(p - start), src.push(i)));
  if (!rows.length) return undefined;
  return f.deepstack.length ? { data: f.data, rows, src, adds: f.deepstack } : { data: f.data, rows, src };
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
