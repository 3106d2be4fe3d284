// The SigLIP vision tower and Idefics3 connector on the ops interface, one tile at a time:
//   pixels [3, S, S] -> patchify (im2col) -> GEMM with the conv weight (+bias) -> + position
//   embeddings -> per layer [LN1 -> QKV (+bias) -> bidirectional attention -> O (+bias, +res)
//   -> LN2 -> fc1 (+bias) -> GELU-tanh -> fc2 (+bias, +res)] -> post-LN -> pixel shuffle (s)
//   -> connector GEMM [textHidden, D s^2] -> rows of the image features.
// Full tiles only: every patch is valid, so position ids are 0..n^2-1 (HF's bucketized ids
// reduce to that when the patch mask is all ones, which Idefics3's processor guarantees).
// Weights are read by their HF names (model.vision_model.*, model.connector.*); q|k|v fused.
import { MissingTensorError, ShapeMismatchError } from '../errors.ts';
import type { ExtraTensor } from '../model/family.ts';
import type { Ops } from '../ops/ops.ts';
import { patchesPerSide, type VisionConfig } from './config.ts';

const V = 'model.vision_model.';
const CONNECTOR = 'model.connector.modality_projection.proj.weight';

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
  /** [textHidden, D s^2] */
  connector: T;
}

/** Scratch for one tile (n^2 patch rows). */
export interface VisionState<T> {
  patches: T; x: T; xb: T; qkv: T; att: T; mlp: T; shuffled: T;
}

/** Every vision and connector tensor with its HF name and shape. */
export function visionTensors(v: VisionConfig): ExtraTensor[] {
  const D = v.hiddenSize, F = v.intermediateSize, C = v.numChannels, p = v.patchSize, n = patchesPerSide(v);
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
  t.push({ name: CONNECTOR, shape: [v.textHidden, D * v.scaleFactor ** 2], kind: 'weight' });
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
      connector: t(CONNECTOR),
    };
  } catch (e) {
    for (const b of done) ops.free(b);
    throw e;
  }
}

export function visionWeightTensors<T>(w: VisionWeights<T>): T[] {
  return [w.patch, w.patchBias, w.position, ...w.layers.flatMap((l) => Object.values(l) as T[]), w.postGain, w.postBias, w.connector];
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
    shuffled: ops.alloc('vision.shuffled', v.tokensPerTile * D * v.scaleFactor ** 2),
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
  ops.pixelShuffle(s.shuffled, s.xb, 1, n, D, v.scaleFactor);
  ops.matmul(out, s.shuffled, w.connector, v.tokensPerTile, v.textHidden, D * v.scaleFactor ** 2, { outRow });
}
