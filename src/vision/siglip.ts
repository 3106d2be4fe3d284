// The SigLIP vision tower and its connector on the ops interface, one tile at a time:
//   pixels [3, S, S] -> patchify (im2col) -> GEMM with the conv weight (+bias) -> + position
//   embeddings -> per layer [LN1 -> QKV (+bias) -> bidirectional attention -> O (+bias, +res)
//   -> LN2 -> fc1 (+bias) -> GELU-tanh -> fc2 (+bias, +res)] -> post-LN -> connector:
//     pixel_shuffle (Idefics3): pixel shuffle (s) -> GEMM [textHidden, D s^2];
//     avg_pool (Gemma 3): average pool k x k patches -> RMSNorm ((1 + w) gain, folded at
//       load) -> GEMM with mm_input_projection_weight, stored [D, textHidden] and transposed
//       at load to the [N, K] layout matmul reads
//   -> rows of the image features.
// Full tiles only: every patch is valid, so position ids are 0..n^2-1 (HF's bucketized ids
// reduce to that when the patch mask is all ones, which Idefics3's processor guarantees;
// Gemma 3's tower always uses them). Tensor names come from the VisionConfig (the family's
// data: tower prefix, connector names); the weights stream in with the text weights
// (planVisionWeights); q|k|v fused.
import type { WeightRoutes } from '../model/loader.ts';
import type { Ops } from '../ops/ops.ts';
import { visionTensors } from '../model/families/siglip_tensors.ts';
import { patchesPerSide, type SiglipVisionConfig as VisionConfig } from '../model/vision_config.ts';
import type { VisionTower } from './family.ts';
import type { PreprocessedImage } from './preprocess.ts';

export interface VisionLayerWeights<T> {
  ln1Gain: T; ln1Bias: T;
  /** [q | k | v] rows stacked: [3D, D], bias [3D]. */
  qkv: T; qkvBias: T;
  o: T; oBias: T;
  ln2Gain: T; ln2Bias: T;
  fc1: T; fc1Bias: T;
  fc2: T; fc2Bias: T;
}

export interface VisionWeights<T> {
  /** Conv weight viewed as [D, C * patch^2], bias [D]. */
  patch: T; patchBias: T;
  /** [n^2, D] */
  position: T;
  layers: VisionLayerWeights<T>[];
  postGain: T; postBias: T;
  /** [textHidden, connector input width]: D s^2 (pixel shuffle) or D (avg pool, transposed at load). */
  connector: T;
  /** avg_pool: the projector norm's gain, 1 + w. */
  connectorNorm: T | null;
}

/** Scratch for one tile (n^2 patch rows); `merged` holds the connector's input rows. */
export interface VisionState<T> {
  patches: T; x: T; xb: T; qkv: T; att: T; mlp: T; merged: T;
}

/** Width of one connector input row: D s^2 after a pixel shuffle, D after pooling. */
function connectorWidth(v: VisionConfig): number {
  return v.connector.kind === 'pixel_shuffle' ? v.hiddenSize * v.connector.scaleFactor ** 2 : v.hiddenSize;
}

/**
 * Declares where every vision and connector tensor goes in a streamed load (the loader's
 * WeightPlan checks presence, shape and dtype from the file headers): each is gathered on the
 * host as it arrives and uploaded once whole (q|k|v fused by rows; avg_pool's projection
 * transposed and its norm gain folded), so at most a tensor or two is held at a time, never
 * the tower. Returns the step that gives the weights once every tensor is in.
 */
export function planVisionWeights<T>(p: WeightRoutes<T>, v: VisionConfig): () => VisionWeights<T> {
  const shapes = new Map(visionTensors(v).map((t) => [t.name, t.shape]));
  const elements = (name: string) => shapes.get(name)!.reduce((a, b) => a * b, 1);
  /** A tensor uploaded as it is stored, or as `f` makes it. */
  const t = (name: string, f: (d: Float32Array) => Float32Array = (d) => d): (() => T) => {
    let out!: T;
    p.whole(name, shapes.get(name)!, (d) => (out = p.upload(name, f(d))));
    return () => out;
  };
  const cat = (names: string[]): (() => T) => {
    let out!: T, buf: Float32Array | null = null, left = names.length, at = 0;
    const total = names.reduce((a, n) => a + elements(n), 0);
    for (const n of names) {
      const offset = at;
      at += elements(n);
      p.whole(n, shapes.get(n)!, (d) => {
        if (!buf) p.hold((buf = new Float32Array(total)).byteLength);
        buf.set(d, offset);
        if (--left) return;
        out = p.upload(names[0], buf);
        p.release(buf.byteLength);
        buf = null;
      });
    }
    return () => out;
  };
  const V = v.towerPrefix, cn = v.connector;
  const layers: (() => VisionLayerWeights<T>)[] = [];
  for (let l = 0; l < v.numLayers; l++) {
    const e = `${V}encoder.layers.${l}.`, a = `${e}self_attn.`;
    const w = {
      ln1Gain: t(`${e}layer_norm1.weight`), ln1Bias: t(`${e}layer_norm1.bias`),
      qkv: cat(['q_proj', 'k_proj', 'v_proj'].map((x) => `${a}${x}.weight`)), qkvBias: cat(['q_proj', 'k_proj', 'v_proj'].map((x) => `${a}${x}.bias`)),
      o: t(`${a}out_proj.weight`), oBias: t(`${a}out_proj.bias`),
      ln2Gain: t(`${e}layer_norm2.weight`), ln2Bias: t(`${e}layer_norm2.bias`),
      fc1: t(`${e}mlp.fc1.weight`), fc1Bias: t(`${e}mlp.fc1.bias`),
      fc2: t(`${e}mlp.fc2.weight`), fc2Bias: t(`${e}mlp.fc2.bias`),
    };
    layers.push(() => Object.fromEntries(Object.entries(w).map(([k, f]) => [k, f()])) as unknown as VisionLayerWeights<T>);
  }
  const patch = t(`${V}embeddings.patch_embedding.weight`), patchBias = t(`${V}embeddings.patch_embedding.bias`);
  const position = t(`${V}embeddings.position_embedding.weight`);
  const postGain = t(`${V}post_layernorm.weight`), postBias = t(`${V}post_layernorm.bias`);
  const connector = cn.kind === 'pixel_shuffle' ? t(cn.weight) : t(cn.weight, (d) => transpose(d, v.hiddenSize, v.textHidden));
  const connectorNorm = cn.kind === 'avg_pool' ? t(cn.norm, (d) => d.map((w) => w + 1)) : null;
  return () => ({
    patch: patch(), patchBias: patchBias(), position: position(), layers: layers.map((f) => f()),
    postGain: postGain(), postBias: postBias(), connector: connector(), connectorNorm: connectorNorm ? connectorNorm() : null,
  });
}

/** [rows, cols] -> [cols, rows]. */
function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

export function visionWeightTensors<T>(w: VisionWeights<T>): T[] {
  const all = [w.patch, w.patchBias, w.position, ...w.layers.flatMap((l) => Object.values(l) as T[]), w.postGain, w.postBias, w.connector];
  return w.connectorNorm ? [...all, w.connectorNorm] : all;
}

export function createVisionState<T>(ops: Ops<T>, v: VisionConfig): VisionState<T> {
  const N = patchesPerSide(v) ** 2, D = v.hiddenSize;
  return {
    patches: ops.alloc('vision.patches', N * v.numChannels * v.patchSize ** 2),
    x: ops.alloc('vision.x', N * D),
    xb: ops.alloc('vision.xb', N * D),
    qkv: ops.alloc('vision.qkv', N * 3 * D),
    att: ops.alloc('vision.att', N * D),
    mlp: ops.alloc('vision.mlp', N * v.intermediateSize),
    merged: ops.alloc('vision.merged', v.tokensPerTile * connectorWidth(v)),
  };
}

export function freeVisionState<T>(ops: Ops<T>, s: VisionState<T>): void {
  for (const t of Object.values(s) as T[]) ops.free(t);
}

/**
 * Encodes one tile (`pixels` [C, S, S] on the device): leaves the tower output
 * (post-LN) in `s.xb` [n^2, D] and writes the connector output to rows outRow.. of `out`
 * ([*, textHidden], tokensPerTile rows).
 */
export function encodeTile<T>(ops: Ops<T>, v: VisionConfig, w: VisionWeights<T>, s: VisionState<T>, pixels: T, out: T, outRow: number): void {
  const n = patchesPerSide(v), N = n * n, D = v.hiddenSize, F = v.intermediateSize, K = v.numChannels * v.patchSize ** 2;
  const eps = v.layerNormEps;
  ops.patchify(s.patches, pixels, 1, v.numChannels, v.imageSize, v.patchSize);
  ops.matmul(s.x, s.patches, w.patch, N, D, K, { bias: w.patchBias });
  ops.add(s.x, w.position, N * D);
  const shape = { rows: N, seqLen: N, stride: 3 * D, qOffset: 0, kOffset: D, vOffset: 2 * D, numHeads: v.numHeads, headDim: v.headDim, scale: 1 / Math.sqrt(v.headDim) };
  for (const l of w.layers) {
    ops.layerNorm(s.xb, s.x, l.ln1Gain, l.ln1Bias, N, D, eps);
    ops.matmul(s.qkv, s.xb, l.qkv, N, 3 * D, D, { bias: l.qkvBias });
    ops.attentionFull(s.att, s.qkv, shape);
    ops.matmul(s.x, s.att, l.o, N, D, D, { bias: l.oBias, accumulate: true });
    ops.layerNorm(s.xb, s.x, l.ln2Gain, l.ln2Bias, N, D, eps);
    ops.matmul(s.mlp, s.xb, l.fc1, N, F, D, { bias: l.fc1Bias });
    ops.gelu(s.mlp, N * F);
    ops.matmul(s.x, s.mlp, l.fc2, N, D, F, { bias: l.fc2Bias, accumulate: true });
  }
  ops.layerNorm(s.xb, s.x, w.postGain, w.postBias, N, D, eps);
  const cn = v.connector;
  if (cn.kind === 'pixel_shuffle') ops.pixelShuffle(s.merged, s.xb, 1, n, D, cn.scaleFactor);
  else {
    ops.avgPool(s.merged, s.xb, 1, n, D, cn.kernel);
    ops.rmsNorm(s.merged, s.merged, w.connectorNorm, v.tokensPerTile, D, cn.normEps);
  }
  ops.matmul(out, s.merged, w.connector, v.tokensPerTile, v.textHidden, connectorWidth(v), { outRow });
}

/**
 * The streamed SigLIP tower + connector as a VisionTower: one tile of scratch, each tile of an
 * image encoded in turn (tiles row-major, then the global view: the prompt's order).
 */
/** The SigLIP tower as loaded: its weights and tile scratch stay reachable (tests read the tower output in `state.xb`). */
export interface SiglipTower<T> extends VisionTower<T> {
  weights: VisionWeights<T>;
  state: VisionState<T>;
}

export function planSiglipTower<T>(p: WeightRoutes<T>, v: VisionConfig): (ops: Ops<T>) => SiglipTower<T> {
  const weights = planVisionWeights(p, v);
  return (ops) => {
    const w = weights();
    let s: VisionState<T>;
    try {
      s = createVisionState(ops, v);
    } catch (e) {
      for (const t of visionWeightTensors(w)) ops.free(t);
      throw e;
    }
    const tileFloats = v.numChannels * v.imageSize ** 2;
    return {
      weights: w,
      state: s,
      encode(im: PreprocessedImage, out: T, outRow: number): void {
        for (let t = 0; t < im.tiles; t++) {
          const px = ops.upload('vision.tile', im.pixels.subarray(t * tileFloats, (t + 1) * tileFloats));
          encodeTile(ops, v, w, s, px, out, outRow + t * v.tokensPerTile);
          ops.flush();
          ops.free(px);
        }
      },
      tensors: () => visionWeightTensors(w),
      free() {
        freeVisionState(ops, s);
        for (const t of visionWeightTensors(w)) ops.free(t);
      },
    };
  };
}
