// The normalized model configuration every family's config.json is mapped into. The one
// forward pass reads only this, never a family's raw keys.
import type { Activation } from '../core/op_types.ts';
import type { VisionConfig } from './vision_config.ts';

export type { Activation };

export interface RopeConfig {
  theta: number;
  /** HF `rope_scaling` (llama3 / linear), or null. */
  scaling: { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number } | { type: 'linear'; factor: number } | null;
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
}

export function kvDim(c: ModelConfig): number {
  return c.numKvHeads * c.headDim;
}

export function qDim(c: ModelConfig): number {
  return c.numHeads * c.headDim;
}

/**
 * One RoPE table per distinct RoPE setting of the model's layers (Gemma 3's local and global
 * layers differ; most models share one), uploaded on first use: layer l -> its table.
 */
export function ropeTablesByLayer<T>(c: ModelConfig, positions: number, upload: (label: string, table: Float32Array) => T): (layer: number) => T {
  const tables = new Map<string, T>();
  return (l) => {
    const key = JSON.stringify(c.rope[l]);
    let t = tables.get(key);
    if (!t) tables.set(key, (t = upload(`rope.${tables.size}`, ropeTable(c.rope[l], c.headDim, positions))));
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
  if (s?.type === 'linear') {
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
