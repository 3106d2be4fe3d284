// The WebGPU implementation of Ops: each op records one kernel dispatch (see src/kernels/);
// `flush` submits; `sample` is the one place that waits, and it reads back 4 bytes.
import type { Activation } from '../model/config.ts';
import { BufferPool, STORAGE } from '../gpu/buffer_pool.ts';
import type { GpuDevice } from '../gpu/device.ts';
import { PipelineCache } from '../gpu/pipeline_cache.ts';
import { Recorder, readBuffer } from '../gpu/recorder.ts';
import type { KernelContext } from '../kernels/context.ts';
import { embed } from '../kernels/embed.ts';
import { rmsNorm } from '../kernels/rms_norm.ts';
import { rope } from '../kernels/rope.ts';
import { kvWrite } from '../kernels/kv_write.ts';
import { attention } from '../kernels/attention.ts';
import { add, glu, softcap } from '../kernels/elementwise.ts';
import { matmul, type MatmulVariants } from '../kernels/matmul.ts';
import { matmulQ4 } from '../kernels/matmul_q4.ts';
import { quantizeQ4, type QuantInfo } from './quant.ts';
import { sample } from '../kernels/sample.ts';
import { attentionFull, gelu, layerNorm, patchify, pixelShuffle } from '../kernels/vision.ts';
import { chooseMatmulVariants, type ProbeResult } from '../gpu/probe.ts';
import type { FullAttentionShape } from './ops.ts';
import type { AttentionShape, HeadNorm, KvLayerStorage, Ops, SampleParams, SeqView, UploadOptions } from './ops.ts';

export class GpuOps implements Ops<GPUBuffer> {
  readonly name = 'webgpu';
  readonly pool: BufferPool;
  readonly ctx: KernelContext;
  private readonly ids: GPUBuffer;
  private readonly token: GPUBuffer;
  private readonly tokenRead: GPUBuffer;
  private readonly lengths = new WeakMap<GPUBuffer, number>();
  /** Weights uploaded quantized: their packed layout (matmul picks the q4 kernels for them). */
  private readonly quant = new WeakMap<GPUBuffer, QuantInfo>();
  private quantized = 0;
  private rowScratch: GPUBuffer | null = null;

  probe: ProbeResult | null = null;

  constructor(readonly gpu: GpuDevice, public matmulVariants: MatmulVariants, maxRows: number) {
    this.pool = new BufferPool(gpu);
    this.ctx = { gpu, pipelines: new PipelineCache(gpu.device), rec: new Recorder(gpu), dummy: this.pool.create('dummy', 16) };
    this.ids = this.pool.create('token-ids', maxRows * 4);
    this.token = this.pool.create('sampled-token', 16);
    this.tokenRead = gpu.device.createBuffer({ label: 'sampled-token-read', size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Picks the matmul/matvec variants for this adapter (timed probe, cached per adapter). */
  async probeVariants(opts: { useCache?: boolean } = {}): Promise<ProbeResult> {
    this.probe = await chooseMatmulVariants(this.ctx, opts);
    this.matmulVariants = { prefill: this.probe.prefill, decode: this.probe.decode };
    return this.probe;
  }

  get variants(): Record<string, string> {
    const q4: Record<string, string> = this.quantized ? { matmul_q4: 'regblock_q4', matvec_q4: 'matvec_q4' } : {};
    return { matmul: this.matmulVariants.prefill, matvec: this.matmulVariants.decode, ...q4, attention: 'online-softmax', sample: 'single-workgroup' };
  }

  alloc(label: string, elements: number): GPUBuffer {
    const b = this.pool.create(label, elements * 4);
    this.lengths.set(b, elements);
    return b;
  }
  upload(label: string, data: Float32Array, opts: UploadOptions = {}): GPUBuffer {
    if (!opts.quant) return this.pool.upload(label, data, STORAGE);
    const { packed, info } = quantizeQ4(data, opts.quant);
    const b = this.pool.upload(label, packed, STORAGE);
    this.quant.set(b, info);
    this.quantized++;
    return b;
  }
  uploadPacked(label: string, packed: Uint32Array, info: QuantInfo): GPUBuffer {
    if (packed.length !== info.words) throw new Error(`uploadPacked ${label}: ${packed.length} words, layout needs ${info.words}`);
    const b = this.pool.upload(label, packed, STORAGE);
    this.quant.set(b, info);
    this.quantized++;
    return b;
  }
  /** The packed layout of a quantized weight, or null for an f32 tensor. */
  quantInfo(t: GPUBuffer): QuantInfo | null {
    return this.quant.get(t) ?? null;
  }
  uploadU32(label: string, data: Uint32Array): GPUBuffer {
    return this.pool.upload(label, data, STORAGE);
  }
  writeU32(dst: GPUBuffer, data: Uint32Array): void {
    this.gpu.device.queue.writeBuffer(dst, 0, data.buffer, data.byteOffset, data.byteLength);
  }
  free(t: GPUBuffer): void {
    this.pool.destroy(t);
  }

  embed(out: GPUBuffer, ids: ArrayLike<number>, table: GPUBuffer, rows: number, hidden: number, scale: number): void {
    // The ids are written before this forward's commands are submitted (queue order).
    this.gpu.device.queue.writeBuffer(this.ids, 0, Uint32Array.from(ids as ArrayLike<number>));
    embed(this.ctx, out, this.ids, table, rows, hidden, scale);
  }
  rmsNorm(out: GPUBuffer, x: GPUBuffer, gain: GPUBuffer | null, rows: number, dim: number, eps: number): void {
    rmsNorm(this.ctx, out, x, gain, rows, dim, eps);
  }
  matmul(out: GPUBuffer, x: GPUBuffer, w: GPUBuffer, m: number, n: number, k: number, opt: { bias?: GPUBuffer | null; accumulate?: boolean; xRow?: number; outRow?: number } = {}): void {
    const args = { out, x, w, m, n, k, bias: opt.bias ?? null, accumulate: !!opt.accumulate, xOffset: (opt.xRow ?? 0) * k, yOffset: (opt.outRow ?? 0) * n };
    const q = this.quant.get(w);
    if (q) matmulQ4(this.ctx, args, q);
    else matmul(this.ctx, this.matmulVariants, args);
  }
  rope(x: GPUBuffer, rows: number, rowStride: number, colOffset: number, heads: number, headDim: number, startPos: number, ropeTable: GPUBuffer, norm: HeadNorm<GPUBuffer> | null): void {
    rope(this.ctx, x, rows, rowStride, colOffset, heads, headDim, startPos, ropeTable, norm);
  }
  kvWrite(layer: KvLayerStorage<GPUBuffer>, seq: SeqView<GPUBuffer>, src: GPUBuffer, rows: number, rowStride: number, kOffset: number, vOffset: number, kvHeads: number, headDim: number, startPos: number, ropeTable: GPUBuffer, kNorm: HeadNorm<GPUBuffer> | null): void {
    kvWrite(this.ctx, { k: layer.k, v: layer.v, pageTable: seq.table, pageSize: seq.pageSize, src, rows, rowStride, kOffset, vOffset, kvHeads, headDim, startPos, ropeTable, kNorm });
  }
  attention(out: GPUBuffer, q: GPUBuffer, qStride: number, layer: KvLayerStorage<GPUBuffer>, seq: SeqView<GPUBuffer>, rows: number, startPos: number, shape: AttentionShape): void {
    attention(this.ctx, { out, q, qStride, k: layer.k, v: layer.v, pageTable: seq.table, pageSize: seq.pageSize, rows, startPos, shape });
  }
  glu(out: GPUBuffer, gu: GPUBuffer, rows: number, inter: number, act: Activation): void {
    glu(this.ctx, out, gu, rows, inter, act);
  }
  add(out: GPUBuffer, a: GPUBuffer, elements: number): void {
    add(this.ctx, out, a, elements);
  }
  copyRows(dst: GPUBuffer, dstRow: number, src: GPUBuffer, srcRow: number, rows: number, width: number): void {
    const bytes = rows * width * 4;
    if (src !== dst) return this.ctx.rec.copy(src, srcRow * width * 4, dst, dstRow * width * 4, bytes);
    // WebGPU forbids copying a buffer onto itself: go through a scratch buffer.
    if (!this.rowScratch || this.rowScratch.size < bytes) {
      if (this.rowScratch) this.pool.destroy(this.rowScratch);
      this.rowScratch = this.pool.create('row-scratch', bytes);
    }
    this.ctx.rec.copy(src, srcRow * width * 4, this.rowScratch, 0, bytes);
    this.ctx.rec.copy(this.rowScratch, 0, dst, dstRow * width * 4, bytes);
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
      this.gpu.checkAlive();
      throw e;
    }
    const id = new Uint32Array(this.tokenRead.getMappedRange(0, 4))[0];
    this.tokenRead.unmap();
    return id;
  }

  // Vision towers: src/kernels/vision.ts.
  layerNorm(out: GPUBuffer, x: GPUBuffer, gain: GPUBuffer, bias: GPUBuffer, rows: number, dim: number, eps: number): void {
    layerNorm(this.ctx, out, x, gain, bias, rows, dim, eps);
  }
  gelu(x: GPUBuffer, elements: number): void {
    gelu(this.ctx, x, elements);
  }
  patchify(out: GPUBuffer, pixels: GPUBuffer, tiles: number, channels: number, size: number, patch: number): void {
    patchify(this.ctx, out, pixels, tiles, channels, size, patch);
  }
  attentionFull(out: GPUBuffer, qkv: GPUBuffer, shape: FullAttentionShape): void {
    attentionFull(this.ctx, out, qkv, shape);
  }
  pixelShuffle(out: GPUBuffer, x: GPUBuffer, tiles: number, side: number, dim: number, scale: number): void {
    pixelShuffle(this.ctx, out, x, tiles, side, dim, scale);
  }

  flush(): void {
    this.ctx.rec.submit();
  }

  async read(t: GPUBuffer, elements: number, offset = 0): Promise<Float32Array> {
    this.ctx.rec.submit();
    return new Float32Array(await readBuffer(this.gpu, t, elements * 4, offset * 4));
  }

  /** Waits until the device has finished all submitted work (timing). */
  async sync(): Promise<void> {
    this.ctx.rec.submit();
    await this.gpu.device.queue.onSubmittedWorkDone();
    this.gpu.checkAlive();
  }

  destroy(): void {
    this.tokenRead.destroy();
    this.pool.trim();
  }
}
