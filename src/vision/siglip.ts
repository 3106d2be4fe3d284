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
// data: tower prefix, connector names); q|k|v fused.
import { MissingTensorError, ShapeMismatchError } from '../errors.ts';
import type { ExtraTensor } from '../model/family.ts';
import type { Ops } from '../ops/ops.ts';
import { patchesPerSide, type VisionConfig } from './config.ts';

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

/** Every vision and connector tensor with its HF name and shape (as stored in the checkpoint). */
export function visionTensors(v: VisionConfig): ExtraTensor[] {
  const D = v.hiddenSize, F = v.intermediateSize, C = v.numChannels, p = v.patchSize, n = patchesPerSide(v);
  const V = v.towerPrefix;
  const t: ExtraTensor[] = [
    { name: `${V}embeddings.patch_embedding.weight`, shape: [D, C, p, p], kind: 'weight', fanIn: C * p * p },
    { name: `${V}embeddings.patch_embedding.bias`, shape: [D], kind: 'bias' },
    { name: `${V}embeddings.position_embedding.weight`, shape: [n * n, D], kind: 'weight' },
  ];
  for (let l = 0; l < v.numLayers; l++) {
    const e = `${V}encoder.layers.${l}.`;
    for (const ln of ['layer_norm1', 'layer_norm2']) t.push({ name: `${e}${ln}.weight`, shape: [D], kind: 'norm' }, { name: `${e}${ln}.bias`, shape: [D], kind: 'bias' });
    for (const pr of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) t.push({ name: `${e}self_attn.${pr}.weight`, shape: [D, D], kind: 'weight' }, { name: `${e}self_attn.${pr}.bias`, shape: [D], kind: 'bias' });
    t.push({ name: `${e}mlp.fc1.weight`, shape: [F, D], kind: 'weight' }, { name: `${e}mlp.fc1.bias`, shape: [F], kind: 'bias' });
    t.push({ name: `${e}mlp.fc2.weight`, shape: [D, F], kind: 'weight' }, { name: `${e}mlp.fc2.bias`, shape: [D], kind: 'bias' });
  }
  t.push({ name: `${V}post_layernorm.weight`, shape: [D], kind: 'norm' }, { name: `${V}post_layernorm.bias`, shape: [D], kind: 'bias' });
  const cn = v.connector;
  if (cn.kind === 'pixel_shuffle') t.push({ name: cn.weight, shape: [v.textHidden, D * cn.scaleFactor ** 2], kind: 'weight' });
  else t.push({ name: cn.norm, shape: [D], kind: 'norm', normOffset: 1 }, { name: cn.weight, shape: [D, v.textHidden], kind: 'weight', fanIn: D });
  return t;
}

export interface TensorSource {
  entry(name: string): { shape: number[] } | null;
  get(name: string): Float32Array | null;
  files: string[];
}

/** Checks every vision tensor's presence and shape, fuses q|k|v and uploads. */
export function buildVisionWeights<T>(ops: Ops<T>, v: VisionConfig, ck: TensorSource): VisionWeights<T> {
  const shapes = new Map(visionTensors(v).map((t) => [t.name, t.shape]));
  const host = (name: string): Float32Array => {
    const e = ck.entry(name), want = shapes.get(name)!;
    if (!e) throw new MissingTensorError(name, ck.files.join(', '));
    if (e.shape.length !== want.length || e.shape.some((d, i) => d !== want[i])) throw new ShapeMismatchError(name, want, e.shape);
    return ck.get(name)!;
  };
  const done: T[] = [];
  const up = (label: string, d: Float32Array) => { const b = ops.upload(label, d); done.push(b); return b; };
  const t = (name: string) => up(name, host(name));
  const cat = (names: string[]) => {
    const parts = names.map(host), out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) out.set(p, o), (o += p.length);
    return up(names[0], out);
  };
  const V = v.towerPrefix, cn = v.connector;
  try {
    const layers: VisionLayerWeights<T>[] = [];
    for (let l = 0; l < v.numLayers; l++) {
      const e = `${V}encoder.layers.${l}.`, a = `${e}self_attn.`;
      layers.push({
        ln1Gain: t(`${e}layer_norm1.weight`), ln1Bias: t(`${e}layer_norm1.bias`),
        qkv: cat(['q_proj', 'k_proj', 'v_proj'].map((p) => `${a}${p}.weight`)), qkvBias: cat(['q_proj', 'k_proj', 'v_proj'].map((p) => `${a}${p}.bias`)),
        o: t(`${a}out_proj.weight`), oBias: t(`${a}out_proj.bias`),
        ln2Gain: t(`${e}layer_norm2.weight`), ln2Bias: t(`${e}layer_norm2.bias`),
        fc1: t(`${e}mlp.fc1.weight`), fc1Bias: t(`${e}mlp.fc1.bias`),
        fc2: t(`${e}mlp.fc2.weight`), fc2Bias: t(`${e}mlp.fc2.bias`),
      });
    }
    return {
      patch: t(`${V}embeddings.patch_embedding.weight`), patchBias: t(`${V}embeddings.patch_embedding.bias`),
      position: t(`${V}embeddings.position_embedding.weight`),
      layers,
      postGain: t(`${V}post_layernorm.weight`), postBias: t(`${V}post_layernorm.bias`),
      connector: cn.kind === 'pixel_shuffle' ? t(cn.weight) : up(cn.weight, transpose(host(cn.weight), v.hiddenSize, v.textHidden)),
      connectorNorm: cn.kind === 'avg_pool' ? up(cn.norm, host(cn.norm).map((w) => w + 1)) : null,
    };
  } catch (e) {
    for (const b of done) ops.free(b);
    throw e;
  }
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
