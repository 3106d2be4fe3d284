// The plain TypeScript twin of the GPU ops: each op as the obvious loop, in f64
// accumulators. Used by the tests only, as the reference every kernel is compared with.
import type { Activation } from '../core/op_types.ts';
import type { AttentionShape, HeadNorm, KvDtype, KvLayerStorage, Ops, RowUpload, SampledToken, SampleOptions, SeqView, UploadOptions } from '../ops/ops.ts';
import { HostRowUpload } from '../ops/row_upload.ts';
import { dequantizeQ4, quantizeQ4, type QuantInfo } from '../core/quant.ts';
import { roundHalf } from '../core/half.ts';
import { floatToHalf, halfToFloat } from '../core/float_bits.ts';
import { adjustLogitsCpu, logprobsCpu, sampleCpu, type SampleParams } from './sample.ts';
import { attentionFullCpu, avgPoolCpu, geluCpu, layerNormCpu, patchifyCpu, pixelShuffleCpu } from './cpu_vision_ops.ts';
import type { FullAttentionShape } from '../ops/ops.ts';

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

/** Physical element offset of (position, kv head) in a layer's page storage. */
export function kvOffset(seq: { pages: Uint32Array; pageSize: number }, pos: number, kvHeads: number, headDim: number, head: number): number {
  const page = seq.pages[Math.floor(pos / seq.pageSize)];
  const slot = pos % seq.pageSize;
  return ((page * seq.pageSize + slot) * kvHeads + head) * headDim;
}

function normHead(v: Float32Array, off: number, d: number, gain: Float32Array | null, eps: number): void {
  let ss = 0;
  for (let i = 0; i < d; i++) ss += v[off + i] * v[off + i];
  const r = 1 / Math.sqrt(ss / d + eps);
  for (let i = 0; i < d; i++) v[off + i] = v[off + i] * r * (gain ? gain[i] : 1);
}

/** Rotate-half RoPE of one head in place: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin). */
function ropeHead(v: Float32Array, off: number, d: number, pos: number, table: Float32Array): void {
  const half = d / 2;
  for (let i = 0; i < half; i++) {
    const c = table[pos * d + i], s = table[pos * d + half + i];
    const x1 = v[off + i], x2 = v[off + i + half];
    v[off + i] = x1 * c - x2 * s;
    v[off + i + half] = x2 * c + x1 * s;
  }
}

export class CpuOps implements Ops<Float32Array> {
  readonly name = 'cpu';
  readonly variants: Record<string, string> = { all: 'cpu-reference' };

  alloc(_label: string, elements: number): Float32Array {
    return new Float32Array(elements);
  }
  /** A quantized weight is kept as its dequantized values: what the GPU's q4 kernels compute with. */
  upload(_label: string, data: Float32Array, opts: UploadOptions = {}): Float32Array {
    if (opts.half && !opts.quant) return roundHalf(data, opts.half); // the f16-rounded reference
    if (!opts.quant) return Float32Array.from(data);
    const { packed, info } = quantizeQ4(data, opts.quant);
    return dequantizeQ4(packed, info);
  }
  uploadRows(label: string, rows: number, opts: UploadOptions & { cols: number }): RowUpload<Float32Array> {
    return new HostRowUpload(this, label, rows, opts);
  }
  /** An already packed weight: its dequantized values, as the q4 kernels compute with them. */
  uploadPacked(_label: string, packed: Uint32Array, info: QuantInfo): Float32Array {
    return dequantizeQ4(packed, info);
  }
  uploadU32(_label: string, data: Uint32Array): Float32Array {
    return new Float32Array(data.length); // the CPU reads the host page table directly
  }
  writeU32(): void {}
  /** f32 storage either way: an f16 cache holds f16-rounded values (kvWrite rounds). */
  allocKv(_label: string, elements: number, _dtype: KvDtype): Float32Array {
    return new Float32Array(elements);
  }
  copyKvRows(layer: KvLayerStorage<Float32Array>, dstRow: number, srcRow: number, rows: number, width: number): void {
    this.copyRows(layer.k, dstRow, layer.k, srcRow, rows, width);
    this.copyRows(layer.v, dstRow, layer.v, srcRow, rows, width);
  }
  reserveAttention(): void {}
  free(): void {}

  embed(out: Float32Array, ids: ArrayLike<number>, table: Float32Array, rows: number, hidden: number, scale: number): void {
    for (let r = 0; r < rows; r++) for (let i = 0; i < hidden; i++) out[r * hidden + i] = table[ids[r] * hidden + i] * scale;
  }

  rmsNorm(out: Float32Array, x: Float32Array, gain: Float32Array | null, rows: number, dim: number, eps: number): void {
    for (let r = 0; r < rows; r++) {
      let ss = 0;
      for (let i = 0; i < dim; i++) ss += x[r * dim + i] ** 2;
      const inv = 1 / Math.sqrt(ss / dim + eps);
      for (let i = 0; i < dim; i++) out[r * dim + i] = x[r * dim + i] * inv * (gain ? gain[i] : 1);
    }
  }

  matmul(out: Float32Array, x: Float32Array, w: Float32Array, m: number, n: number, k: number, opt: { bias?: Float32Array | null; accumulate?: boolean; xRow?: number; outRow?: number } = {}): void {
    const xr = opt.xRow ?? 0, orow = opt.outRow ?? 0;
    for (let r = 0; r < m; r++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        const xo = (xr + r) * k, wo = j * k;
        for (let i = 0; i < k; i++) acc += x[xo + i] * w[wo + i];
        if (opt.bias) acc += opt.bias[j];
        const o = (orow + r) * n + j;
        out[o] = opt.accumulate ? out[o] + acc : acc;
      }
    }
  }

  normMatmul(out: Float32Array, x: Float32Array, gain: Float32Array | null, eps: number, w: Float32Array, m: number, n: number, k: number, opt: { bias?: Float32Array | null; normed: Float32Array }): void {
    this.rmsNorm(opt.normed, x, gain, m, k, eps);
    this.matmul(out, opt.normed, w, m, n, k, { bias: opt.bias });
  }
  gluMatmul(out: Float32Array, gu: Float32Array, act: Activation, w: Float32Array, m: number, n: number, k: number, opt: { accumulate?: boolean; hidden: Float32Array }): void {
    this.glu(opt.hidden, gu, m, k, act);
    this.matmul(out, opt.hidden, w, m, n, k, { accumulate: opt.accumulate });
  }

  rope(x: Float32Array, rows: number, rowStride: number, colOffset: number, heads: number, headDim: number, startPos: number, ropeTable: Float32Array, norm: HeadNorm<Float32Array> | null): void {
    for (let r = 0; r < rows; r++) {
      for (let h = 0; h < heads; h++) {
        const off = r * rowStride + colOffset + h * headDim;
        if (norm) normHead(x, off, headDim, norm.gain, norm.eps);
        ropeHead(x, off, headDim, startPos + r, ropeTable);
      }
    }
  }

  kvWrite(layer: KvLayerStorage<Float32Array>, seq: SeqView<Float32Array>, src: Float32Array, rows: number, rowStride: number, kOffset: number, vOffset: number, kvHeads: number, headDim: number, startPos: number, ropeTable: Float32Array, kNorm: HeadNorm<Float32Array> | null): void {
    const tmp = new Float32Array(headDim);
    for (let r = 0; r < rows; r++) {
      for (let h = 0; h < kvHeads; h++) {
        const dst = kvOffset(seq, startPos + r, kvHeads, headDim, h);
        for (let i = 0; i < headDim; i++) tmp[i] = src[r * rowStride + kOffset + h * headDim + i];
        if (kNorm) normHead(tmp, 0, headDim, kNorm.gain, kNorm.eps);
        ropeHead(tmp, 0, headDim, startPos + r, ropeTable);
        // An f16 cache stores each value rounded to the nearest half (ties to even), as pack2x16float.
        const store = layer.dtype === 'f16' ? (x: number) => halfToFloat(floatToHalf(x)) : (x: number) => x;
        for (let i = 0; i < headDim; i++) layer.k[dst + i] = store(tmp[i]);
        for (let i = 0; i < headDim; i++) layer.v[dst + i] = store(src[r * rowStride + vOffset + h * headDim + i]);
      }
    }
  }

  attention(out: Float32Array, q: Float32Array, qStride: number, layer: KvLayerStorage<Float32Array>, seq: SeqView<Float32Array>, rows: number, startPos: number, s: AttentionShape, keyEnd?: ArrayLike<number> | null): void {
    const group = s.numHeads / s.numKvHeads;
    for (let r = 0; r < rows; r++) {
      const pos = startPos + r;
      const first = s.window > 0 ? Math.max(0, pos - s.window + 1) : 0;
      const last = Math.max(pos, keyEnd ? keyEnd[r] - 1 : pos);
      for (let h = 0; h < s.numHeads; h++) {
        const kvh = Math.floor(h / group);
        const qo = r * qStride + h * s.headDim;
        const scores: number[] = [];
        for (let t = first; t <= last; t++) {
          const ko = kvOffset(seq, t, s.numKvHeads, s.headDim, kvh);
          let dot = 0;
          for (let i = 0; i < s.headDim; i++) dot += q[qo + i] * layer.k[ko + i];
          scores.push(dot * s.scale);
        }
        const mx = Math.max(...scores);
        const e = scores.map((v) => Math.exp(v - mx));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let i = 0; i < s.headDim; i++) {
          let acc = 0;
          for (let t = first; t <= last; t++) acc += (e[t - first] / sum) * layer.v[kvOffset(seq, t, s.numKvHeads, s.headDim, kvh) + i];
          out[r * s.numHeads * s.headDim + h * s.headDim + i] = acc;
        }
      }
    }
  }

  glu(out: Float32Array, gu: Float32Array, rows: number, inter: number, act: Activation): void {
    const f = act === 'silu' ? silu : geluTanh;
    for (let r = 0; r < rows; r++) for (let i = 0; i < inter; i++) out[r * inter + i] = f(gu[r * 2 * inter + i]) * gu[r * 2 * inter + inter + i];
  }

  add(out: Float32Array, a: Float32Array, elements: number, offsets?: { out: number; a: number }): void {
    const o = offsets?.out ?? 0, s = offsets?.a ?? 0;
    for (let i = 0; i < elements; i++) out[o + i] += a[s + i];
  }

  copyRows(dst: Float32Array, dstRow: number, src: Float32Array, srcRow: number, rows: number, width: number): void {
    dst.set(src.subarray(srcRow * width, (srcRow + rows) * width), dstRow * width);
  }

  scale(x: Float32Array, elements: number, s: number): void {
    for (let i = 0; i < elements; i++) x[i] *= s;
  }

  headNorm(x: Float32Array, rows: number, rowStride: number, colOffset: number, heads: number, headDim: number, gain: Float32Array | null, eps: number): void {
    for (let r = 0; r < rows; r++) for (let h = 0; h < heads; h++) normHead(x, r * rowStride + colOffset + h * headDim, headDim, gain, eps);
  }

  gateMul(gate: Float32Array, other: Float32Array, rows: number, dim: number, otherStride: number, otherOffset: number, act: Activation): void {
    const f = act === 'silu' ? silu : geluTanh;
    for (let r = 0; r < rows; r++) for (let i = 0; i < dim; i++) gate[r * dim + i] = f(gate[r * dim + i]) * other[r * otherStride + otherOffset + i];
  }

  softcap(x: Float32Array, elements: number, cap: number): void {
    for (let i = 0; i < elements; i++) x[i] = cap * Math.tanh(x[i] / cap);
  }

  async sample(logits: Float32Array, vocab: number, params: SampleParams, step: number): Promise<number> {
    return sampleCpu(logits.subarray(0, vocab), params, step);
  }
  async sampleToken(logits: Float32Array, vocab: number, params: SampleParams, step: number, o: SampleOptions): Promise<SampledToken> {
    const pen = { frequency: o.frequencyPenalty ?? 0, presence: o.presencePenalty ?? 0, repetition: o.repetitionPenalty ?? 1 };
    const adjusted = adjustLogitsCpu(logits.subarray(0, vocab), o.adjust ?? [], pen, null);
    logits.set(adjusted); // in place, as on the GPU
    const row = o.mask ? adjustLogitsCpu(adjusted, [], pen, o.mask) : adjusted;
    const id = sampleCpu(row, params, step);
    if (o.topLogprobs === undefined) return { id };
    const lp = logprobsCpu(row, params.temperature > 0 ? params.temperature : 1, id, o.topLogprobs);
    return { id, logprob: lp.logprob, top: lp.top };
  }

  flush(): void {}

  async read(t: Float32Array, elements: number, offset = 0): Promise<Float32Array> {
    return t.slice(offset, offset + elements);
  }

  // Vision towers: see cpu_vision_ops.ts.
  layerNorm(out: Float32Array, x: Float32Array, gain: Float32Array, bias: Float32Array, rows: number, dim: number, eps: number): void {
    layerNormCpu(out, x, gain, bias, rows, dim, eps);
  }
  gelu(x: Float32Array, elements: number, exact?: boolean): void {
    geluCpu(x, elements, exact);
  }
  patchify(out: Float32Array, pixels: Float32Array, tiles: number, channels: number, size: number, patch: number): void {
    patchifyCpu(out, pixels, tiles, channels, size, patch);
  }
  attentionFull(out: Float32Array, qkv: Float32Array, shape: FullAttentionShape): void {
    attentionFullCpu(out, qkv, shape);
  }
  pixelShuffle(out: Float32Array, x: Float32Array, tiles: number, side: number, dim: number, scale: number): void {
    pixelShuffleCpu(out, x, tiles, side, dim, scale);
  }
  avgPool(out: Float32Array, x: Float32Array, tiles: number, side: number, dim: number, kernel: number): void {
    avgPoolCpu(out, x, tiles, side, dim, kernel);
  }
}
