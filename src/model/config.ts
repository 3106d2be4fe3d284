// The normalized model configuration every family's config.json is mapped into. The one
// forward pass reads only this, never a family's raw keys.
import type { Activation } from '../core/op_types.ts';
import type { VisionConfig } from './vision_config.ts';

export type { Activation };

export interface RopeConfig {
  theta: number;
  /** HF `rope_scaling` (llama3 / linear), or null. */
  scaling: { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number } | { type: 'linear'; factor: number }
    /** Gemma 4's `proportional`: only the first floor(partialRotaryFactor · headDim / 2) pairs rotate. */
    | { type: 'proportional'; partialRotaryFactor: number; factor: number } | null;
}

/**
 * One layer's shape where a family gives its layers different ones (Gemma 4: full-attention
 * layers have global_head_dim and their own K/V head count; KV-shared layers may have a
 * double-wide MLP).
 */
export interface LayerShape {
  headDim: number;
  numKvHeads: number;
  intermediateSize: number;
  /** V is the K projection's output (before k-norm; Gemma 4's attention_k_eq_v): no v_proj. */
  kEqV: boolean;
}

/** Gemma 4's per-layer embeddings (PLE): a second table and a projection of the main embedding. */
export interface PerLayerInputConfig {
  /** hidden_size_per_layer_input: each layer's slice of the per-layer input. */
  dim: number;
  /** vocab_size_per_layer_input: rows of the per-layer table. */
  vocab: number;
  /** Scale of the per-layer table rows (sqrt(dim), in the weights' dtype). */
  tableScale: number;
}

export interface ModelConfig {
  modelType: string;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  /** Per-layer RoPE (families with local/global layers give each its own). */
  rope: RopeConfig[];
  /** Per-layer sliding window (0 = global attention). */
  slidingWindow: number[];
  activation: Activation;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
  /** Per-head RMSNorm on q and k (Qwen3, Gemma 3). */
  qkNorm: boolean;
  /** Extra norms after attention and after the MLP (Gemma 3's sandwich norms). */
  postNorms: boolean;
  /** Multiplier applied to embeddings (Gemma: sqrt(hidden)). */
  embeddingScale: number;
  /** Attention score scale (usually 1/sqrt(headDim)). */
  attnScale: number;
  /** Final logit soft-capping (0 = none). */
  finalLogitSoftcap: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** VLMs: the vision tower and connector (src/vision/); absent for text-only models. */
  vision?: VisionConfig;
  // Gemma 4 (absent elsewhere: every layer is headDim / numKvHeads / intermediateSize).
  /** Per-layer shapes, when layers differ. */
  layerShapes?: LayerShape[];
  /**
   * KV sharing: layer l attends the cache of layer kvSource[l] (l itself: its own K/V). A
   * shared layer has no K/V projection and writes nothing.
   */
  kvSource?: number[];
  /** An unscaled per-head RMSNorm on V (Gemma 4's v_norm). */
  valueNorm?: boolean;
  perLayerInput?: PerLayerInputConfig;
  /** A learned scalar multiplies each layer's output (Gemma 4's layer_scalar). */
  layerScalar?: boolean;
}

export function kvDim(c: ModelConfig): number {
  return c.numKvHeads * c.headDim;
}

export function qDim(c: ModelConfig): number {
  return c.numHeads * c.headDim;
}

/** Layer l's shape (the model-wide fields unless the family gives layers their own). */
export function layerShape(c: ModelConfig, l: number): LayerShape {
  return c.layerShapes?.[l] ?? { headDim: c.headDim, numKvHeads: c.numKvHeads, intermediateSize: c.intermediateSize, kEqV: false };
}
export const layerQDim = (c: ModelConfig, l: number): number => c.numHeads * layerShape(c, l).headDim;
export const layerKvDim = (c: ModelConfig, l: number): number => layerShape(c, l).numKvHeads * layerShape(c, l).headDim;
/** The layer whose K/V layer l attends (itself unless KV-shared). */
export const kvSourceOf = (c: ModelConfig, l: number): number => c.kvSource?.[l] ?? l;
export const isKvShared = (c: ModelConfig, l: number): boolean => kvSourceOf(c, l) !== l;
/** Rows of POP's deep K/V stack for the layers [from, L): 2 kvDim per layer that has its own K/V. */
export function deepKvRows(c: ModelConfig, from: number): number {
  let rows = 0;
  for (let l = Math.max(1, from); l < c.numLayers; l++) if (!isKvShared(c, l)) rows += 2 * layerKvDim(c, l);
  return rows;
}

/** Largest of a per-layer size over the layers (scratch buffers are sized for it). */
export function maxOverLayers(c: ModelConfig, f: (l: number) => number): number {
  let m = 0;
  for (let l = 0; l < c.numLayers; l++) m = Math.max(m, f(l));
  return m;
}

/**
 * One RoPE table per distinct RoPE setting of the model's layers (Gemma 3's local and global
 * layers differ; most models share one), uploaded on first use: layer l -> its table.
 */
export function ropeTablesByLayer<T>(c: ModelConfig, positions: number, upload: (label: string, table: Float32Array) => T): (layer: number) => T {
  const tables = new Map<string, T>();
  return (l) => {
    const d = layerShape(c, l).headDim;
    const key = JSON.stringify([c.rope[l], d]);
    let t = tables.get(key);
    if (!t) tables.set(key, (t = upload(`rope.${tables.size}`, ropeTable(c.rope[l], d, positions))));
    return t;
  };
}

/**
 * RoPE cos/sin table for positions [0, positions): row p is [cos(p·f_0..f_{d/2-1}) |
 * sin(...)], angles taken in f32 as HF does and cos/sin in f64 (WGSL's own cos/sin allow
 * 2^-11 absolute error, too coarse at long positions).
 */
export function ropeTable(rope: RopeConfig, headDim: number, positions: number): Float32Array {
  const inv = ropeInvFreq(rope, headDim), half = headDim / 2;
  const out = new Float32Array(positions * headDim);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const a = Math.fround(p * inv[i]);
      out[p * headDim + i] = Math.cos(a);
      out[p * headDim + half + i] = Math.sin(a);
    }
  }
  return out;
}

/**
 * RoPE inverse frequencies for the rotate-half layout: inv_freq[i] = theta^(-2i/d),
 * with Llama-3 `rope_scaling` applied as in HF's `_compute_llama3_parameters`.
 */
export function ropeInvFreq(rope: RopeConfig, headDim: number): Float32Array {
  const half = headDim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) out[i] = 1 / Math.pow(rope.theta, (2 * i) / headDim);
  const s = rope.scaling;
  if (s?.type === 'proportional') {
    // transformers' _compute_proportional_rope_parameters: the exponent's denominator is the
    // whole head dim; the pairs past floor(factor · headDim / 2) get frequency 0 (cos 1, sin 0:
    // they pass through the rotate-half unchanged, exactly).
    const rotated = Math.floor((s.partialRotaryFactor * headDim) / 2);
    for (let i = rotated; i < half; i++) out[i] = 0;
    for (let i = 0; i < half; i++) out[i] /= s.factor;
  } else if (s?.type === 'linear') {
    for (let i = 0; i < half; i++) out[i] /= s.factor;
  } else if (s?.type === 'llama3') {
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const f = out[i];
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) out[i] = f / s.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        out[i] = (1 - smooth) * (f / s.factor) + smooth * f;
      }
    }
  }
  return out;
}
