// The one interface between model code and a device. `forward.ts` calls only these ops;
// `gpu_ops.ts` dispatches WGSL kernels, `reference/cpu_ops.ts` is the plain TypeScript twin
// the tests compare against. T is a device tensor (a GPUBuffer, or a Float32Array on CPU).
import type { Activation, AttentionShape, FullAttentionShape, KvDtype, SampleParams } from '../core/op_types.ts';
import type { HalfSpec } from '../core/half.ts';
import type { QuantInfo, QuantSpec } from '../core/quant.ts';

export type { Activation, AttentionShape, FullAttentionShape, KvDtype, SampleParams, QuantSpec };

/** One distinct token's logit adjustments for a sampling step (shaders/logits_adjust.wgsl). */
export interface TokenAdjustment {
  id: number;
  /** Times the token was generated in this request (frequency / presence penalties). */
  count: number;
  /** In the prompt or generated (repetition penalty). */
  seen: boolean;
  /** logit_bias, added to the logit. */
  bias: number;
}

/** Everything a sampling step may use beyond SampleParams. */
export interface SampleOptions {
  /** At most one entry per id. */
  adjust?: readonly TokenAdjustment[];
  frequencyPenalty?: number;
  presencePenalty?: number;
  repetitionPenalty?: number;
  /** Grammar bitmask of allowed tokens, ceil(vocab / 32) words (src/engine/grammar.ts). */
  mask?: Int32Array | null;
  /** Return logprobs with this many top tokens (0..20); absent: no logprobs. */
  topLogprobs?: number;
  /** The request's own readback target (Ops.sampleReadback); absent: the ops' shared one. */
  readback?: SampleReadback;
}

/** Where a request's sampled token comes back (GpuOps: a small MAP_READ buffer of its own). */
export interface SampleReadback {
  destroy(): void;
}

/** A sampled token and, when asked, log-probabilities (of logits / T, T = 1 for greedy). */
export interface SampledToken {
  id: number;
  logprob?: number;
  top?: { id: number; logprob: number }[];
}

/** Most top_logprobs a step returns (OpenAI's limit). */
export const MAX_TOP_LOGPROBS = 20;

/**
 * How `upload` stores a tensor. `quant`: int4 weight-only quantization of a [rows, quant.cols]
 * weight (src/core/quant.ts), for weights that are only ever the `w` of `matmul`: the GPU keeps
 * the packed buffer and its matmul picks the q4 kernels; the CPU twin keeps the dequantized
 * values. Such a tensor must not be read by other ops (`read` gives the packed words).
 */
export interface UploadOptions {
  /**
   * Row length of a [rows, cols] tensor (quant.cols / half.cols count too). With it, a device
   * may store a tensor larger than one binding (maxStorageBufferBindingSize) as row parts that
   * `embed` (table) and `matmul` (w) read; without it such a tensor is refused (GPU_OUT_OF_MEMORY).
   */
  cols?: number;
  quant?: QuantSpec;
  /**
   * f16 storage of a weight read only as the `w` of `matmul` (src/core/half.ts): `true`, or
   * { cols, gains } for column gains (POP's deep K/V). The GPU keeps packed halves and its
   * matmul picks the f16 kernels; the CPU twin keeps the f16-rounded values.
   */
  half?: true | HalfSpec;
}

/**
 * A [rows, cols] matrix filled by row ranges while its bytes download (src/model/stream.ts):
 * `finish` gives exactly what `upload(label, allRows, opts)` would, so a load never needs the
 * whole tensor on the host. Rows may come in any order, each exactly once.
 */
export interface RowUpload<T> {
  /** Rows [row0, row0 + data.length / cols), f32 (stored as `opts` says: f32, q4, f16, row parts). */
  write(row0: number, data: Float32Array): void;
  /** Every row written: the tensor. Column gains (quant.gains / half.gains) are read here. */
  finish(): T;
  /** Frees what was allocated (a failed or aborted load). */
  discard(): void;
}

/** K/V storage of one layer: pages of [pageSize, kvHeads, headDim] each, for K and V (made by Ops.allocKv). */
export interface KvLayerStorage<T> {
  k: T;
  v: T;
  /** How the values are stored (default f32); kvWrite rounds to it, the attention kernels read it. */
  dtype?: KvDtype;
}

/** What kernels need to address one sequence's pages. */
export interface SeqView<T> {
  /** Host copy of the page table: logical page i lives in physical page pages[i]. */
  pages: Uint32Array;
  /** Device copy of the same table. */
  table: T;
  pageSize: number;
}

/** Per-head RMSNorm applied inside rope / kvWrite (Qwen3, Gemma 3 q/k norms). */
export interface HeadNorm<T> {
  gain: T;
  eps: number;
}

export interface Ops<T> {
  readonly name: string;
  /** Variant chosen per kernel (reported in stats). */
  readonly variants: Record<string, string>;

  alloc(label: string, elements: number): T;
  upload(label: string, data: Float32Array, opts?: UploadOptions): T;
  /** The same storage as `upload`, written by row ranges (streamed loads); `opts.cols` is the row length. */
  uploadRows(label: string, rows: number, opts: UploadOptions & { cols: number }): RowUpload<T>;
  /**
   * A weight that arrives already int4-packed in the layout of src/core/quant.ts (MLC q4
   * checkpoints, src/model/mlc.ts): stored as is, read only as the `w` of `matmul`.
   */
  uploadPacked(label: string, packed: Uint32Array, info: QuantInfo): T;
  uploadU32(label: string, data: Uint32Array): T;
  /**
   * K or V storage of `elements` values (a multiple of 2) in `dtype`: f16 takes two bytes a value on
   * the GPU (pairs of halves in u32 words); the CPU twin keeps f32 arrays of f16-rounded values.
   */
  allocKv(label: string, elements: number, dtype: KvDtype): T;
  /** Copies `rows` K and V rows of `width` values (even) within one layer's storage (copy on write of a shared page). */
  copyKvRows(layer: KvLayerStorage<T>, dstRow: number, srcRow: number, rows: number, width: number): void;
  writeU32(dst: T, data: Uint32Array): void;
  free(t: T): void;

  /** out[r, :] = table[ids[r], :] * scale */
  embed(out: T, ids: ArrayLike<number>, table: T, rows: number, hidden: number, scale: number): void;
  /** out[r, :] = x[r, :] / rms(x[r, :]) * gain   (gain null = 1); out may alias x. */
  rmsNorm(out: T, x: T, gain: T | null, rows: number, dim: number, eps: number): void;
  /** out[r, n] (+)= sum_k x[xRow + r, k] * w[n, k] + bias[n], rows r < m, written at outRow + r. */
  matmul(out: T, x: T, w: T, m: number, n: number, k: number, opt?: { bias?: T | null; accumulate?: boolean; xRow?: number; outRow?: number }): void;
  /**
   * out = matmul(rmsNorm(x, gain, eps), w) (+ bias): a norm and the projection that reads it. `normed`
   * ([m, k]) is where a device that runs them apart writes the normed rows; its contents after the call
   * are unspecified. GpuOps folds the norm into the q4 GEMV's load at M = 1 when its probe chose that.
   */
  normMatmul(out: T, x: T, gain: T | null, eps: number, w: T, m: number, n: number, k: number, opt: { bias?: T | null; normed: T }): void;
  /**
   * out (+)= matmul(act(gu[r, :k]) * gu[r, k:], w): the MLP's gated activation and down projection
   * (gu rows are 2k wide). `hidden` ([m, k]) as `normed` above; GpuOps fuses as normMatmul does.
   */
  gluMatmul(out: T, gu: T, act: Activation, w: T, m: number, n: number, k: number, opt: { accumulate?: boolean; hidden: T }): void;
  /** Rotate-half RoPE in place on `heads` heads starting at column `colOffset` of rows with `rowStride`; optional per-head norm first. */
  rope(x: T, rows: number, rowStride: number, colOffset: number, heads: number, headDim: number, startPos: number, ropeTable: T, norm: HeadNorm<T> | null): void;
  /** Writes K (after optional k-norm and RoPE) and V of `rows` tokens at positions startPos.. into the cache pages. */
  kvWrite(layer: KvLayerStorage<T>, seq: SeqView<T>, src: T, rows: number, rowStride: number, kOffset: number, vOffset: number, kvHeads: number, headDim: number, startPos: number, ropeTable: T, kNorm: HeadNorm<T> | null): void;
  /**
   * Causal attention for `rows` queries at positions startPos.. over the cache (keys 0..pos, or
   * the last `window`). Q read from `q` at column 0 with `qStride`. `keyEnd` (one entry per row,
   * absolute positions) lets row r also attend keys below keyEnd[r]: bidirectional spans such as
   * an image's tokens; those keys must already be in the cache. The GPU copies an array once
   * (the forward passes one per step to every layer): pass a new array for new contents.
   */
  attention(out: T, q: T, qStride: number, layer: KvLayerStorage<T>, seq: SeqView<T>, rows: number, startPos: number, shape: AttentionShape, keyEnd?: ArrayLike<number> | null): void;
  /** Sizes attention's working memory at load for up to `rows` queries over up to `keys` keys (so requests allocate nothing). */
  reserveAttention(rows: number, keys: number, numHeads: number, numKvHeads: number, headDim: number): void;
  /** out[r, i] = act(gu[r, i]) * gu[r, inter + i] */
  glu(out: T, gu: T, rows: number, inter: number, act: Activation): void;
  /** out[offsets.out + i] += a[offsets.a + i] (offsets in elements, default 0). */
  add(out: T, a: T, elements: number, offsets?: { out: number; a: number }): void;
  /** Copies `rows` rows of `width` floats. */
  copyRows(dst: T, dstRow: number, src: T, srcRow: number, rows: number, width: number): void;
  /** x[i] = cap * tanh(x[i] / cap) */
  softcap(x: T, elements: number, cap: number): void;
  /** x[i] *= s (Gemma 4's layer_scalar). */
  scale(x: T, elements: number, s: number): void;
  /** Per-head RMSNorm in place on `heads` heads from column colOffset of rows with rowStride; gain null = 1 (Gemma 4's v_norm). */
  headNorm(x: T, rows: number, rowStride: number, colOffset: number, heads: number, headDim: number, gain: T | null, eps: number): void;
  /** In place: gate[r, i] = act(gate[r, i]) * other[r * otherStride + otherOffset + i] for i < dim (Gemma 4's per-layer input gate). */
  gateMul(gate: T, other: T, rows: number, dim: number, otherStride: number, otherOffset: number, act: Activation): void;
  /** Samples one token from logits row 0; only the id comes back. */
  sample(logits: T, vocab: number, params: SampleParams, step: number): Promise<number>;
  /**
   * One sampling step with the request's logit adjustments (applied to `logits` in place),
   * a grammar mask and logprobs; only the id (and logprobs) come back.
   */
  sampleToken(logits: T, vocab: number, params: SampleParams, step: number, o: SampleOptions): Promise<SampledToken>;
  /** A readback target for sampleToken that one request owns (so requests never share a mapped buffer). */
  sampleReadback?(): SampleReadback;
  /** Sends recorded work to the device (no-op on CPU). */
  flush(): void;
  /** Reads floats back (tests, debugging, calibration). */
  read(t: T, elements: number, offset?: number): Promise<Float32Array>;

  // Vision towers (SigLIP) and connectors (Idefics3, Gemma 3).
  /** out[r, :] = (x[r, :] - mean) / sqrt(var + eps) * gain + bias; out must not alias x. */
  layerNorm(out: T, x: T, gain: T, bias: T, rows: number, dim: number, eps: number): void;
  /** x[i] = gelu(x[i]) in place: the tanh approximation, or with `exact` the erf form (torch nn.GELU()). */
  gelu(x: T, elements: number, exact?: boolean): void;
  /** im2col: pixels [tiles, C, size, size] -> out [tiles * (size/patch)^2, C * patch^2], patches row-major. */
  patchify(out: T, pixels: T, tiles: number, channels: number, size: number, patch: number): void;
  /** out [rows, heads*headDim] = softmax(Q K^T * scale) V within each sequence of seqLen rows (no mask). */
  attentionFull(out: T, qkv: T, shape: FullAttentionShape): void;
  /** Idefics3 pixel shuffle: x [tiles, side^2, dim] -> out [tiles, (side/scale)^2, scale^2 * dim]. */
  pixelShuffle(out: T, x: T, tiles: number, side: number, dim: number, scale: number): void;
  /** Gemma 3's projector pool: x [tiles, side^2, dim] -> out [tiles, (side/kernel)^2, dim], the mean of each kernel x kernel block of patches. */
  avgPool(out: T, x: T, tiles: number, side: number, dim: number, kernel: number): void;
}
