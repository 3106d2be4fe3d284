// Device weights by role, as the one forward reads them. Built once at load; fused
// layouts (QKV, gate|up, stacked deep K/V for POP) are made here, not in kernels.
export interface LayerWeights<T> {
  inputNorm: T;
  /** [q | k | v] rows stacked: [qDim + 2 kvDim, hidden]. */
  qkv: T;
  qkvBias: T | null;
  qNorm: T | null;
  kNorm: T | null;
  o: T;
  attnOutNorm: T | null;
  mlpNorm: T;
  /** [gate | up] rows stacked: [2 inter, hidden]. */
  gateUp: T;
  down: T;
  mlpOutNorm: T | null;
  /** RoPE cos|sin table for this layer, [positions, headDim] (shared between equal configs). */
  rope: T;
  /** Gemma 4's per-layer input: gate [P, hidden], projection [hidden, P], its output norm (null without PLE). */
  pleGate?: T | null;
  pleProj?: T | null;
  pleNorm?: T | null;
}

/** Gemma 4's per-layer embeddings, as the forward reads them. */
export interface PerLayerInputWeights<T> {
  /** [vocab, L·P] (read by `embed`, scale tableScale · 2^-0.5). */
  table: T;
  /** per_layer_model_projection × hidden^-0.5: [L·P, hidden]. */
  modelProj: T;
  /** per_layer_projection_norm × 2^-0.5: [P] (the mean of the two parts folded into the gains). */
  projNorm: T;
}

export interface Weights<T> {
  embed: T;
  finalNorm: T;
  lmHead: T;
  layers: LayerWeights<T>[];
  /**
   * POP's independent K/V projection: the K and V weights of layers L-1, L-2, ..., 1 stacked
   * in that (reverse) order (a KV-shared layer has no block: src/model/config.ts deepKvRows), each with its layer's input-norm gain folded in
   * (W·diag(g)), [(L-1) · 2 kvDim, hidden]. The deep layers [keep, L) are then always the
   * first L-keep blocks, so one GEMM serves every keep.
   */
  deepKv: T | null;
  deepKvBias: T | null;
  /** Gemma 4: the per-layer embeddings, and each layer's output scalar (host numbers). */
  ple?: PerLayerInputWeights<T> | null;
  layerScalars?: number[] | null;
}
