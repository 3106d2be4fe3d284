// What a weight load is asked for (both formats: safetensors in loader.ts, MLC in mlc.ts)
// and what it reports while it runs.
import type { QuantScheme } from '../core/quant.ts';

export interface LoadProgress {
  file: string;
  loadedFiles: number;
  totalFiles: number;
  loadedBytes: number;
}

export interface BuildOptions {
  /** Build POP's stacked deep K/V weights (needed for keep < L). */
  pop: boolean;
  /** Positions the RoPE tables cover (the context window). */
  positions: number;
  /** int4-quantize the projection weights (qkv, o, gate|up, down, POP's deep K/V); null: f32. */
  quant?: QuantScheme | null;
  /** Quantize the LM head too (a tied one gets its own q4 copy; the embedding table stays f32). */
  quantLmHead?: boolean;
  /**
   * f16 storage (src/core/half.ts) for the matmul weights not quantized: projections, POP's deep
   * K/V (layer values rounded, norm gains as column gains) and the LM head (a tied one gets its
   * own f16 copy). Embeddings, norms and biases stay f32.
   */
  half?: boolean;
  /** Scan every value for NaN / Inf as it is converted: MALFORMED_WEIGHTS (default true; src/model/weight_check.ts). */
  checkWeights?: boolean;
}

export interface StreamOptions {
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
  /** Row ranges of about this many raw bytes (default src/model/stream.ts ROW_CHUNK_BYTES; tests make it small). */
  chunkBytes?: number;
}
