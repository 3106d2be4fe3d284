// The WebGPU implementation of Ops: each op records one kernel dispatch (see src/kernels/);
// `flush` submits; `sample` is the one place that waits, and it reads back 4 bytes.
import { InvalidArgumentError, InternalError } from '../errors.ts';
import type { Activation } from '../core/op_types.ts';
import { BufferPool, STORAGE } from '../gpu/buffer_pool.ts';
import type { GpuDevice } from '../gpu/device.ts';
import { PipelineCache } from '../gpu/pipeline_cache.ts';
import { Recorder, readBuffer } from '../gpu/recorder.ts';
import type { KernelContext } from '../kernels/context.ts';
import { embed, type EmbedTable } from '../kernels/embed.ts';
import { rmsNorm } from '../kernels/rms_norm.ts';
import { rope } from '../kernels/rope.ts';
import { kvWrite } from '../kernels/kv_write.ts';
import { attention, attentionFullGemm, attentionVariant, AttentionScratch } from '../kernels/attention.ts';
import { add, glu, softcap } from '../kernels/elementwise.ts';
import { gateMul, headNorm, scale } from '../kernels/per_layer.ts';
import { matmul, type MatmulVariants } from '../kernels/matmul.ts';
import { matmulQ4 } from '../kernels/matmul_q4.ts';
import { matvecQ4Glu, matvecQ4Norm } from '../kernels/matvec_fused.ts';
import { halfVariantFor, matmulF16 } from '../kernels/matmul_f16.ts';
import { halfLayout, packHalf, packHalfWords, type HalfInfo } from '../core/half.ts';
import { quantLayout, quantizeQ4, type QuantInfo } from '../core/quant.ts';
import { checkRows, HostRowUpload } from './row_upload.ts';
import { adjustLogits, logprobs, sample } from '../kernels/sample.ts';
import { partOptions, planSplit, type RowPart, type SplitTensor } from './split.ts';
import { attentionFull, avgPool, gelu, layerNorm, patchify, pixelShuffle } from '../kernels/vision.ts';
import { chooseMatmulVariants, type ProbeResult } from '../kernels/probe.ts';
import type { FullAttentionShape } from './ops.ts';
import { chooseModelKernels, type KernelChoice, type KernelProbeResult, type ModelKernelShapes } from './kernel_probe.ts';
import { MAX_TOP_LOGPROBS, type AttentionShape, type HeadNorm, type KvDtype, type KvLayerStorage, type Ops, type RowUpload, type SampledToken, type SampleOptions, type SampleParams, type SampleReadback, type SeqView, type UploadOptions } from './ops.ts';

export interface GpuOpsOptions {
  /**
   * Largest tensor stored in one buffer (default: the device's maxStorageBufferBindingSize,
   * capped by maxBufferSize). Larger uploads that give a row length are split into row parts
   * (src/ops/split.ts); tests set it small to split tiny tensors.
   */
  maxBindingBytes?: number;
}

const LOGPROBS_WORDS = 2 + 2 * MAX_TOP_LOGPROBS;

export class GpuOps implements Ops<GPUBuffer> {
  readonly name = 'webgpu';
  readonly pool: BufferPool;
  readonly ctx: KernelContext;
  private readonly ids: GPUBuffer;
  /** Per-row key ends of the attention call that has them (bidirectional spans). */
  private readonly keyEnds: GPUBuffer;
  /** The array last written there: a forward passes the same one to every layer. */
  private keyEndsWritten: ArrayLike<number> | null = null;
  private readonly maxRows: number;
  /** Working memory of the GEMM attention path (software adapters), sized at load. */
  readonly attnScratch: AttentionScratch;
  private readonly token: GPUBuffer;
  private readonly tokenRead: GPUBuffer;
  /** logprobs kernel output: [id, logprob, 20 x (id, logprob)]. */
  private readonly logprobsOut: GPUBuffer;
  /** A step's logit adjustments and grammar bitmask, written by the host (grown on demand). */
  private adjustEntries: GPUBuffer | null = null;
  private maskWords: GPUBuffer | null = null;
  private readonly lengths = new WeakMap<GPUBuffer, number>();
  /** Weights uploaded quantized: their packed layout (matmul picks the q4 kernels for them). */
  private readonly quant = new WeakMap<GPUBuffer, QuantInfo>();
  private quantized = 0;
  /** Weights uploaded as f16 (src/core/half.ts): matmul picks the f16 kernels for them. */
  private readonly half = new WeakMap<GPUBuffer, HalfInfo>();
  private halves = 0;
  /** f16 arithmetic for f16 weights; set only on adapters with shader-f16 (createGpuEngine). */
  halfCompute = false;
  private rowScratch: GPUBuffer | null = null;
  /** Tensors stored as row parts (src/ops/split.ts), keyed by their handle. */
  private readonly splits = new WeakMap<GPUBuffer, SplitTensor>();
  /** Slices of a bias for split weights' parts, by "row0:rows", made on first use. */
  private readonly biasParts = new WeakMap<GPUBuffer, Map<string, GPUBuffer>>();
  readonly maxBindingBytes: number;

  probe: ProbeResult | null = null;
  /**
   * The per-model kernel choices (src/ops/kernel_probe.ts times them on the model's shapes at
   * load): the q4 GEMV and GEMM, the one-row and the many-row attention. Defaults are
   * SwiftShader's fastest (attentionPrefill null: 'gemm' on software adapters, 'rows8' elsewhere).
   */
  kernelChoice: KernelChoice = { matvecQ4: 'matvec_q4', matmulQ4: 'regblock_q4', attentionDecode: 'split_keys', attentionPrefill: null, normMatvec: 'separate', gluMatvec: 'separate' };
  /** The last reserveAttention sizes, so a probe that moves prefill attention onto the GEMM path can reserve its scratch. */
  private attnReserved: [number, number, number, number, number] | null = null;
  /** What that probe measured, for stats and bench (null: not probed, defaults used). */
  kernelProbe: KernelProbeResult | null = null;

  constructor(readonly gpu: GpuDevice, public matmulVariants: MatmulVariants, maxRows: number, opts: GpuOpsOptions = {}) {
    this.pool = new BufferPool(gpu);
    const limit = opts.maxBindingBytes ?? Math.min(gpu.limits.maxBufferSize, gpu.limits.maxStorageBufferBindingSize);
    this.maxBindingBytes = Math.floor(limit / 16) * 16;
    this.ctx = { gpu, pipelines: new PipelineCache(gpu.device), rec: new Recorder(gpu), dummy: this.pool.create('dummy', 16) };
    this.ids = this.pool.create('token-ids', maxRows * 4);
    this.keyEnds = this.pool.create('key-ends', maxRows * 4);
    this.maxRows = maxRows;
    // A scratch buffer outgrown mid-recording (layers of different shapes in one forward: Gemma 4)
    // may still be read by recorded commands: submit them before it is freed.
    this.attnScratch = new AttentionScratch((label, n) => this.alloc(label, n), (b) => (this.ctx.rec.submit(), this.free(b)));
    this.token = this.pool.create('sampled-token', 16);
    this.logprobsOut = this.pool.create('logprobs-out', LOGPROBS_WORDS * 4);
    this.tokenRead = gpu.device.createBuffer({ label: 'sampled-token-read', size: LOGPROBS_WORDS * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Picks the matmul/matvec variants for this adapter (timed probe, cached per adapter). */
  async probeVariants(opts: { useCache?: boolean } = {}): Promise<ProbeResult> {
    this.probe = await chooseMatmulVariants(this.ctx, opts);
    this.matmulVariants = { prefill: this.probe.prefill, decode: this.probe.decode };
    return this.probe;
  }

  /**
   * Picks the q4 GEMV and GEMM (when this model holds q4 weights), the f32 prefill GEMM, and the
   * decode and prefill attention on the model's shapes (src/ops/kernel_probe.ts; cached per adapter and shape). `keys`: the
   * context, capped for the timing; flash-decoding's partials are sized for `context`.
   */
  async probeModelKernels(shapes: Omit<ModelKernelShapes, 'quantized' | 'keys' | 'rows'> & { context: number; activation?: Activation }, opts: { useCache?: boolean; prefill?: boolean } = {}): Promise<KernelProbeResult> {
    const { context, ...rest } = shapes;
    const prefill = opts.prefill ?? !this.gpu.isSoftware;
    const { choice, result } = await chooseModelKernels(this.ctx, { ...rest, keys: Math.min(context, 1024), rows: Math.min(this.maxRows, 128), quantized: this.quantized > 0 }, this.attnScratch, { useCache: opts.useCache, prefill, incumbentPrefill: this.matmulVariants.prefill });
    this.kernelChoice = choice;
    if (choice.matmulPrefill) this.matmulVariants = { ...this.matmulVariants, prefill: choice.matmulPrefill };
    this.kernelProbe = result;
    if (choice.attentionDecode === 'flash_decode') this.attnScratch.reservePartials(1, context, shapes.numHeads, shapes.headDim);
    if (this.attnReserved) this.reserveAttention(...this.attnReserved);
    return result;
  }

  get variants(): Record<string, string> {
    const kc = this.kernelChoice;
    const q4: Record<string, string> = this.quantized ? { matmul_q4: kc.matmulQ4, matvec_q4: kc.matvecQ4, norm_matvec_q4: kc.normMatvec ?? 'separate', glu_matvec_q4: kc.gluMatvec ?? 'separate' } : {};
    const v = this.matmulVariants, hc = this.halfCompute;
    const f16: Record<string, string> = this.halves ? { matmul_f16: halfVariantFor(2, false, v, hc), matvec_f16: halfVariantFor(1, false, v, hc), matmul_f16_gains: halfVariantFor(2, true, v, hc) } : {};
    return { matmul: this.matmulVariants.prefill, matvec: this.matmulVariants.decode, ...q4, ...f16, attention: `${this.kernelChoice.attentionPrefill ?? (this.gpu.isSoftware ? 'gemm' : 'rows8')} (prefill), ${this.kernelChoice.attentionDecode} (decode)`, sample: 'single-workgroup' };
  }

  alloc(label: string, elements: number): GPUBuffer {
    const b = this.pool.create(label, elements * 4);
    this.lengths.set(b, elements);
    return b;
  }
  allocKv(label: string, elements: number, dtype: KvDtype): GPUBuffer {
    if (elements % 2) throw new InternalError(`allocKv ${label}: ${elements} values, must be even`);
    return this.alloc(label, dtype === 'f16' ? elements / 2 : elements);
  }
  copyKvRows(layer: KvLayerStorage<GPUBuffer>, dstRow: number, srcRow: number, rows: number, width: number): void {
    if (width % 2) throw new InternalError(`copyKvRows: width ${width} must be even`);
    // An f16 row of `width` values is width / 2 words.
    const words = layer.dtype === 'f16' ? width / 2 : width;
    this.copyRows(layer.k, dstRow, layer.k, srcRow, rows, words);
    this.copyRows(layer.v, dstRow, layer.v, srcRow, rows, words);
  }
  upload(label: string, data: Float32Array, opts: UploadOptions = {}): GPUBuffer {
    const plan = planSplit(data.length, opts, this.maxBindingBytes);
    if (plan) return this.uploadSplit(label, data, opts, plan.cols, plan.partRows);
    if (opts.half && !opts.quant) {
      const { packed, info } = packHalf(data, opts.half);
      const b = this.pool.upload(label, packed, STORAGE);
      this.half.set(b, info);
      this.halves++;
      return b;
    }
    if (!opts.quant) return this.pool.upload(label, data, STORAGE);
    const { packed, info } = quantizeQ4(data, opts.quant);
    const b = this.pool.upload(label, packed, STORAGE);
    this.quant.set(b, info);
    this.quantized++;
    return b;
  }
  /**
   * Streamed loads: each write encodes its rows (f32 as is, q4 quantized row by row, f16
   * packed) and writes them in place, so the host holds one row range at a time. A tensor past
   * the binding limit gets one writer per row part (the same parts `upload` makes).
   */
  uploadRows(label: string, rows: number, opts: UploadOptions & { cols: number }): RowUpload<GPUBuffer> {
    const cols = opts.cols;
    const plan = planSplit(rows * cols, opts, this.maxBindingBytes);
    if (!plan) return this.rowWriter(label, rows, opts);
    const parts: { row0: number; rows: number; w: RowUpload<GPUBuffer> }[] = [];
    try {
      let row0 = 0;
      for (const n of plan.partRows) {
        parts.push({ row0, rows: n, w: this.rowWriter(`${label}[${row0}:${row0 + n}]`, n, partOptions(opts, cols, row0, n) as UploadOptions & { cols: number }) });
        row0 += n;
      }
    } catch (e) {
      for (const p of parts) p.w.discard();
      throw e;
    }
    const done: RowPart[] = [];
    return {
      write: (row0, data) => {
        checkRows(label, rows, cols, row0, data.length);
        const row1 = row0 + data.length / cols;
        for (const p of parts) {
          const a = Math.max(row0, p.row0), b = Math.min(row1, p.row0 + p.rows);
          if (a < b) p.w.write(a - p.row0, data.subarray((a - row0) * cols, (b - row0) * cols));
        }
      },
      finish: () => {
        for (const p of parts.slice(done.length)) done.push({ buf: p.w.finish(), row0: p.row0, rows: p.rows });
        const handle = this.pool.create(`${label} (${parts.length} row parts)`, 16);
        this.splits.set(handle, { rows, cols, parts: done });
        return handle;
      },
      discard: () => {
        for (const p of done) this.pool.destroy(p.buf);
        for (const p of parts.slice(done.length)) p.w.discard();
      },
    };
  }
  /** One buffer written by row ranges, in the layout `upload` gives (quant.ts / half.ts / f32). */
  private rowWriter(label: string, rows: number, opts: UploadOptions & { cols: number }): RowUpload<GPUBuffer> {
    const cols = opts.cols, queue = this.gpu.device.queue;
    const half = !opts.quant && opts.half ? opts.half : null;
    // Halves of a row range start at a whole word only when rows hold an even count.
    if (half && cols % 2) return new HostRowUpload(this, label, rows, opts);
    const q = opts.quant ? quantLayout(opts.quant.scheme, rows, cols, opts.quant.gains?.rows ?? 0) : null;
    const h = half ? halfLayout(rows * cols, half) : null;
    const buf = this.pool.create(label, q ? q.words * 4 : h ? h.words * 4 : rows * cols * 4);
    let written = 0;
    const gains = (offset: number, g: { values: Float32Array } | undefined) => g && queue.writeBuffer(buf, offset * 4, g.values.buffer, g.values.byteOffset, g.values.byteLength);
    return {
      write: (row0, data) => {
        checkRows(label, rows, cols, row0, data.length);
        const n = data.length / cols;
        if (q) {
          // Rows are quantized independently (groups run along a row): the same words and scales as a whole upload.
          const { packed, info } = quantizeQ4(data, { scheme: q.scheme, cols });
          queue.writeBuffer(buf, row0 * q.rowWords * 4, packed.buffer, 0, n * q.rowWords * 4);
          queue.writeBuffer(buf, (q.scalesOffset + row0 * q.groups) * 4, packed.buffer, info.scalesOffset * 4, n * q.groups * 4);
          if (q.minsOffset) queue.writeBuffer(buf, (q.minsOffset + row0 * q.groups) * 4, packed.buffer, info.minsOffset * 4, n * q.groups * 4);
        } else if (h) {
          const words = packHalfWords(data);
          queue.writeBuffer(buf, ((row0 * cols) / 2) * 4, words.buffer, 0, words.byteLength);
        } else {
          queue.writeBuffer(buf, row0 * cols * 4, data.buffer, data.byteOffset, data.byteLength);
        }
        written += n;
      },
      finish: () => {
        if (written !== rows) throw new InternalError(`uploadRows ${label}: ${written} of ${rows} rows written`);
        if (q) {
          gains(q.gainsOffset, opts.quant!.gains);
          this.quant.set(buf, q);
          this.quantized++;
        } else if (h) {
          gains(h.gainsOffset, half && half !== true ? half.gains : undefined);
          this.half.set(buf, h);
          this.halves++;
        }
        return buf;
      },
      discard: () => this.pool.destroy(buf),
    };
  }
  uploadPacked(label: string, packed: Uint32Array, info: QuantInfo): GPUBuffer {
    if (packed.length !== info.words) throw new InternalError(`uploadPacked ${label}: ${packed.length} words, layout needs ${info.words}`);
    // Past the binding limit (an MLC q4 embedding / LM head): row parts, each its rows' words,
    // scales and offsets in the same layout (rows are packed independently).
    const plan = info.gainsOffset ? null : planSplit(info.rows * info.cols, { cols: info.cols, quant: { scheme: info.scheme, cols: info.cols } }, this.maxBindingBytes);
    if (plan) return this.uploadPackedSplit(label, packed, info, plan.partRows);
    const b = this.pool.upload(label, packed, STORAGE);
    this.quant.set(b, info);
    this.quantized++;
    return b;
  }
  private uploadPackedSplit(label: string, packed: Uint32Array, info: QuantInfo, partRows: number[]): GPUBuffer {
    const split: SplitTensor = { rows: info.rows, cols: info.cols, parts: [] };
    try {
      let row0 = 0;
      for (const rows of partRows) {
        const q = quantLayout(info.scheme, rows, info.cols);
        const part = new Uint32Array(q.words);
        part.set(packed.subarray(row0 * info.rowWords, (row0 + rows) * info.rowWords), 0);
        part.set(packed.subarray(info.scalesOffset + row0 * info.groups, info.scalesOffset + (row0 + rows) * info.groups), q.scalesOffset);
        if (info.minsOffset) part.set(packed.subarray(info.minsOffset + row0 * info.groups, info.minsOffset + (row0 + rows) * info.groups), q.minsOffset);
        split.parts.push({ buf: this.uploadPacked(`${label}[${row0}:${row0 + rows}]`, part, q), row0, rows });
        row0 += rows;
      }
    } catch (e) {
      for (const p of split.parts) this.pool.destroy(p.buf);
      throw e;
    }
    const handle = this.pool.create(`${label} (${partRows.length} row parts)`, 16);
    this.splits.set(handle, split);
    return handle;
  }
  /** The packed layout of a quantized weight, or null for an f32 tensor. */
  quantInfo(t: GPUBuffer): QuantInfo | null {
    return this.quant.get(t) ?? null;
  }
  /** The packed layout of an f16 weight, or null. */
  halfInfo(t: GPUBuffer): HalfInfo | null {
    return this.half.get(t) ?? null;
  }
  uploadU32(label: string, data: Uint32Array): GPUBuffer {
    return this.pool.upload(label, data, STORAGE);
  }
  writeU32(dst: GPUBuffer, data: Uint32Array): void {
    this.gpu.device.queue.writeBuffer(dst, 0, data.buffer, data.byteOffset, data.byteLength);
  }
  free(t: GPUBuffer): void {
    for (const p of this.splits.get(t)?.parts ?? []) this.pool.destroy(p.buf);
    this.splits.delete(t);
    for (const b of this.biasParts.get(t)?.values() ?? []) this.pool.destroy(b);
    this.biasParts.delete(t);
    this.pool.destroy(t);
  }

  embed(out: GPUBuffer, ids: ArrayLike<number>, table: GPUBuffer, rows: number, hidden: number, scale: number): void {
    // The ids are written before this forward's commands are submitted (queue order).
    this.gpu.device.queue.writeBuffer(this.ids, 0, Uint32Array.from(ids as ArrayLike<number>));
    const split = this.splits.get(table);
    if (!split) return embed(this.ctx, out, this.ids, table, rows, hidden, scale, 0, 0xffffffff, this.tableKind(table));
    for (const p of split.parts) embed(this.ctx, out, this.ids, p.buf, rows, hidden, scale, p.row0, p.rows, this.tableKind(p.buf));
  }
  /** How an embedding table is stored: q4 and f16 tables are gathered without an f32 copy (so a tied LM head can share them). */
  private tableKind(t: GPUBuffer): EmbedTable {
    const q = this.quant.get(t);
    if (q) {
      if (q.gainsOffset) throw new InternalError('embed: a table with column gains cannot be gathered');
      return { kind: 'q4', info: q };
    }
    return this.half.get(t) ? { kind: 'f16' } : { kind: 'f32' };
  }
  rmsNorm(out: GPUBuffer, x: GPUBuffer, gain: GPUBuffer | null, rows: number, dim: number, eps: number): void {
    rmsNorm(this.ctx, out, x, gain, rows, dim, eps);
  }
  /** `yOffset` (GPU only): where row 0 of the output starts, in elements (overrides outRow). */
  matmul(out: GPUBuffer, x: GPUBuffer, w: GPUBuffer, m: number, n: number, k: number, opt: { bias?: GPUBuffer | null; accumulate?: boolean; xRow?: number; outRow?: number; yOffset?: number } = {}): void {
    const split = this.splits.get(w);
    if (split) return this.matmulSplit(split, out, x, m, n, k, opt);
    const args = { out, x, w, m, n, k, bias: opt.bias ?? null, accumulate: !!opt.accumulate, xOffset: (opt.xRow ?? 0) * k, yOffset: opt.yOffset ?? (opt.outRow ?? 0) * n };
    const q = this.quant.get(w);
    const h = q ? undefined : this.half.get(w);
    if (q) matmulQ4(this.ctx, args, q, undefined, this.kernelChoice.matvecQ4, this.kernelChoice.matmulQ4);
    else if (h) matmulF16(this.ctx, this.matmulVariants, args, h, this.halfCompute);
    else matmul(this.ctx, this.matmulVariants, args);
  }
  normMatmul(out: GPUBuffer, x: GPUBuffer, gain: GPUBuffer | null, eps: number, w: GPUBuffer, m: number, n: number, k: number, opt: { bias?: GPUBuffer | null; normed: GPUBuffer }): void {
    const q = m === 1 && this.kernelChoice.normMatvec === 'matvec_q4_norm' ? this.fusable(w, k) : null;
    if (q) return matvecQ4Norm(this.ctx, { out, x, w, m, n, k, bias: opt.bias ?? null, accumulate: false, xOffset: 0, yOffset: 0 }, q, gain, eps);
    this.rmsNorm(opt.normed, x, gain, m, k, eps);
    this.matmul(out, opt.normed, w, m, n, k, { bias: opt.bias });
  }
  gluMatmul(out: GPUBuffer, gu: GPUBuffer, act: Activation, w: GPUBuffer, m: number, n: number, k: number, opt: { accumulate?: boolean; hidden: GPUBuffer }): void {
    const q = m === 1 && this.kernelChoice.gluMatvec === 'matvec_q4_glu' ? this.fusable(w, k) : null;
    if (q) return matvecQ4Glu(this.ctx, { out, x: gu, w, m, n, k, bias: null, accumulate: !!opt.accumulate, xOffset: 0, yOffset: 0 }, q, act);
    this.glu(opt.hidden, gu, m, k, act);
    this.matmul(out, opt.hidden, w, m, n, k, { accumulate: opt.accumulate });
  }
  /** The packed layout of a q4 weight the fused GEMVs can read (one buffer, no column gains, K % 4 == 0), else null. */
  private fusable(w: GPUBuffer, k: number): QuantInfo | null {
    const q = this.splits.has(w) ? undefined : this.quant.get(w);
    return q && !q.gainsOffset && k % 4 === 0 ? q : null;
  }
  rope(x: GPUBuffer, rows: number, rowStride: number, colOffset: number, heads: number, headDim: number, startPos: number, ropeTable: GPUBuffer, norm: HeadNorm<GPUBuffer> | null): void {
    rope(this.ctx, x, rows, rowStride, colOffset, heads, headDim, startPos, ropeTable, norm);
  }
  kvWrite(layer: KvLayerStorage<GPUBuffer>, seq: SeqView<GPUBuffer>, src: GPUBuffer, rows: number, rowStride: number, kOffset: number, vOffset: number, kvHeads: number, headDim: number, startPos: number, ropeTable: GPUBuffer, kNorm: HeadNorm<GPUBuffer> | null): void {
    kvWrite(this.ctx, { k: layer.k, v: layer.v, f16: layer.dtype === 'f16', pageTable: seq.table, pageSize: seq.pageSize, src, rows, rowStride, kOffset, vOffset, kvHeads, headDim, startPos, ropeTable, kNorm });
  }
  attention(out: GPUBuffer, q: GPUBuffer, qStride: number, layer: KvLayerStorage<GPUBuffer>, seq: SeqView<GPUBuffer>, rows: number, startPos: number, shape: AttentionShape, keyEnd?: ArrayLike<number> | null): void {
    if (keyEnd && keyEnd !== this.keyEndsWritten) {
      if (rows > this.maxRows) throw new InternalError(`attention: ${rows} rows with key ends, at most ${this.maxRows}`);
      // Written before this forward's commands are submitted (queue order), like the token ids;
      // once per forward, not per layer (callers pass a fresh array per step).
      this.gpu.device.queue.writeBuffer(this.keyEnds, 0, Uint32Array.from({ length: rows }, (_, r) => keyEnd[r]));
      this.keyEndsWritten = keyEnd;
    }
    attention(this.ctx, { out, q, qStride, k: layer.k, v: layer.v, kvF16: layer.dtype === 'f16', pageTable: seq.table, pageSize: seq.pageSize, rows, startPos, shape, keyEnd: keyEnd ? this.keyEnds : null }, { variants: this.matmulVariants, scratch: this.attnScratch, decode: this.kernelChoice.attentionDecode, prefill: this.kernelChoice.attentionPrefill ?? undefined });
  }
  reserveAttention(rows: number, keys: number, numHeads: number, numKvHeads: number, headDim: number): void {
    this.attnReserved = [rows, keys, numHeads, numKvHeads, headDim];
    if (attentionVariant(this.ctx, rows, 0, false, 'split_keys', this.kernelChoice.attentionPrefill ?? undefined) === 'gemm') this.attnScratch.reserve(rows, keys, numHeads, numKvHeads, headDim);
    if (this.kernelChoice.attentionDecode === 'flash_decode') this.attnScratch.reservePartials(1, keys, numHeads, headDim);
  }
  glu(out: GPUBuffer, gu: GPUBuffer, rows: number, inter: number, act: Activation): void {
    glu(this.ctx, out, gu, rows, inter, act);
  }
  add(out: GPUBuffer, a: GPUBuffer, elements: number, offsets?: { out: number; a: number }): void {
    add(this.ctx, out, a, elements, offsets?.out ?? 0, offsets?.a ?? 0);
  }
  copyRows(dst: GPUBuffer, dstRow: number, src: GPUBuffer, srcRow: number, rows: number, width: number): void {
    const bytes = rows * width * 4;
    if (src !== dst) return this.ctx.rec.copy(src, srcRow * width * 4, dst, dstRow * width * 4, bytes);
    // WebGPU forbids copying a buffer onto itself: go through a scratch buffer.
    if (!this.rowScratch || this.rowScratch.size < bytes) {
      // Copies recorded through the old scratch must be submitted before it is destroyed.
      if (this.rowScratch) this.ctx.rec.submit(), this.pool.destroy(this.rowScratch);
      this.rowScratch = this.pool.create('row-scratch', bytes);
    }
    this.ctx.rec.copy(src, srcRow * width * 4, this.rowScratch, 0, bytes);
    this.ctx.rec.copy(this.rowScratch, 0, dst, dstRow * width * 4, bytes);
  }
  scale(x: GPUBuffer, elements: number, s: number): void {
    scale(this.ctx, x, elements, s);
  }
  headNorm(x: GPUBuffer, rows: number, rowStride: number, colOffset: number, heads: number, headDim: number, gain: GPUBuffer | null, eps: number): void {
    headNorm(this.ctx, x, rows, rowStride, colOffset, heads, headDim, gain, eps);
  }
  gateMul(gate: GPUBuffer, other: GPUBuffer, rows: number, dim: number, otherStride: number, otherOffset: number, act: Activation): void {
    gateMul(this.ctx, gate, other, rows, dim, otherStride, otherOffset, act);
  }
  softcap(x: GPUBuffer, elements: number, cap: number): void {
    softcap(this.ctx, x, elements, cap);
  }

  async sample(logits: GPUBuffer, vocab: number, params: SampleParams, step: number): Promise<number> {
    sample(this.ctx, this.token, logits, vocab, params, step);
    this.ctx.rec.copy(this.token, 0, this.tokenRead, 0, 4);
    this.ctx.rec.submit();
    try {
      await this.tokenRead.mapAsync(GPUMapMode.READ);
    } catch (e) {
      throw await this.gpu.failure(e);
    }
    const id = new Uint32Array(this.tokenRead.getMappedRange(0, 4))[0];
    this.tokenRead.unmap();
    return id;
  }

  sampleReadback(): SampleReadback {
    return new GpuSampleReadback(this.gpu.device.createBuffer({ label: 'request-token-read', size: LOGPROBS_WORDS * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }));
  }

  async sampleToken(logits: GPUBuffer, vocab: number, params: SampleParams, step: number, o: SampleOptions): Promise<SampledToken> {
    const q = this.gpu.device.queue;
    const adj = o.adjust ?? [];
    if (adj.length) {
      const words = new Uint32Array(adj.length * 4), bias = new Float32Array(words.buffer);
      adj.forEach((a, i) => {
        words[4 * i] = a.id;
        words[4 * i + 1] = a.count;
        words[4 * i + 2] = a.seen ? 1 : 0;
        bias[4 * i + 3] = a.bias;
      });
      this.adjustEntries = this.fitScratch(this.adjustEntries, 'logit-adjustments', words.byteLength);
      q.writeBuffer(this.adjustEntries, 0, words);
      adjustLogits(this.ctx, logits, this.adjustEntries, adj.length, { frequency: o.frequencyPenalty ?? 0, presence: o.presencePenalty ?? 0, repetition: o.repetitionPenalty ?? 1 });
    }
    let mask: GPUBuffer | null = null;
    if (o.mask) {
      mask = this.maskWords = this.fitScratch(this.maskWords, 'grammar-mask', o.mask.byteLength);
      q.writeBuffer(mask, 0, o.mask.buffer, o.mask.byteOffset, o.mask.byteLength);
    }
    sample(this.ctx, this.token, logits, vocab, params, step, 0, mask);
    const k = o.topLogprobs;
    const words = k === undefined ? 1 : 2 + 2 * k;
    if (k !== undefined) {
      if (!(Number.isInteger(k) && k >= 0 && k <= MAX_TOP_LOGPROBS)) throw new InvalidArgumentError('top_logprobs', `must be an integer in 0..${MAX_TOP_LOGPROBS} (got ${k})`);
      logprobs(this.ctx, this.logprobsOut, logits, this.token, vocab, k, params.temperature > 0 ? params.temperature : 1, mask);
    }
    const read = o.readback instanceof GpuSampleReadback ? o.readback.buffer : this.tokenRead;
    this.ctx.rec.copy(k === undefined ? this.token : this.logprobsOut, 0, read, 0, words * 4);
    this.ctx.rec.submit();
    try {
      await read.mapAsync(GPUMapMode.READ, 0, words * 4);
    } catch (e) {
      throw await this.gpu.failure(e);
    }
    const got = read.getMappedRange(0, words * 4).slice(0);
    read.unmap();
    const u = new Uint32Array(got), f = new Float32Array(got);
    if (k === undefined) return { id: u[0] };
    const top: { id: number; logprob: number }[] = [];
    for (let r = 0; r < k; r++) if (u[2 + 2 * r] !== 0xffffffff) top.push({ id: u[2 + 2 * r], logprob: f[3 + 2 * r] });
    return { id: u[0], logprob: f[1], top };
  }

  /** A host-written scratch buffer of at least `bytes` (the old one when it is big enough). */
  private fitScratch(buf: GPUBuffer | null, label: string, bytes: number): GPUBuffer {
    if (buf && buf.size >= bytes) return buf;
    if (buf) this.pool.destroy(buf);
    return this.pool.create(label, Math.max(256, 2 ** Math.ceil(Math.log2(bytes))));
  }

  // Vision towers: src/kernels/vision.ts.
  layerNorm(out: GPUBuffer, x: GPUBuffer, gain: GPUBuffer, bias: GPUBuffer, rows: number, dim: number, eps: number): void {
    layerNorm(this.ctx, out, x, gain, bias, rows, dim, eps);
  }
  gelu(x: GPUBuffer, elements: number, exact?: boolean): void {
    gelu(this.ctx, x, elements, !!exact);
  }
  patchify(out: GPUBuffer, pixels: GPUBuffer, tiles: number, channels: number, size: number, patch: number): void {
    patchify(this.ctx, out, pixels, tiles, channels, size, patch);
  }
  attentionFull(out: GPUBuffer, qkv: GPUBuffer, shape: FullAttentionShape): void {
    const gemm = attentionVariant(this.ctx, shape.seqLen, 0) === 'gemm';
    if (!gemm || !attentionFullGemm(this.ctx, out, qkv, shape, this.matmulVariants, this.attnScratch)) attentionFull(this.ctx, out, qkv, shape);
  }
  pixelShuffle(out: GPUBuffer, x: GPUBuffer, tiles: number, side: number, dim: number, scale: number): void {
    pixelShuffle(this.ctx, out, x, tiles, side, dim, scale);
  }
  avgPool(out: GPUBuffer, x: GPUBuffer, tiles: number, side: number, dim: number, kernel: number): void {
    avgPool(this.ctx, out, x, tiles, side, dim, kernel);
  }

  flush(): void {
    this.ctx.rec.submit();
  }

  async read(t: GPUBuffer, elements: number, offset = 0): Promise<Float32Array> {
    this.ctx.rec.submit();
    const split = this.splits.get(t);
    if (split) return this.readSplit(split, elements, offset);
    return new Float32Array(await readBuffer(this.gpu, t, elements * 4, offset * 4));
  }

  /** Waits until the device has finished all submitted work (timing). */
  async sync(): Promise<void> {
    this.ctx.rec.submit();
    await this.gpu.device.queue.onSubmittedWorkDone().catch(async (e) => {
      throw await this.gpu.failure(e);
    });
    this.gpu.checkAlive();
  }

  // Tensors split into row parts (src/ops/split.ts).

  /** Bytes a tensor holds on the device (all its parts for a split one). */
  bytesOf(t: GPUBuffer): number {
    return this.splits.get(t)?.parts.reduce((a, p) => a + p.buf.size, t.size) ?? t.size;
  }
  /** The row parts of a split tensor, or null. */
  splitInfo(t: GPUBuffer): SplitTensor | null {
    return this.splits.get(t) ?? null;
  }
  private uploadSplit(label: string, data: Float32Array, opts: UploadOptions, cols: number, partRows: number[]): GPUBuffer {
    const split: SplitTensor = { rows: data.length / cols, cols, parts: [] };
    try {
      let row0 = 0;
      for (const rows of partRows) {
        const buf = this.upload(`${label}[${row0}:${row0 + rows}]`, data.subarray(row0 * cols, (row0 + rows) * cols), partOptions(opts, cols, row0, rows));
        split.parts.push({ buf, row0, rows });
        row0 += rows;
      }
    } catch (e) {
      for (const p of split.parts) this.pool.destroy(p.buf);
      throw e;
    }
    // The handle: a 16-byte buffer that only keys the parts.
    const handle = this.pool.create(`${label} (${partRows.length} row parts)`, 16);
    this.splits.set(handle, split);
    return handle;
  }
  /**
   * One dispatch per part over its N range. M = 1 writes the part's columns in place; M > 1
   * computes [M, part N] into a scratch buffer and copies its rows into the output (the
   * kernels write rows of N = the part's N; accumulate copies the output's columns in first).
   */
  private matmulSplit(split: SplitTensor, out: GPUBuffer, x: GPUBuffer, m: number, n: number, k: number, opt: { bias?: GPUBuffer | null; accumulate?: boolean; xRow?: number; outRow?: number; yOffset?: number }): void {
    if (k !== split.cols || n > split.rows) throw new InternalError(`matmul: split weight is [${split.rows}, ${split.cols}], asked for n = ${n}, k = ${k}`);
    const y0 = opt.yOffset ?? (opt.outRow ?? 0) * n;
    for (const p of split.parts) {
      const pn = Math.min(p.rows, n - p.row0);
      if (pn <= 0) break;
      const bias = opt.bias ? this.biasPart(opt.bias, p.row0, pn) : null;
      if (m === 1) {
        this.matmul(out, x, p.buf, 1, pn, k, { bias, accumulate: opt.accumulate, xRow: opt.xRow, yOffset: y0 + p.row0 });
        continue;
      }
      const scratch = this.pool.acquire('split-matmul-scratch', m * pn * 4);
      if (opt.accumulate) for (let r = 0; r < m; r++) this.ctx.rec.copy(out, (y0 + r * n + p.row0) * 4, scratch, r * pn * 4, pn * 4);
      this.matmul(scratch, x, p.buf, m, pn, k, { bias, accumulate: opt.accumulate, xRow: opt.xRow });
      for (let r = 0; r < m; r++) this.ctx.rec.copy(scratch, r * pn * 4, out, (y0 + r * n + p.row0) * 4, pn * 4);
      // Commands run in recording order: a later acquire may reuse it within this submission.
      this.pool.release(scratch);
    }
  }
  /** bias[row0, row0 + rows) as its own buffer (copied on first use, freed with the bias). */
  private biasPart(bias: GPUBuffer, row0: number, rows: number): GPUBuffer {
    let m = this.biasParts.get(bias);
    if (!m) this.biasParts.set(bias, (m = new Map()));
    const key = `${row0}:${rows}`;
    let b = m.get(key);
    if (!b) {
      m.set(key, (b = this.pool.create(`${bias.label}[${row0}:${row0 + rows}]`, rows * 4)));
      this.ctx.rec.copy(bias, row0 * 4, b, 0, rows * 4);
    }
    return b;
  }
  /** Floats [offset, offset + elements) of a split f32 tensor. */
  private async readSplit(split: SplitTensor, elements: number, offset: number): Promise<Float32Array> {
    const out = new Float32Array(elements);
    for (const p of split.parts) {
      const lo = p.row0 * split.cols, a = Math.max(offset, lo), b = Math.min(offset + elements, lo + p.rows * split.cols);
      if (a < b) out.set(new Float32Array(await readBuffer(this.gpu, p.buf, (b - a) * 4, (a - lo) * 4)), a - offset);
    }
    return out;
  }

  destroy(): void {
    this.tokenRead.destroy();
    this.pool.trim();
  }
}

/** One request's token readback buffer. */
class GpuSampleReadback implements SampleReadback {
  constructor(readonly buffer: GPUBuffer) {}
  destroy(): void {
    this.buffer.destroy();
  }
}
