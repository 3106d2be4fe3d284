import prefillCode from '../../shaders/attention_prefill.wgsl?raw';
import decodeCode from '../../shaders/attention_decode.wgsl?raw';
import softmaxCode from '../../shaders/attention_softmax.wgsl?raw';
import headMajorCode from '../../shaders/head_major.wgsl?raw';
import kvGatherCode from '../../shaders/kv_gather.wgsl?raw';
import decodeChunksCode from '../../shaders/attention_decode_chunks.wgsl?raw';
import combineCode from '../../shaders/attention_combine.wgsl?raw';
import flashCode from '../../shaders/attention_flash.wgsl?raw';
import kvReadCode from '../../shaders/kv_read.wgsl?raw';
import { elementGrid, pipeline, type KernelContext } from './context.ts';
import { matmul, type MatmulVariants } from './matmul.ts';
import type { AttentionShape, FullAttentionShape } from '../core/op_types.ts';
import { InternalError } from '../errors.ts';

// The kernels that read the paged cache share its read functions (shaders/kv_read.wgsl);
// WGSL has no include, and module-scope names may be used before they are declared.
const withKvRead = (code: string) => `${kvReadCode}\n${code}`;
const decodeKernel = withKvRead(decodeCode), prefillKernel = withKvRead(prefillCode);
const decodeChunksKernel = withKvRead(decodeChunksCode), flashKernel = withKvRead(flashCode);

export interface AttentionArgs {
  out: GPUBuffer; q: GPUBuffer; qStride: number;
  k: GPUBuffer; v: GPUBuffer; pageTable: GPUBuffer; pageSize: number;
  /** K/V stored as f16 pairs (src/kv/; the kernels' KV_F16 override). */
  kvF16?: boolean;
  rows: number; startPos: number; shape: AttentionShape;
  /** Optional u32 [rows]: row r also attends keys below keyEnd[r] (bidirectional spans). */
  keyEnd?: GPUBuffer | null;
  /** 'flash_decode' only: key positions per chunk (default FLASH_DECODE_CHUNK; a multiple of 64). */
  decodeChunk?: number;
}

/**
 * Attention over the paged cache has three shapes:
 * - 'split_keys': one workgroup per (head, row) splitting the keys; decode (one row), and on
 *   real GPUs a few rows over a long context (a new turn after a reused prefix).
 * - 'gemm': many rows on software adapters. Q·Kᵀ and P·V run through the probe-chosen
 *   register-blocked GEMM (one batched dispatch over KV heads, blocks above the causal diagonal
 *   skipped), with a softmax pass between: SwiftShader runs that GEMM several times faster than
 *   any per-row attention loop, whose per-invocation state spills (measured at 512 tokens on
 *   the SmolLM2-135M shape: 331 ms per layer for 'rows8', ~120 ms for the two GEMMs).
 * - 'rows8': 8 query rows per invocation with online softmax; everything else (real GPUs'
 *   prompts, and contexts too long for the GEMM path's scratch).
 * - 'flash_decode': flash-decoding, the GPU shape of 'split_keys': one workgroup per (head,
 *   chunk of keys, row) writes a partial max / sum / weighted V, and one combine pass merges
 *   them, so one long sequence spreads over the whole GPU. Chosen for decode by the probe
 *   (src/ops/kernel_probe.ts) where it is faster; takes no key ends.
 * - 'flash': flash-attention prefill, the GPU shape of 'rows8': a workgroup of query rows of one
 *   head walks the keys in tiles staged in workgroup memory, online softmax, no score matrix.
 *   Chosen for prefill by the probe where it is faster (never on SwiftShader, where 'gemm' wins).
 */
export type AttentionVariant = 'split_keys' | 'rows8' | 'gemm' | 'flash_decode' | 'flash';

/** Decode attention variants the probe times (one row). */
export const DECODE_ATTENTION_VARIANTS: AttentionVariant[] = ['split_keys', 'flash_decode'];
/** Prefill attention variants the probe times (many rows). */
export const PREFILL_ATTENTION_VARIANTS: AttentionVariant[] = ['gemm', 'rows8', 'flash'];
/** Query rows per flash-attention workgroup. */
const FLASH_ROWS = 32;
/** Key positions per flash-decoding chunk. */
export const FLASH_DECODE_CHUNK = 256;

/**
 * `decode`: the probe's choice for one row (default 'split_keys'); `prefill`: its choice for many
 * rows (default 'gemm' on software adapters, 'rows8' elsewhere). 'gemm' falls back to 'rows8'
 * below GEMM_MIN_ROWS; on real GPUs a few rows after a long context take 'split_keys'.
 */
export function attentionVariant(ctx: KernelContext, rows: number, startPos: number, hasKeyEnd = false, decode: AttentionVariant = 'split_keys', prefill?: AttentionVariant): AttentionVariant {
  if (rows === 1 && !hasKeyEnd) return decode;
  const p = prefill ?? (ctx.gpu.isSoftware ? 'gemm' : 'rows8');
  if (!ctx.gpu.isSoftware && !hasKeyEnd && rows <= 64 && startPos >= 4 * rows) return 'split_keys';
  return p === 'gemm' && rows < GEMM_MIN_ROWS ? 'rows8' : p;
}

/** Below this many query rows the GEMM path's fixed passes cost more than they save. */
const GEMM_MIN_ROWS = 8;
/** Scratch ceilings of the GEMM path, in floats: scores (query rows are sliced to fit) and each of K and Vᵀ. */
const MAX_SCORES = 8 << 20;
const MAX_KV = 4 << 20;

/**
 * The GEMM path's operands: head-major Q and output, the score matrix, and K / Vᵀ gathered out
 * of the pages. Engines size it once at load (reserve), so requests allocate nothing and GPU
 * bytes stay flat; direct callers (kernel tests) get it grown on first use.
 */
export class AttentionScratch {
  private bufs: Record<ScratchName, { buf: GPUBuffer | null; cap: number }> = {
    q: { buf: null, cap: 0 }, o: { buf: null, cap: 0 }, s: { buf: null, cap: 0 }, k: { buf: null, cap: 0 }, vt: { buf: null, cap: 0 }, part: { buf: null, cap: 0 },
  };

  private readonly maxScores: number;
  private readonly maxKv: number;

  constructor(private readonly alloc: (label: string, elements: number) => GPUBuffer, private readonly free: (b: GPUBuffer) => void, ceilings: { scores?: number; kv?: number } = {}) {
    this.maxScores = ceilings.scores ?? MAX_SCORES;
    this.maxKv = ceilings.kv ?? MAX_KV;
  }

  /** Sizes the scratch for up to `rows` query rows over up to `keys` keys. */
  reserve(rows: number, keys: number, heads: number, kvHeads: number, headDim: number): void {
    const keysPad = pad4(keys);
    this.grow('s', Math.min(this.maxScores, heads * rows * keysPad));
    this.grow('k', Math.min(this.maxKv, kvHeads * keysPad * headDim));
    this.grow('vt', Math.min(this.maxKv, kvHeads * keysPad * headDim));
    this.grow('q', heads * rows * headDim);
    this.grow('o', heads * rows * headDim);
  }

  /** Sizes flash-decoding's partials for `rows` rows over up to `keys` keys. */
  reservePartials(rows: number, keys: number, heads: number, headDim: number, chunk = FLASH_DECODE_CHUNK): void {
    this.grow('part', rows * heads * Math.ceil(keys / chunk) * (4 + headDim));
  }

  /** Query rows per slice for this call, or 0 when the keys do not fit the ceilings. */
  plan(rows: number, keys: number, heads: number, kvHeads: number, headDim: number): number {
    const keysPad = pad4(keys);
    if (kvHeads * keysPad * headDim > this.maxKv) return 0;
    const slice = Math.min(rows, Math.floor(this.maxScores / (heads * keysPad)));
    if (slice < Math.min(rows, GEMM_MIN_ROWS)) return 0;
    this.reserve(slice, keys, heads, kvHeads, headDim);
    return slice;
  }

  get(name: ScratchName): GPUBuffer {
    return this.bufs[name].buf!;
  }

  release(): void {
    for (const b of Object.values(this.bufs)) {
      if (b.buf) this.free(b.buf);
      b.buf = null;
      b.cap = 0;
    }
  }

  private grow(name: ScratchName, elements: number): void {
    const b = this.bufs[name];
    if (b.cap >= elements) return;
    if (b.buf) this.free(b.buf);
    b.buf = this.alloc(`attention-${name}`, elements);
    b.cap = elements;
  }
}

type ScratchName = 'q' | 'o' | 's' | 'k' | 'vt' | 'part';

const pad4 = (n: number) => Math.ceil(n / 4) * 4;

/** `gemm`: the GEMM path's matmul variants and the scratch (also flash-decoding's partials); `decode`: the probe's one-row choice. */
export function attention(ctx: KernelContext, a: AttentionArgs, gemm: { variants: MatmulVariants; scratch: AttentionScratch; decode?: AttentionVariant; prefill?: AttentionVariant } | null, force?: AttentionVariant): void {
  const s = a.shape;
  // Heads wider than the per-invocation kernels hold (Gemma 4's 512-dim global layers) take the GEMM path at any row count.
  const wide = s.headDim > 256;
  if (s.headDim % 4) throw new InternalError(`attention: headDim ${s.headDim} must be a multiple of 4`);
  const variant = force ?? (wide ? 'gemm' : attentionVariant(ctx, a.rows, a.startPos, !!a.keyEnd, gemm?.decode, gemm?.prefill));
  if (variant === 'gemm' && gemm && attentionGemm(ctx, a, gemm.variants, gemm.scratch)) return;
  if (wide) throw new InternalError(`attention: headDim ${s.headDim} > 256 needs the GEMM path, whose scratch does not hold ${a.startPos + a.rows} keys`);
  if (variant === 'flash_decode' && gemm) return flashDecode(ctx, a, gemm.scratch);
  if (variant === 'flash') return flashPrefill(ctx, a);
  const decode = variant === 'split_keys';
  if (decode && a.keyEnd) throw new InternalError('attention: the split-keys kernel takes no key ends');
  ctx.rec.dispatch({
    pipeline: decode ? pipeline(ctx, { kernel: 'attention_decode', constants: kvConstants(a) }, decodeKernel) : pipeline(ctx, { kernel: 'attention_prefill', constants: { HD4: s.headDim / 4, ...kvConstants(a) } }, prefillKernel),
    params: [a.rows, a.startPos, s.numHeads, s.numKvHeads, s.headDim, a.qStride, a.pageSize, s.window, s.scale, a.keyEnd ? 1 : 0, 0, 0], f32: [8],
    buffers: decode ? [a.q, a.pageTable, a.k, a.v, a.out] : [a.q, a.pageTable, a.k, a.v, a.out, a.keyEnd ?? ctx.dummy],
    workgroups: decode ? [s.numHeads, a.rows] : elementGrid(ctx, Math.ceil(a.rows / 8) * s.numHeads, 16),
  });
}

/** The KV_F16 override of the kernels that read the cache (absent for f32, so f32 pipelines keep their keys). */
function kvConstants(a: { kvF16?: boolean }): Record<string, number> | undefined {
  return a.kvF16 ? { KV_F16: 1 } : undefined;
}

/** Flash-attention prefill: WG query rows of one head per workgroup, keys in tiles of KT through workgroup memory. */
function flashPrefill(ctx: KernelContext, a: AttentionArgs): void {
  const s = a.shape, hd4 = s.headDim / 4;
  // K and V tiles of 512 vec4 each (16 KiB, WebGPU's guaranteed workgroup storage).
  const kt = Math.min(32, Math.floor(512 / hd4));
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'attention_flash', constants: { WG: FLASH_ROWS, HD4: hd4, KT: kt, ...kvConstants(a) } }, flashKernel),
    params: [a.rows, a.startPos, s.numHeads, s.numKvHeads, s.headDim, a.qStride, a.pageSize, s.window, s.scale, a.keyEnd ? 1 : 0, 0, 0], f32: [8],
    buffers: [a.q, a.pageTable, a.k, a.v, a.out, a.keyEnd ?? ctx.dummy],
    workgroups: [Math.ceil(a.rows / FLASH_ROWS), s.numHeads],
  });
}

/** Flash-decoding: partials per chunk of keys (attention_decode_chunks), then one combine pass. */
function flashDecode(ctx: KernelContext, a: AttentionArgs, scratch: AttentionScratch): void {
  const s = a.shape, chunk = a.decodeChunk ?? FLASH_DECODE_CHUNK;
  if (a.keyEnd) throw new InternalError('attention: flash-decoding takes no key ends');
  if (chunk % 64 || chunk <= 0) throw new InternalError(`attention: flash-decoding chunk ${chunk} must be a positive multiple of 64`);
  const chunks = Math.ceil((a.startPos + a.rows) / chunk);
  scratch.reservePartials(a.rows, a.startPos + a.rows, s.numHeads, s.headDim, chunk);
  const part = scratch.get('part');
  const params = [a.rows, a.startPos, s.numHeads, s.numKvHeads, s.headDim, a.qStride, a.pageSize, s.window, s.scale, chunks, 0, 0];
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'attention_decode_chunks', constants: { CHUNK: chunk, ...kvConstants(a) } }, decodeChunksKernel),
    params, f32: [8],
    buffers: [a.q, a.pageTable, a.k, a.v, part],
    workgroups: [s.numHeads, chunks, a.rows],
  });
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'attention_combine' }, combineCode),
    params, f32: [8],
    buffers: [part, a.out],
    workgroups: [s.numHeads, a.rows],
  });
}

/** Causal attention over the pages as GEMMs; false when the context is too long for the scratch. */
function attentionGemm(ctx: KernelContext, a: AttentionArgs, variants: MatmulVariants, scratch: AttentionScratch): boolean {
  const s = a.shape;
  // Keys the rows can see: from the window's start for the first row up to the last row.
  const k0 = s.window > 0 ? Math.max(0, a.startPos + 1 - s.window) : 0;
  const keys = a.startPos + a.rows - k0;
  const slice = scratch.plan(a.rows, keys, s.numHeads, s.numKvHeads, s.headDim);
  if (!slice) return false;
  gatherKv(ctx, scratch, { keys, k0, kvHeads: s.numKvHeads, headDim: s.headDim, pageTable: a.pageTable, pageSize: a.pageSize, k: a.k, v: a.v, kvF16: a.kvF16, stride: 0, kOffset: 0, vOffset: 0 });
  for (let r0 = 0; r0 < a.rows; r0 += slice) {
    const n = Math.min(slice, a.rows - r0);
    scoresSoftmaxValues(ctx, variants, scratch, {
      q: a.q, qStride: a.qStride, qOffset: r0 * a.qStride, out: a.out, outOffset: r0 * s.numHeads * s.headDim,
      rows: n, keys, k0, startPos: a.startPos + r0, heads: s.numHeads, kvHeads: s.numKvHeads, headDim: s.headDim,
      scale: s.scale, window: s.window, causal: true, keyEnd: a.keyEnd ?? null, keyEndOffset: r0,
    });
  }
  return true;
}

/**
 * Bidirectional attention of a vision tower through the same GEMM path, one sequence (image
 * tile) at a time; false when a tile is too long for the scratch.
 */
export function attentionFullGemm(ctx: KernelContext, out: GPUBuffer, qkv: GPUBuffer, a: FullAttentionShape, variants: MatmulVariants, scratch: AttentionScratch): boolean {
  const slice = scratch.plan(a.seqLen, a.seqLen, a.numHeads, a.numHeads, a.headDim);
  if (!slice) return false;
  for (let k0 = 0; k0 < a.rows; k0 += a.seqLen) {
    gatherKv(ctx, scratch, { keys: a.seqLen, k0, kvHeads: a.numHeads, headDim: a.headDim, pageTable: ctx.dummy, pageSize: 0, k: qkv, v: qkv, stride: a.stride, kOffset: a.kOffset, vOffset: a.vOffset });
    for (let r0 = 0; r0 < a.seqLen; r0 += slice) {
      const n = Math.min(slice, a.seqLen - r0);
      scoresSoftmaxValues(ctx, variants, scratch, {
        q: qkv, qStride: a.stride, qOffset: (k0 + r0) * a.stride + a.qOffset, out, outOffset: (k0 + r0) * a.numHeads * a.headDim,
        rows: n, keys: a.seqLen, k0, startPos: k0 + r0, heads: a.numHeads, kvHeads: a.numHeads, headDim: a.headDim,
        scale: a.scale, window: 0, causal: false, keyEnd: null, keyEndOffset: 0,
      });
    }
  }
  return true;
}

interface GatherArgs {
  keys: number; k0: number; kvHeads: number; headDim: number;
  pageTable: GPUBuffer; pageSize: number; k: GPUBuffer; v: GPUBuffer;
  /** The paged source stores f16 pairs. */
  kvF16?: boolean;
  /** Token-major source (pageSize 0): row stride and K / V column offsets, in floats. */
  stride: number; kOffset: number; vOffset: number;
}

function gatherKv(ctx: KernelContext, scratch: AttentionScratch, g: GatherArgs): void {
  const keysPad = pad4(g.keys), hd4 = g.headDim / 4;
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'kv_gather', constants: kvConstants(g) }, kvGatherCode),
    params: [g.keys, keysPad, g.k0, g.kvHeads, hd4, g.pageSize, g.stride / 4, g.kOffset / 4, g.vOffset / 4, 0, 0, 0],
    buffers: [g.pageTable, g.k, g.v, scratch.get('k'), scratch.get('vt')],
    workgroups: elementGrid(ctx, g.kvHeads * keysPad * hd4, 64),
  });
}

interface SliceArgs {
  q: GPUBuffer; qStride: number; qOffset: number; out: GPUBuffer; outOffset: number;
  rows: number; keys: number; k0: number; startPos: number;
  heads: number; kvHeads: number; headDim: number; scale: number; window: number;
  causal: boolean; keyEnd: GPUBuffer | null; keyEndOffset: number;
}

/** One slice of query rows: Q to head-major, S = Q·Kᵀ, softmax, O = P·V, O back to token-major. */
function scoresSoftmaxValues(ctx: KernelContext, variants: MatmulVariants, scratch: AttentionScratch, a: SliceArgs): void {
  const keysPad = pad4(a.keys), hd = a.headDim, group = a.heads / a.kvHeads, m = group * a.rows;
  const q = scratch.get('q'), o = scratch.get('o'), sc = scratch.get('s');
  headMajor(ctx, a.q, q, a.rows, a.heads, hd, a.qStride, a.qOffset, true);
  // Row i of KV head j's GEMM is query row i % rows of head j*group + i / rows; key columns past
  // its position (the causal band) are skipped, and P·V stops there.
  const band = a.causal && !a.keyEnd ? { rows: a.rows, end: a.startPos - a.k0 + 1 } : null;
  const variant = variants.prefill;
  matmul(ctx, variants, {
    out: sc, x: q, w: scratch.get('k'), bias: null, m, n: keysPad, k: hd, accumulate: false, xOffset: 0, yOffset: 0,
    batch: { count: a.kvHeads, x: m * hd, w: keysPad * hd, y: m * keysPad }, band: band ? { mode: 1, ...band } : undefined,
  }, variant);
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'attention_softmax' }, softmaxCode),
    params: [a.rows, a.heads, a.keys, keysPad, a.startPos, a.k0, a.window, a.causal ? 1 : 0, a.keyEnd ? 1 : 0, a.scale, a.keyEndOffset, 0], f32: [9],
    buffers: [a.keyEnd ?? ctx.dummy, sc],
    workgroups: elementGrid(ctx, a.heads * a.rows, 64),
  });
  matmul(ctx, variants, {
    out: o, x: sc, w: scratch.get('vt'), bias: null, m, n: hd, k: keysPad, accumulate: false, xOffset: 0, yOffset: 0,
    batch: { count: a.kvHeads, x: m * keysPad, w: hd * keysPad, y: m * hd }, band: band ? { mode: 2, ...band } : undefined,
  }, variant);
  headMajor(ctx, o, a.out, a.rows, a.heads, hd, a.heads * hd, a.outOffset, false);
}

/** Copies between token-major rows (stride, offset in floats) and head-major [heads, rows, headDim]. */
function headMajor(ctx: KernelContext, src: GPUBuffer, dst: GPUBuffer, rows: number, heads: number, headDim: number, stride: number, offset: number, toHeadMajor: boolean): void {
  if (stride % 4 || offset % 4) throw new InternalError(`attention: row stride ${stride} and offset ${offset} must be multiples of 4`);
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'head_major' }, headMajorCode),
    params: [rows, heads, headDim / 4, stride / 4, offset / 4, toHeadMajor ? 1 : 0, 0, 0],
    buffers: [src, dst],
    workgroups: elementGrid(ctx, rows * heads * (headDim / 4), 64),
  });
}
