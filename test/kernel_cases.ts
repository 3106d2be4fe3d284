// Runs one kernel case in the page: seeded random inputs, the WebGPU op and its CPU twin
// (src/reference/cpu_ops.ts) on the same inputs, and the normalized max error
// max|gpu - cpu| / max(1, max|cpu|). The case tables live in test/kernels.spec.ts.
import { acquireGpu } from '../src/gpu/device.ts';
import { GpuOps } from '../src/ops/gpu_ops.ts';
import { CpuOps } from '../src/reference/cpu_ops.ts';
import { ropeTable } from '../src/model/config.ts';
import { matmul } from '../src/kernels/matmul.ts';
import { attention, AttentionScratch } from '../src/kernels/attention.ts';
import { attentionFull } from '../src/kernels/vision.ts';
import { matmulQ4 } from '../src/kernels/matmul_q4.ts';
import { matvecQ4Glu, matvecQ4Norm } from '../src/kernels/matvec_fused.ts';
import { halfComputeWorks, matmulF16 } from '../src/kernels/matmul_f16.ts';
import type { KvDtype, KvLayerStorage, SeqView } from '../src/ops/ops.ts';
import { halfToFloat } from '../src/core/float_bits.ts';

export type KernelCase = { op: string; seed?: number } & Record<string, any>;
export interface CaseResult { err: number; maxRef: number; elements: number; extra?: Record<string, unknown> }

let gpuOps: GpuOps | null = null;
async function gpu(): Promise<GpuOps> {
  if (!gpuOps) gpuOps = new GpuOps(await acquireGpu(), { prefill: 'regblock', decode: 'matvec' }, 4096);
  return gpuOps;
}

/** GpuOps on the same device that splits tensors over `maxBindingBytes` into row parts (src/ops/split.ts). */
const splitOps = new Map<number, GpuOps>();
async function gpuSplit(maxBindingBytes: number): Promise<GpuOps> {
  const g = await gpu();
  let s = splitOps.get(maxBindingBytes);
  if (!s) splitOps.set(maxBindingBytes, (s = new GpuOps(g.gpu, { prefill: 'regblock', decode: 'matvec' }, 4096, { maxBindingBytes })));
  return s;
}

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randn(r: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

function compare(a: Float32Array, b: Float32Array): CaseResult {
  let err = 0, maxRef = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    maxRef = Math.max(maxRef, Math.abs(b[i]));
  }
  if (a.length !== b.length || a.some((v) => Number.isNaN(v))) err = Infinity;
  return { err: err / Math.max(1, maxRef), maxRef, elements: b.length };
}

/** A scrambled page table: logical pages map to non-contiguous physical pages. */
function pagesFor(tokens: number, pageSize: number, r: () => number): Uint32Array {
  const n = Math.ceil(tokens / pageSize);
  const phys = Array.from({ length: n * 2 }, (_, i) => i);
  for (let i = phys.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [phys[i], phys[j]] = [phys[j], phys[i]];
  }
  return Uint32Array.from(phys.slice(0, n));
}

export async function runKernelCase(c: KernelCase): Promise<CaseResult> {
  const g = await gpu();
  const cpu = new CpuOps();
  const r = rng(c.seed ?? 1);
  const up = (d: Float32Array) => g.upload('case', d);
  const held: GPUBuffer[] = [];
  const alloc = (n: number) => { const b = g.alloc('case', n); held.push(b); return b; };
  const upl = (d: Float32Array) => { const b = up(d); held.push(b); return b; };
  try {
    switch (c.op) {
      case 'embed': {
        const { rows, hidden, vocab, scale } = c;
        const table = randn(r, vocab * hidden);
        const ids = Array.from({ length: rows }, () => Math.floor(r() * vocab));
        const want = new Float32Array(rows * hidden);
        cpu.embed(want, ids, table, rows, hidden, scale);
        const out = alloc(rows * hidden);
        g.embed(out, ids, upl(table), rows, hidden, scale);
        return compare(await g.read(out, rows * hidden), want);
      }
      case 'embed_split': {
        // The table stored as row parts (forced by maxBindingBytes): one gather per part.
        // Ids include the first and last row of every part.
        const { rows, hidden, vocab, scale, maxBindingBytes } = c;
        const s = await gpuSplit(maxBindingBytes);
        const table = randn(r, vocab * hidden);
        const tb = s.upload('case', table, { cols: hidden });
        const parts = s.splitInfo(tb)?.parts ?? [];
        const edges = parts.flatMap((p) => [p.row0, p.row0 + p.rows - 1]);
        const ids = [...edges, ...Array.from({ length: Math.max(0, rows - edges.length) }, () => Math.floor(r() * vocab))];
        const want = new Float32Array(ids.length * hidden);
        cpu.embed(want, ids, table, ids.length, hidden, scale);
        const out = s.alloc('case', ids.length * hidden);
        s.embed(out, ids, tb, ids.length, hidden, scale);
        const got = await s.read(out, ids.length * hidden);
        const back = await s.read(tb, vocab * hidden); // read over the parts
        s.free(out); s.free(tb);
        const res = compare(got, want);
        return { ...res, err: Math.max(res.err, compare(back, table).err), extra: { parts: parts.length, bytesInUse: s.pool.bytesInUse } };
      }
      case 'embed_stored': {
        // The gather over a q4 / f16 table (dequantized while gathered) vs the CPU twin's
        // dequantized / f16-rounded table; maxBindingBytes: the table as row parts too.
        const { rows, hidden, vocab, scale, scheme, half, maxBindingBytes } = c;
        const s = maxBindingBytes ? await gpuSplit(maxBindingBytes) : g;
        const table = randn(r, vocab * hidden);
        const opts = scheme ? { quant: { scheme, cols: hidden } } : half ? { half: true as const, cols: hidden } : { cols: hidden };
        const tc = cpu.upload('case', table, opts);
        const tb = s.upload('case', table, opts);
        const parts = s.splitInfo(tb)?.parts ?? [];
        const edges = parts.flatMap((p) => [p.row0, p.row0 + p.rows - 1]);
        const ids = [...edges, vocab - 1, 0, ...Array.from({ length: rows }, () => Math.floor(r() * vocab))];
        const want = new Float32Array(ids.length * hidden);
        cpu.embed(want, ids, tc, ids.length, hidden, scale);
        const out = s.alloc('case', ids.length * hidden);
        s.embed(out, ids, tb, ids.length, hidden, scale);
        const got = await s.read(out, ids.length * hidden);
        const bytes = s.bytesOf(tb);
        s.free(out); s.free(tb);
        return { ...compare(got, want), extra: { parts: parts.length, tableBytes: bytes, f32Bytes: table.byteLength } };
      }
      case 'matmul_split': {
        // GpuOps.matmul over a weight stored as row parts (forced by maxBindingBytes), f32 or q4
        // (scheme; gainRows: column gains), vs the CPU twin; n may be less than the weight's rows.
        const { m, n, k, bias, accumulate, variant, scheme, maxBindingBytes, xRow = 0, outRow = 0, gainRows = 0, wRows = n } = c;
        const s = await gpuSplit(maxBindingBytes);
        s.matmulVariants = { prefill: variant, decode: variant };
        s.kernelChoice = { ...s.kernelChoice, matvecQ4: c.q4Decode ?? 'matvec_q4', matmulQ4: c.q4Prefill ?? 'regblock_q4' };
        const x = randn(r, (m + xRow) * k), w = randn(r, wRows * k), b = bias ? randn(r, n) : null;
        const y0 = randn(r, (m + outRow) * n);
        const gains = gainRows ? { values: randn(r, (wRows / gainRows) * k, 2), rows: gainRows } : undefined;
        const opts = scheme ? { quant: { scheme, cols: k, gains } } : { cols: k };
        const wc = cpu.upload('case', w, opts);
        const want = Float32Array.from(y0);
        cpu.matmul(want, x, wc, m, n, k, { bias: b, accumulate, xRow, outRow });
        const mine: GPUBuffer[] = [];
        const put = (d: Float32Array, o?: object) => { const t = s.upload('case', d, o); mine.push(t); return t; };
        const wb = put(w, opts), out = put(y0);
        s.matmul(out, put(x), wb, m, n, k, { bias: b ? put(b) : null, accumulate, xRow, outRow });
        const got = await s.read(out, y0.length);
        const parts = s.splitInfo(wb)?.parts.length ?? 1;
        for (const t of mine) s.free(t);
        return { ...compare(got, want), extra: { parts, bytesInUse: s.pool.bytesInUse } };
      }
      case 'rms_norm': {
        const { rows, dim, gain, inplace } = c;
        const x = randn(r, rows * dim, 3), gw = gain ? randn(r, dim) : null;
        const want = new Float32Array(rows * dim);
        cpu.rmsNorm(want, x, gw, rows, dim, 1e-5);
        const xb = upl(x), out = inplace ? xb : alloc(rows * dim);
        g.rmsNorm(out, xb, gw ? upl(gw) : null, rows, dim, 1e-5);
        return compare(await g.read(out, rows * dim), want);
      }
      case 'matmul': {
        const { m, n, k, bias, accumulate, variant, xRow = 0 } = c;
        const x = randn(r, (m + xRow) * k), w = randn(r, n * k), b = bias ? randn(r, n) : null;
        const y0 = randn(r, m * n);
        const want = Float32Array.from(y0);
        cpu.matmul(want, x, w, m, n, k, { bias: b, accumulate, xRow });
        const out = upl(y0);
        matmul(g.ctx, { prefill: variant, decode: variant }, { out, x: upl(x), w: upl(w), bias: b ? upl(b) : null, m, n, k, accumulate: !!accumulate, xOffset: xRow * k, yOffset: 0 }, variant);
        return compare(await g.read(out, m * n), want);
      }
      case 'matmul_q4': {
        // The q4 kernels against the CPU twin on the same dequantized weights (CpuOps.upload
        // with quant); extra.quantErr: the dequantized weights' max error vs the f32 ones.
        // gainRows: column gains per block of rows (POP's deep K/V layout).
        const { m, n, k, bias, accumulate, variant, scheme, xRow = 0, gainRows = 0 } = c;
        const x = randn(r, (m + xRow) * k), w = randn(r, n * k), b = bias ? randn(r, n) : null;
        const y0 = randn(r, m * n);
        const gains = gainRows ? { values: randn(r, (n / gainRows) * k, 2), rows: gainRows } : undefined;
        const quant = { scheme, cols: k, gains };
        const wq = cpu.upload('case', w, { quant });
        const want = Float32Array.from(y0);
        cpu.matmul(want, x, wq, m, n, k, { bias: b, accumulate, xRow });
        const out = upl(y0);
        const wb = g.upload('case', w, { quant }); held.push(wb);
        matmulQ4(g.ctx, { out, x: upl(x), w: wb, bias: b ? upl(b) : null, m, n, k, accumulate: !!accumulate, xOffset: xRow * k, yOffset: 0 }, g.quantInfo(wb)!, variant);
        let quantErr = 0;
        if (!gains) for (let i = 0; i < w.length; i++) quantErr = Math.max(quantErr, Math.abs(w[i] - wq[i]));
        return { ...compare(await g.read(out, m * n), want), extra: { quantErr } };
      }
      case 'norm_matmul':
      case 'glu_matmul': {
        // The decode fusions (src/kernels/matvec_fused.ts) against the CPU twin's two ops on the same
        // dequantized weights: variant 'fused' dispatches the fused kernel itself (any M); 'ops' goes
        // through GpuOps.normMatmul / gluMatmul with the probe's choice set to fused (M = 1 fuses,
        // M > 1 and split weights run apart); 'separate' forces the separate passes.
        const { m, n, k, bias = false, accumulate = false, gain = true, act = 'silu', variant, scheme } = c;
        const glu = c.op === 'glu_matmul';
        const xk = glu ? 2 * k : k;
        const x = randn(r, m * xk, glu ? 3 : 2), w = randn(r, n * k), b = bias ? randn(r, n) : null, gn = gain ? randn(r, k) : null;
        const y0 = randn(r, m * n);
        const quant = { scheme, cols: k };
        const wq = cpu.upload('case', w, { quant });
        const want = Float32Array.from(y0);
        if (glu) cpu.gluMatmul(want, x, act, wq, m, n, k, { accumulate, hidden: new Float32Array(m * k) });
        else cpu.normMatmul(want, x, gn, 1e-5, wq, m, n, k, { bias: b, normed: new Float32Array(m * k) });
        const out = upl(y0);
        const gs = c.maxBindingBytes ? await gpuSplit(c.maxBindingBytes) : g;
        const wb = gs.upload('case', w, { quant, cols: k }); held.push(wb);
        const xb = upl(x), bb = b ? upl(b) : null, gb = gn ? upl(gn) : null;
        if (variant === 'fused') {
          const args = { out, x: xb, w: wb, bias: bb, m, n, k, accumulate, xOffset: 0, yOffset: 0 };
          if (glu) matvecQ4Glu(g.ctx, args, g.quantInfo(wb)!, act);
          else matvecQ4Norm(g.ctx, args, g.quantInfo(wb)!, gb, 1e-5);
        } else {
          const before = gs.kernelChoice;
          gs.kernelChoice = { ...before, normMatvec: variant === 'ops' ? 'matvec_q4_norm' : 'separate', gluMatvec: variant === 'ops' ? 'matvec_q4_glu' : 'separate' };
          try {
            if (glu) gs.gluMatmul(out, xb, act, wb, m, n, k, { accumulate, hidden: alloc(m * k) });
            else gs.normMatmul(out, xb, gb, 1e-5, wb, m, n, k, { bias: bb, normed: alloc(m * k) });
          } finally {
            gs.kernelChoice = before;
          }
        }
        return { ...compare(await gs.read(out, m * n), want), extra: gs.splitInfo(wb) ? { parts: gs.splitInfo(wb)!.parts.length } : undefined };
      }
      case 'matmul_f16': {
        // The f16-storage kernels against the CPU twin on the same f16-rounded weights (CpuOps.upload
        // with half); extra.roundErr: the rounded weights' max error vs the f32 ones.
        // gainRows: column gains per block of rows (POP's deep K/V layout).
        const { m, n, k, bias, accumulate, variant, xRow = 0, gainRows = 0 } = c;
        const x = randn(r, (m + xRow) * k), w = randn(r, n * k), b = bias ? randn(r, n) : null;
        const y0 = randn(r, m * n);
        const half = gainRows ? { cols: k, gains: { values: randn(r, (n / gainRows) * k, 2), rows: gainRows } } : (true as const);
        const wr = cpu.upload('case', w, { half });
        const want = Float32Array.from(y0);
        cpu.matmul(want, x, wr, m, n, k, { bias: b, accumulate, xRow });
        const out = upl(y0);
        const wb = g.upload('case', w, { half }); held.push(wb);
        matmulF16(g.ctx, g.matmulVariants, { out, x: upl(x), w: wb, bias: b ? upl(b) : null, m, n, k, accumulate: !!accumulate, xOffset: xRow * k, yOffset: 0 }, g.halfInfo(wb)!, false, variant);
        let roundErr = 0;
        if (!gainRows) for (let i = 0; i < w.length; i++) roundErr = Math.max(roundErr, Math.abs(w[i] - wr[i]));
        return { ...compare(await g.read(out, m * n), want), extra: { roundErr } };
      }
      case 'f16_guard': {
        // Without shader-f16 the f16-arithmetic kernels are refused before any module is created.
        if (g.gpu.features.shaderF16) return { err: 0, maxRef: 0, elements: 1, extra: { skipped: 'adapter has shader-f16' } };
        const before = g.ctx.pipelines.size;
        const wb = g.upload('case', new Float32Array(64), { half: true }); held.push(wb);
        let refused = 0;
        for (const variant of ['tiled_f16', 'matvec_wg_f16']) {
          try {
            matmulF16(g.ctx, g.matmulVariants, { out: alloc(4), x: upl(new Float32Array(16)), w: wb, bias: null, m: 1, n: 4, k: 16, accumulate: false, xOffset: 0, yOffset: 0 }, g.halfInfo(wb)!, true, variant);
          } catch {
            refused++;
          }
        }
        g.halfCompute = true; // as if set by mistake: the kernel wrapper still refuses
        try {
          g.matmul(alloc(4), upl(new Float32Array(16)), wb, 1, 4, 16);
        } catch {
          refused++;
        } finally {
          g.halfCompute = false;
        }
        const created = g.ctx.pipelines.size - before;
        return { err: refused === 3 && created === 0 ? 0 : 1, maxRef: 0, elements: 1, extra: { refused, created } };
      }
      case 'f16_check': {
        // The load-time check of the f16-arithmetic kernels, run on their f32 twins: true here.
        const ok = await halfComputeWorks(g.ctx, { gemm: 'tiled_f16w', gemv: 'matvec_wg_f16w' });
        const f16 = await halfComputeWorks(g.ctx);
        return { err: ok && f16 === g.gpu.features.shaderF16 ? 0 : 1, maxRef: 0, elements: 1, extra: { ok, f16 } };
      }
      case 'rope': {
        const { rows, heads, headDim, startPos, norm, theta = 10000, scaling = null } = c;
        const stride = heads * headDim + 8, col = 4;
        const x = randn(r, rows * stride);
        const inv = ropeTable({ theta, scaling }, headDim, startPos + rows);
        const gain = norm ? randn(r, headDim) : null;
        const want = Float32Array.from(x);
        cpu.rope(want, rows, stride, col, heads, headDim, startPos, inv, gain ? { gain, eps: 1e-6 } : null);
        const xb = upl(x);
        g.rope(xb, rows, stride, col, heads, headDim, startPos, upl(inv), gain ? { gain: upl(gain), eps: 1e-6 } : null);
        return compare(await g.read(xb, rows * stride), want);
      }
      case 'kv_write':
      case 'attention': {
        const { rows, startPos, kvHeads, headDim, pageSize, heads = kvHeads, window = 0, norm = false, spans = [], gemmMatmul = 'regblock' } = c;
        // kvDtype 'f16': both sides store K/V as f16 (GPU: pairs of halves; CPU twin: f16-rounded f32).
        const kvDtype: KvDtype = c.kvDtype ?? 'f32';
        const total = startPos + rows;
        const pages = pagesFor(total, pageSize, r);
        const numPages = pages.length * 2;
        const kvDim = kvHeads * headDim;
        const stride = 2 * kvDim + 4;
        const inv = ropeTable({ theta: 10000, scaling: null }, headDim, total);
        const gain = norm ? randn(r, headDim) : null;
        // Fill the cache for positions [0, total) through kvWrite on both sides.
        const src = randn(r, total * stride);
        const cpuSeq: SeqView<Float32Array> = { pages, table: new Float32Array(0), pageSize };
        const cpuLayer: KvLayerStorage<Float32Array> = { k: cpu.allocKv('k', numPages * pageSize * kvDim, kvDtype), v: cpu.allocKv('v', numPages * pageSize * kvDim, kvDtype), dtype: kvDtype };
        cpu.kvWrite(cpuLayer, cpuSeq, src, total, stride, 2, 2 + kvDim, kvHeads, headDim, 0, inv, gain ? { gain, eps: 1e-6 } : null);
        const table = g.uploadU32('case', pages); held.push(table);
        const gSeq: SeqView<GPUBuffer> = { pages, table, pageSize };
        const gLayer: KvLayerStorage<GPUBuffer> = { k: g.allocKv('case', numPages * pageSize * kvDim, kvDtype), v: g.allocKv('case', numPages * pageSize * kvDim, kvDtype), dtype: kvDtype };
        held.push(gLayer.k, gLayer.v);
        g.kvWrite(gLayer, gSeq, upl(src), total, stride, 2, 2 + kvDim, kvHeads, headDim, 0, upl(inv), gain ? { gain: upl(gain), eps: 1e-6 } : null);
        if (c.op === 'kv_write') {
          // An f16 cache holds half the words: widen its halves (element 2i in the low 16 bits) to compare.
          const stored = async (b: GPUBuffer, n: number) => {
            if (kvDtype === 'f32') return g.read(b, n);
            const words = new Uint32Array((await g.read(b, n / 2)).buffer);
            return Float32Array.from({ length: n }, (_, i) => halfToFloat((words[i >> 1] >>> (16 * (i & 1))) & 0xffff));
          };
          const a = compare(await stored(gLayer.k, cpuLayer.k.length), cpuLayer.k);
          const b = compare(await stored(gLayer.v, cpuLayer.v.length), cpuLayer.v);
          const res = a.err >= b.err ? a : b;
          if (kvDtype === 'f16') {
            // The same writes into an f32 twin: how far f16 rounding moved the values (must be > 0), and the bytes held.
            const f32Layer = { k: new Float32Array(cpuLayer.k.length), v: new Float32Array(cpuLayer.v.length) };
            cpu.kvWrite(f32Layer, cpuSeq, src, total, stride, 2, 2 + kvDim, kvHeads, headDim, 0, inv, gain ? { gain, eps: 1e-6 } : null);
            res.extra = { roundingErr: compare(cpuLayer.k, f32Layer.k).err, bytes: gLayer.k.size, f32Bytes: cpuLayer.k.length * 4 };
          }
          return res;
        }
        const qStride = heads * headDim + 12;
        const q = randn(r, rows * qStride);
        const shape = { numHeads: heads, numKvHeads: kvHeads, headDim, scale: 1 / Math.sqrt(headDim), window };
        const want = new Float32Array(rows * heads * headDim);
        // Bidirectional spans [a, b) of positions: their rows also attend keys up to b.
        const keyEnd = (spans as [number, number][]).length
          ? Array.from({ length: rows }, (_, i) => (spans as [number, number][]).find(([a, b]) => startPos + i >= a && startPos + i < b)?.[1] ?? startPos + i + 1)
          : null;
        cpu.attention(want, q, qStride, cpuLayer, cpuSeq, rows, startPos, shape, keyEnd);
        const out = alloc(rows * heads * headDim);
        if (c.variant) {
          const keyEndBuf = keyEnd ? g.uploadU32('case', Uint32Array.from(keyEnd)) : null;
          if (keyEndBuf) held.push(keyEndBuf);
          // maxScores: a small ceiling forces the GEMM path to slice the query rows.
          const scratch = c.maxScores ? new AttentionScratch((l, n) => alloc(n), () => {}, { scores: c.maxScores }) : g.attnScratch;
          const gemm = { variants: { prefill: gemmMatmul, decode: 'matvec' }, scratch };
          attention(g.ctx, { out, q: upl(q), qStride, k: gLayer.k, v: gLayer.v, kvF16: kvDtype === 'f16', pageTable: gSeq.table, pageSize, rows, startPos, shape, keyEnd: keyEndBuf, decodeChunk: c.decodeChunk }, gemm, c.variant);
        } else g.attention(out, upl(q), qStride, gLayer, gSeq, rows, startPos, shape, keyEnd);
        return compare(await g.read(out, want.length), want);
      }
      case 'glu': {
        const { rows, inter, act } = c;
        const gu = randn(r, rows * 2 * inter, 4);
        const want = new Float32Array(rows * inter);
        cpu.glu(want, gu, rows, inter, act);
        const out = alloc(rows * inter);
        g.glu(out, upl(gu), rows, inter, act);
        return compare(await g.read(out, want.length), want);
      }
      case 'add': {
        // outOffset / aOffset: DeepStack's row adds (a run of rows at a row offset).
        const { n, outOffset = 0, aOffset = 0 } = c;
        const a = randn(r, aOffset + n), o = randn(r, outOffset + n + 5);
        const want = Float32Array.from(o);
        const offsets = outOffset || aOffset ? { out: outOffset, a: aOffset } : undefined;
        cpu.add(want, a, n, offsets);
        const out = upl(o);
        g.add(out, upl(a), n, offsets);
        return compare(await g.read(out, want.length), want);
      }
      case 'softcap': {
        const { n, cap } = c;
        const x = randn(r, n, 100);
        const want = Float32Array.from(x);
        cpu.softcap(want, n, cap);
        const xb = upl(x);
        g.softcap(xb, n, cap);
        return compare(await g.read(xb, n), want);
      }
      case 'copy_rows': {
        const { rows, width, srcRow, dstRow } = c;
        const s = randn(r, (srcRow + rows) * width), d = randn(r, (dstRow + rows) * width);
        const want = Float32Array.from(d);
        cpu.copyRows(want, dstRow, s, srcRow, rows, width);
        const out = upl(d);
        g.copyRows(out, dstRow, upl(s), srcRow, rows, width);
        return compare(await g.read(out, want.length), want);
      }
      case 'sample': {
        // err = fraction of draws where GPU and CPU pick different tokens.
        const { vocab, draws, temperature, topK = 0, topP = 1, scale = 4 } = c;
        let differ = 0;
        const logits = randn(r, vocab, scale);
        const lb = upl(logits);
        for (let s = 0; s < draws; s++) {
          const p = { temperature, topK, topP, seed: 1234 + s * 7 };
          const a = await g.sample(lb, vocab, p, s);
          const b = await cpu.sample(logits, vocab, p, s);
          if (a !== b) differ++;
        }
        return { err: differ / draws, maxRef: 0, elements: draws };
      }
      case 'layer_norm': {
        const { rows, dim } = c;
        const x = randn(r, rows * dim, 3).map((v, i) => v + (i % dim === 0 ? 5 : 0)), gw = randn(r, dim), bw = randn(r, dim);
        const want = new Float32Array(rows * dim);
        cpu.layerNorm(want, x, gw, bw, rows, dim, 1e-6);
        const out = alloc(rows * dim);
        g.layerNorm(out, upl(x), upl(gw), upl(bw), rows, dim, 1e-6);
        return compare(await g.read(out, rows * dim), want);
      }
      case 'gelu': {
        const { n, exact = false } = c;
        const x = randn(r, n, 12);
        const want = Float32Array.from(x);
        cpu.gelu(want, n, exact);
        const xb = upl(x);
        g.gelu(xb, n, exact);
        return compare(await g.read(xb, n), want);
      }
      case 'patchify': {
        const { tiles, channels, size, patch } = c;
        const px = randn(r, tiles * channels * size * size);
        const n = tiles * (size / patch) ** 2 * channels * patch * patch;
        const want = new Float32Array(n);
        cpu.patchify(want, px, tiles, channels, size, patch);
        const out = alloc(n);
        g.patchify(out, upl(px), tiles, channels, size, patch);
        return compare(await g.read(out, n), want);
      }
      case 'attention_full': {
        const { seqLen, seqs, heads, headDim, pad = 0 } = c;
        const rows = seqLen * seqs, W = heads * headDim, stride = 3 * W + pad;
        const qkv = randn(r, rows * stride, 2);
        const shape = { rows, seqLen, stride, qOffset: pad, kOffset: pad + W, vOffset: pad + 2 * W, numHeads: heads, headDim, scale: 1 / Math.sqrt(headDim) };
        const want = new Float32Array(rows * W);
        cpu.attentionFull(want, qkv, shape);
        const out = alloc(rows * W);
        if (c.variant === 'rows8') attentionFull(g.ctx, out, upl(qkv), shape);
        else g.attentionFull(out, upl(qkv), shape);
        return compare(await g.read(out, rows * W), want);
      }
      case 'pixel_shuffle': {
        const { tiles, side, dim, scale } = c;
        const x = randn(r, tiles * side * side * dim);
        const want = new Float32Array(x.length);
        cpu.pixelShuffle(want, x, tiles, side, dim, scale);
        const out = alloc(x.length);
        g.pixelShuffle(out, upl(x), tiles, side, dim, scale);
        return compare(await g.read(out, x.length), want);
      }
      case 'avg_pool': {
        const { tiles, side, dim, kernel } = c;
        const x = randn(r, tiles * side * side * dim);
        const n = tiles * (side / kernel) ** 2 * dim;
        const want = new Float32Array(n);
        cpu.avgPool(want, x, tiles, side, dim, kernel);
        const out = alloc(n);
        g.avgPool(out, upl(x), tiles, side, dim, kernel);
        return compare(await g.read(out, n), want);
      }
      default:
        throw new Error(`unknown op ${c.op}`);
    }
  } finally {
    for (const b of held) g.free(b);
  }
}
