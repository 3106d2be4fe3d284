// The parameter types the kernels, the Ops interface (src/ops/ops.ts) and its CPU twin share:
// they sit below all three so that a kernel never imports the interface it implements.
// src/ops/ops.ts and src/model/config.ts re-export them.

export type Activation = 'silu' | 'gelu_tanh';

/** How the KV cache stores K and V: f32, or f16 (two halves per 32-bit word on the GPU; src/kv/). */
export type KvDtype = 'f32' | 'f16';

/** Sampling: temperature <= 0 is argmax; topK 0 and topP 1 keep every token. */
export interface SampleParams {
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  /** Keep tokens with p >= minP * p_max (0 or absent: off). */
  minP?: number;
}

export interface AttentionShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  scale: number;
  /** Sliding window in tokens (0 = unbounded). */
  window: number;
}

/** Bidirectional attention over contiguous Q/K/V (vision towers): rows form sequences of seqLen. */
export interface FullAttentionShape {
  rows: number;
  seqLen: number;
  /** Row stride of qkv, and the column where Q, K and V start (head h at +h*headDim). */
  stride: number;
  qOffset: number;
  kOffset: number;
  vOffset: number;
  numHeads: number;
  headDim: number;
  scale: number;
}
