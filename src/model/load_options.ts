// What a weight load is asked for (both formats: safetensors in loader.ts, MLC in mlc.ts)
// and what it reports while it runs.
import type { QuantScheme } from '../core/quant.ts';

/** Storage of a vocabulary-sized table (embedding, LM head): int4, f16 halves or f32. */
export type TableDtype = 'q4' | 'f16' | 'f32';

/** The load options that decide how the embedding tables and the LM head are stored (EngineOptions; fit check). */
export interface TableStorageOptions {
  quantization?: 'none' | 'q4' | 'q4-asym';
  /** 'auto' resolved by the caller; 'auto' here counts as f32. */
  weightDtype?: 'auto' | 'f32' | 'f16';
  embeddingDtype?: 'auto' | TableDtype;
  lmHeadDtype?: 'auto' | TableDtype;
  /** The older switch: true = a q4 head (with quantization), false = an unquantized head. */
  quantizeLmHead?: boolean;
}

/**
 * How a load stores the embedding tables and the LM head. 'auto' (the default): with
 * quantization both are q4 (a tied head then reads the q4 embedding: no copy), without it the
 * embedding is f32 and the head follows weightDtype. `quantizeLmHead` (when given and no
 * lmHeadDtype is) keeps its old meaning.
 */
export function tableStorage(o: TableStorageOptions): { embed: TableDtype; head: TableDtype } {
  const quantized = (o.quantization ?? 'none') !== 'none';
  const plain: TableDtype = o.weightDtype === 'f16' ? 'f16' : 'f32';
  const embed: TableDtype = o.embeddingDtype && o.embeddingDtype !== 'auto' ? o.embeddingDtype : quantized ? 'q4' : 'f32';
  const head: TableDtype = o.lmHeadDtype && o.lmHeadDtype !== 'auto' ? o.lmHeadDtype
    : o.quantizeLmHead !== undefined ? (o.quantizeLmHead && quantized ? 'q4' : plain)
    : quantized ? 'q4' : plain;
  return { embed, head };
}

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
  /** Quantize the LM head too (when `headDtype` is not given; a tied one gets its own q4 copy unless the embedding is q4). */
  quantLmHead?: boolean;
  /**
   * How the embedding tables are stored (the main one and Gemma 4's per-layer one): int4 in
   * `quant`'s scheme ('q4' without quant), gathered dequantized (shaders/embed_q4.wgsl); f16
   * halves (embed_f16.wgsl); or f32 (default).
   */
  embedDtype?: TableDtype;
  /**
   * How the LM head is stored (default: q4 with `quantLmHead`, else f16 with `half`, else f32).
   * A tied head stored as the embedding is reads the embedding itself (no copy); otherwise it
   * gets its own copy of the same rows.
   */
  headDtype?: TableDtype;
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
