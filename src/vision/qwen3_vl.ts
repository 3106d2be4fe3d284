// Qwen3-VL's vision pieces (transformers' Qwen3VLVisionModel, Qwen2VLImageProcessorFast,
// Qwen3VLProcessor); the config and tensor names are the family's data (src/model/families/qwen3_vl.ts):
//   preprocessing: smart_resize to multiples of patch x merge within [min, max] pixels (Python
//     round: half to even), a torchvision-style uint8 bicubic resize, rescale, normalize, a still
//     image repeated temporal_patch times, and the patches flattened in the processor's order:
//     merged blocks row-major, the merge x merge patches of a block row-major, each patch
//     [C, T, p, p] (the Conv3d's weight layout);
//   tower on the ops interface, per image of N = gh x gw patches:
//     patches [N, C T p p] -> GEMM with the Conv3d weight (+bias) -> + position embeddings
//     (the learned side x side grid bilinearly interpolated to gh x gw, HF's
//     fast_pos_embed_interpolate, on the host) -> per block [LN1 -> qkv (+bias) -> 2-D RoPE on q
//     and k (the rope kernel with a per-image table: visionRopeTable) ->
//     bidirectional attention -> proj (+bias, +res) -> LN2 -> fc1 (+bias) -> GELU-tanh -> fc2
//     (+bias, +res)]; after the blocks in deepstack_visual_indexes, a DeepStack merger; at the
//     end the patch merger: LN over D per patch, the 4 patches of a block as one [4D] row (they
//     are consecutive), fc1 (+bias), GELU (erf), fc2 (+bias) -> [N/4, textHidden]. DeepStack
//     mergers LayerNorm the [4D] rows instead (use_postshuffle_norm).
//   prompt: the chat template writes <|vision_start|><|image_pad|><|vision_end|>; the single
//     <|image_pad|> becomes gh gw / merge^2 of them.
import { InvalidArgumentError, MalformedFileError } from '../errors.ts';
import { qwen3VisionTensors, VISUAL } from '../model/families/qwen3_vl.ts';
import type { WeightRoutes } from '../model/loader.ts';
import { resampleOf, three, type ImageProcessorConfig, type Qwen3VisionConfig } from '../model/vision_config.ts';
import type { Ops, UploadOptions } from '../ops/ops.ts';
import type { TowerStorage, VisionTower } from './family.ts';
import { flattenAlpha, resizeRgba, type PreprocessedImage, type RgbaImage } from './preprocess.ts';

export const QWEN_IMAGE_PAD = '<|image_pad|>';
const V = VISUAL;
export const QWEN_VISION_START = '<|vision_start|>';
export const QWEN_VISION_END = '<|vision_end|>';

/**
 * preprocessor_config.json of Qwen2VLImageProcessorFast (the class Qwen3-VL's file names):
 * size {shortest_edge, longest_edge} in pixels (or min_pixels / max_pixels), patch_size,
 * merge_size and temporal_patch_size must match the tower, bicubic only.
 */
export function normalizeQwen2VLProcessor(raw: Record<string, any> | null, v: Qwen3VisionConfig): ImageProcessorConfig {
  const r = raw ?? {};
  const type = r.image_processor_type;
  if (type !== undefined && type !== 'Qwen2VLImageProcessorFast' && type !== 'Qwen2VLImageProcessor') throw new MalformedFileError('preprocessor_config.json', `image_processor_type '${type}' is not supported (Qwen2VLImageProcessorFast)`);
  for (const [key, want] of [['patch_size', v.patchSize], ['merge_size', v.mergeSize], ['temporal_patch_size', v.temporalPatch]] as const) {
    if (r[key] !== undefined && r[key] !== want) throw new MalformedFileError('preprocessor_config.json', `${key} ${r[key]} must equal the vision config's ${want}`);
  }
  const minPixels = r.size?.shortest_edge ?? r.min_pixels ?? 56 * 56, maxPixels = r.size?.longest_edge ?? r.max_pixels ?? 28 * 28 * 1280;
  if (!(minPixels > 0 && maxPixels >= minPixels)) throw new MalformedFileError('preprocessor_config.json', `size: shortest_edge ${minPixels} and longest_edge ${maxPixels} must be positive pixel counts, min <= max`);
  const resample = resampleOf(r.resample, 'bicubic');
  if (resample !== 'bicubic') throw new MalformedFileError('preprocessor_config.json', `resample ${r.resample} is not supported (Qwen2VLImageProcessorFast resizes bicubic)`);
  return {
    doResize: r.do_resize ?? true, longestEdge: 0, doSplit: false, tileSize: 0, resample,
    doRescale: r.do_rescale ?? true, rescaleFactor: r.rescale_factor ?? 1 / 255,
    doNormalize: r.do_normalize ?? true,
    // OPENAI_CLIP_MEAN / STD are the class defaults; Qwen3-VL's file sets 0.5.
    mean: r.image_mean !== undefined ? three(r.image_mean, 0.5) : [0.48145466, 0.4578275, 0.40821073],
    std: r.image_std !== undefined ? three(r.image_std, 0.5) : [0.26862954, 0.26130258, 0.27577711],
    minPixels, maxPixels,
  };
}

/** Python's round(): to the nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x), d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** HF smart_resize: both sides multiples of `factor`, pixels within [minPixels, maxPixels], aspect kept as far as it can be. */
export function smartResize(height: number, width: number, factor: number, minPixels: number, maxPixels: number): [number, number] {
  if (height < factor || width < factor) throw new InvalidArgumentError('images', `an image of ${width} x ${height} pixels is too small: both sides must be at least ${factor} (patch x merge)`);
  if (Math.max(height, width) / Math.min(height, width) > 200) throw new InvalidArgumentError('images', `an image of ${width} x ${height} pixels is too elongated: the aspect ratio must be at most 200`);
  let h = roundHalfEven(height / factor) * factor, w = roundHalfEven(width / factor) * factor;
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.max(factor, Math.floor(height / beta / factor) * factor);
    w = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  return [h, w];
}

/** The merged grid (image tokens per side) of an image of this size, and its patch grid. */
export function qwenImageGrid(height: number, width: number, p: ImageProcessorConfig, v: Qwen3VisionConfig): { h: number; w: number; tokens: number } {
  const factor = v.patchSize * v.mergeSize;
  const [rh, rw] = p.doResize ? smartResize(height, width, factor, p.minPixels!, p.maxPixels!) : [height, width];
  if (rh % factor || rw % factor) throw new InvalidArgumentError('images', `the processor does not resize (do_resize=false): images must be multiples of ${factor} pixels (got ${width} x ${height})`);
  const h = rh / v.patchSize, w = rw / v.patchSize;
  return { h, w, tokens: (h * w) / v.mergeSize ** 2 };
}

/**
 * Qwen2VLImageProcessorFast on one image: alpha over white (convert_to_rgb) -> resize to the
 * smart size (bicubic, antialiased, on uint8 as torchvision does: int16 weights, see
 * src/vision/preprocess.ts 'torchvision' arithmetic) -> rescale -> normalize -> T copies in
 * time -> patches [gh gw, C T p p] in the processor's order (see the top of this file).
 */
export function preprocessQwen2VL(img: RgbaImage, p: ImageProcessorConfig, v: Qwen3VisionConfig): PreprocessedImage {
  const grid = qwenImageGrid(img.height, img.width, p, v);
  const ps = v.patchSize, m = v.mergeSize, T = v.temporalPatch, C = 3;
  let im = flattenAlpha(img);
  im = resizeRgba(im, grid.w * ps, grid.h * ps, 'bicubic', 'torchvision');
  const f = p.doRescale ? p.rescaleFactor : 1;
  const K = C * T * ps * ps, W = im.width;
  const pixels = new Float32Array(grid.h * grid.w * K);
  let row = 0;
  for (let bh = 0; bh < grid.h / m; bh++)
    for (let bw = 0; bw < grid.w / m; bw++)
      for (let i = 0; i < m; i++)
        for (let j = 0; j < m; j++, row++) {
          const y0 = (bh * m + i) * ps, x0 = (bw * m + j) * ps;
          for (let c = 0; c < C; c++) {
            const mean = p.doNormalize ? p.mean[c] : 0, std = p.doNormalize ? p.std[c] : 1;
            for (let y = 0; y < ps; y++)
              for (let x = 0; x < ps; x++) {
                const val = (Math.fround(im.data[((y0 + y) * W + x0 + x) * 4 + c] * f) - mean) / std;
                for (let t = 0; t < T; t++) pixels[row * K + ((c * T + t) * ps + y) * ps + x] = val;
              }
          }
        }
  return { pixels, tiles: 1, rows: 0, cols: 0, tileSize: 0, grid: { h: grid.h, w: grid.w } };
}

/** torch.linspace(0, end, steps) in f32 (the halves computed from either end, as torch does). */
function linspace(end: number, steps: number): number[] {
  if (steps === 1) return [0];
  const step = Math.fround(end / (steps - 1));
  return Array.from({ length: steps }, (_, i) => (i < steps / 2 ? Math.fround(step * i) : Math.fround(end - Math.fround(step * (steps - 1 - i)))));
}

/**
 * HF fast_pos_embed_interpolate for one image: the side x side table bilinearly sampled at a
 * gh x gw grid (linspace over the table's extent), rows in the patches' block order. [N, D].
 */
export function interpolatePositions(table: Float32Array, side: number, D: number, gh: number, gw: number, merge: number): Float32Array {
  const hs = linspace(side - 1, gh), ws = linspace(side - 1, gw);
  const out = new Float32Array(gh * gw * D);
  let row = 0;
  for (let bh = 0; bh < gh / merge; bh++)
    for (let bw = 0; bw < gw / merge; bw++)
      for (let i = 0; i < merge; i++)
        for (let j = 0; j < merge; j++, row++) {
          const y = hs[bh * merge + i], x = ws[bw * merge + j];
          const y0 = Math.trunc(y), x0 = Math.trunc(x), y1 = Math.min(y0 + 1, side - 1), x1 = Math.min(x0 + 1, side - 1);
          const dy = Math.fround(y - y0), dx = Math.fround(x - x0);
          const corners: [number, number][] = [
            [y0 * side + x0, Math.fround((1 - dy) * (1 - dx))], [y0 * side + x1, Math.fround((1 - dy) * dx)],
            [y1 * side + x0, Math.fround(dy * (1 - dx))], [y1 * side + x1, Math.fround(dy * dx)],
          ];
          const o = row * D;
          for (const [idx, wgt] of corners) for (let d = 0; d < D; d++) out[o + d] += table[idx * D + d] * wgt;
        }
  return out;
}

/**
 * The vision RoPE table of one image ([N, headDim], rows in block order, the rope kernel's
 * layout): Qwen3VLVisionRotaryEmbedding(headDim / 2) gives headDim / 4 frequencies
 * 10000^(-2j / (headDim / 2)); pair i < headDim / 4 turns by the patch's row, the next
 * headDim / 4 pairs by its column (rotate-half over the whole head).
 */
export function visionRopeTable(headDim: number, gh: number, gw: number, merge: number): Float32Array {
  const q = headDim / 4, half = headDim / 2;
  const inv = Array.from({ length: q }, (_, j) => Math.fround(1 / Math.pow(10000, (2 * j) / half)));
  const out = new Float32Array(gh * gw * headDim);
  let row = 0;
  for (let bh = 0; bh < gh / merge; bh++)
    for (let bw = 0; bw < gw / merge; bw++)
      for (let i = 0; i < merge; i++)
        for (let j = 0; j < merge; j++, row++) {
          const r = bh * merge + i, c = bw * merge + j;
          for (let k = 0; k < half; k++) {
            const a = Math.fround((k < q ? r : c) * inv[k % q]);
            out[row * headDim + k] = Math.cos(a);
            out[row * headDim + half + k] = Math.sin(a);
          }
        }
  return out;
}

interface BlockWeights<T> {
  norm1: [T, T]; norm2: [T, T];
  qkv: [T, T]; proj: [T, T];
  fc1: [T, T]; fc2: [T, T];
}

interface MergerWeights<T> {
  norm: [T, T];
  fc1: [T, T];
  fc2: [T, T];
}

/**
 * Declares the tower's streamed weights: matrices written by row ranges as they arrive
 * (Ops.uploadRows), vectors and the position table gathered on the host (the table stays on
 * the host: it is interpolated per image there). Returns the step that builds the tower.
 */
export function planQwen3Tower<T>(p: WeightRoutes<T>, v: Qwen3VisionConfig, store: TowerStorage = {}): (ops: Ops<T>) => VisionTower<T> {
  const tensors = new Map(qwen3VisionTensors(v).map((t) => [t.name, t]));
  const shapes = new Map([...tensors].map(([n, t]) => [n, t.shape]));
  // The linear weights (ExtraTensor.matmul) are stored as the text projections are: under q4
  // the tower's GEMMs read int4 (group 32 along K, as src/core/quant.ts), ~1/7 of the f32
  // bytes (the 2B's 24 blocks + 4 mergers: 1.6 GB -> 0.25 GB); the CPU twin keeps the
  // dequantized values (CpuOps.uploadRows), the same numbers the q4 kernels compute with.
  const storage = (cols: number): UploadOptions & { cols: number } => (store.quant ? { cols, quant: { scheme: store.quant, cols } } : store.half ? { cols, half: true } : { cols });
  const matrix = (name: string): (() => T) => {
    const shape = shapes.get(name)!, cols = shape.slice(1).reduce((a, b) => a * b, 1);
    const w = p.writer(name, shape[0], tensors.get(name)!.matmul ? storage(cols) : { cols });
    p.rows(name, shape, (r0, d) => w.write(r0, d));
    return () => w.finish();
  };
  const vector = (name: string): (() => T) => {
    let out!: T;
    p.whole(name, shapes.get(name)!, (d) => (out = p.upload(name, d)));
    return () => out;
  };
  const linear = (n: string): (() => [T, T]) => {
    const w = matrix(`${n}.weight`), b = vector(`${n}.bias`);
    return () => [w(), b()];
  };
  const norm = (n: string): (() => [T, T]) => {
    const g = vector(`${n}.weight`), b = vector(`${n}.bias`);
    return () => [g(), b()];
  };
  let posTable: Float32Array | null = null;
  p.whole(`${V}pos_embed.weight`, shapes.get(`${V}pos_embed.weight`)!, (d) => {
    posTable = d;
    p.hold(d.byteLength); // kept for the engine's lifetime
  });
  const patch = linear(`${V}patch_embed.proj`);
  const blocks = Array.from({ length: v.numLayers }, (_, l) => {
    const b = `${V}blocks.${l}.`;
    const f = { norm1: norm(`${b}norm1`), norm2: norm(`${b}norm2`), qkv: linear(`${b}attn.qkv`), proj: linear(`${b}attn.proj`), fc1: linear(`${b}mlp.linear_fc1`), fc2: linear(`${b}mlp.linear_fc2`) };
    return (): BlockWeights<T> => ({ norm1: f.norm1(), norm2: f.norm2(), qkv: f.qkv(), proj: f.proj(), fc1: f.fc1(), fc2: f.fc2() });
  });
  const merger = (m: string) => {
    const f = { norm: norm(`${m}norm`), fc1: linear(`${m}linear_fc1`), fc2: linear(`${m}linear_fc2`) };
    return (): MergerWeights<T> => ({ norm: f.norm(), fc1: f.fc1(), fc2: f.fc2() });
  };
  const final = merger(`${V}merger.`);
  const deepstack = v.deepstackIndexes.map((_, j) => merger(`${V}deepstack_merger_list.${j}.`));
  return (ops) => {
    const w = { patch: patch(), blocks: blocks.map((f) => f()), merger: final(), deepstack: deepstack.map((f) => f()) };
    const all = (): T[] => [
      ...w.patch, ...w.blocks.flatMap((b) => [...b.norm1, ...b.norm2, ...b.qkv, ...b.proj, ...b.fc1, ...b.fc2]),
      ...[w.merger, ...w.deepstack].flatMap((m) => [...m.norm, ...m.fc1, ...m.fc2]),
    ];
    return {
      encode: (im, out, outRow, ds) => encodeQwen3Image(ops, v, w, posTable!, im, out, outRow, ds),
      tensors: all,
      free() {
        for (const t of all()) ops.free(t);
      },
    };
  };
}

/** One image through the tower (see the top of this file); scratch is per image (its grid sets the size). */
function encodeQwen3Image<T>(ops: Ops<T>, v: Qwen3VisionConfig, w: { patch: [T, T]; blocks: BlockWeights<T>[]; merger: MergerWeights<T>; deepstack: MergerWeights<T>[] }, posTable: Float32Array, im: PreprocessedImage, out: T, outRow: number, ds: readonly T[]): void {
  if (!im.grid) throw new InvalidArgumentError('images', 'the image was not preprocessed for Qwen3-VL (no patch grid)');
  const { h: gh, w: gw } = im.grid, N = gh * gw, m = v.mergeSize, M = N / (m * m);
  const D = v.hiddenSize, F = v.intermediateSize, K = v.numChannels * v.temporalPatch * v.patchSize ** 2, MD = D * m * m, O = v.textHidden, eps = v.layerNormEps;
  const owned: T[] = [];
  const buf = (label: string, n: number) => (owned.push(ops.alloc(label, n)), owned[owned.length - 1]);
  const up = (label: string, d: Float32Array) => (owned.push(ops.upload(label, d)), owned[owned.length - 1]);
  try {
    const patches = up('vision.patches', im.pixels);
    const pos = up('vision.pos', interpolatePositions(posTable, v.positionSide, D, gh, gw, m));
    const rope = up('vision.rope', visionRopeTable(v.headDim, gh, gw, m));
    const x = buf('vision.x', N * D), xb = buf('vision.xb', N * D), qkv = buf('vision.qkv', N * 3 * D), att = buf('vision.att', N * D), mlp = buf('vision.mlp', N * F);
    const m1 = buf('vision.merge1', M * MD), m2 = buf('vision.merge2', M * MD);
    ops.matmul(x, patches, w.patch[0], N, D, K, { bias: w.patch[1] });
    ops.add(x, pos, N * D);
    const shape = { rows: N, seqLen: N, stride: 3 * D, qOffset: 0, kOffset: D, vOffset: 2 * D, numHeads: v.numHeads, headDim: v.headDim, scale: 1 / Math.sqrt(v.headDim) };
    /** A patch merger: `input` [M, 4D] (normed already unless `normRows`), written to rows outRow.. of `dst`. */
    const merge = (mw: MergerWeights<T>, dst: T) => {
      ops.matmul(m2, m1, mw.fc1[0], M, MD, MD, { bias: mw.fc1[1] });
      ops.gelu(m2, M * MD, true);
      ops.matmul(dst, m2, mw.fc2[0], M, O, MD, { bias: mw.fc2[1], outRow });
    };
    w.blocks.forEach((b, l) => {
      ops.layerNorm(xb, x, b.norm1[0], b.norm1[1], N, D, eps);
      ops.matmul(qkv, xb, b.qkv[0], N, 3 * D, D, { bias: b.qkv[1] });
      ops.rope(qkv, N, 3 * D, 0, v.numHeads, v.headDim, 0, rope, null);
      ops.rope(qkv, N, 3 * D, D, v.numHeads, v.headDim, 0, rope, null);
      ops.attentionFull(att, qkv, shape);
      ops.matmul(x, att, b.proj[0], N, D, D, { bias: b.proj[1], accumulate: true });
      ops.layerNorm(xb, x, b.norm2[0], b.norm2[1], N, D, eps);
      ops.matmul(mlp, xb, b.fc1[0], N, F, D, { bias: b.fc1[1] });
      ops.gelu(mlp, N * F);
      ops.matmul(x, mlp, b.fc2[0], N, D, F, { bias: b.fc2[1], accumulate: true });
      const j = v.deepstackIndexes.indexOf(l);
      if (j >= 0) {
        // DeepStack merger (use_postshuffle_norm): LayerNorm over each block's 4 patches as one row.
        ops.layerNorm(m1, x, w.deepstack[j].norm[0], w.deepstack[j].norm[1], M, MD, eps);
        merge(w.deepstack[j], ds[j]);
      }
    });
    // The patch merger: LayerNorm per patch, then a block's 4 consecutive patches are one row.
    ops.layerNorm(m1, x, w.merger.norm[0], w.merger.norm[1], N, D, eps);
    merge(w.merger, out);
    ops.flush();
  } finally {
    for (const t of owned) ops.free(t);
  }
}
