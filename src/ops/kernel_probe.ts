// Chooses, per adapter and model shape, the kernels that the model-independent matmul probe
// (src/kernels/probe.ts) leaves open: the q4 GEMV of decode, the one-row (decode) attention,
// whether decode's RMSNorm and GLU run apart or folded into the next q4 GEMV's load
// (src/kernels/matvec_fused.ts; 'separate' = the norm / GLU kernel, then the chosen q4 GEMV),
// and prefill's kernels on the model's own shapes: the f32 GEMM, the q4 GEMM (register blocks,
// or workgroup tiles dequantized while loaded) and the many-row attention (GEMM path, 8 rows per
// invocation, or flash attention).
// Each candidate is first checked against a CPU result on a small odd shape (a wrong or
// uncompilable variant is dropped, never chosen), then timed on the model's own shapes; the
// choice and every candidate's timing are cached in IndexedDB by adapter and shape, and
// reported in stats (describeGpuEngine) and by `pop-llm bench`.
import { get, set } from 'idb-keyval';
import type { KernelContext } from '../kernels/context.ts';
import { MATMUL_Q4_VARIANTS, matmulQ4, q4DecodeCandidates, Q4_PREFILL_VARIANTS } from '../kernels/matmul_q4.ts';
import { MATMUL_VARIANTS, matmul } from '../kernels/matmul.ts';
import { attention, AttentionScratch, DECODE_ATTENTION_VARIANTS, PREFILL_ATTENTION_VARIANTS, type AttentionVariant } from '../kernels/attention.ts';
import { dequantizeQ4, quantizeQ4, type QuantInfo, type QuantScheme } from '../core/quant.ts';
import { matvecQ4Glu, matvecQ4Norm } from '../kernels/matvec_fused.ts';
import { rmsNorm } from '../kernels/rms_norm.ts';
import { glu } from '../kernels/elementwise.ts';
import { readBuffer } from '../gpu/recorder.ts';
import type { Activation } from '../core/op_types.ts';

export interface KernelChoice {
  /** The q4 GEMV for M = 1 (src/kernels/matmul_q4.ts). */
  matvecQ4: string;
  /** The q4 GEMM for M > 1 and for column gains (src/kernels/matmul_q4.ts). */
  matmulQ4: string;
  /** The attention kernel for one query row (src/kernels/attention.ts). */
  attentionDecode: AttentionVariant;
  /** The attention kernel for many query rows; null: the adapter's default (attentionVariant). */
  attentionPrefill: AttentionVariant | null;
  /** The f32 GEMM for M > 1 timed on the model's shape (absent: the model-independent probe's). */
  matmulPrefill?: string;
  /** RMSNorm + q4 GEMV at M = 1: apart ('separate', the default), or folded (src/kernels/matvec_fused.ts). */
  normMatvec?: 'separate' | 'matvec_q4_norm';
  /** GLU + the down projection's q4 GEMV at M = 1: apart ('separate', the default), or folded. */
  gluMatvec?: 'separate' | 'matvec_q4_glu';
}

export interface CandidateTiming {
  /** Best of the timed calls, in milliseconds per call (the GEMV: both layer shapes together). */
  ms: number;
  /** Bytes the call must read (weights; K and V) over that time, in GB/s. */
  gbps: number;
  /** GEMM and prefill attention: the call's FLOPs over that time, in GFLOP/s. */
  gflops?: number;
}

export interface FamilyProbe {
  choice: string;
  /** The shape timed, in words. */
  shape: string;
  timings: Record<string, CandidateTiming>;
  /** Candidates that failed their check on this adapter (never chosen). */
  failed: string[];
}

export interface KernelProbeResult {
  /** Present when the model holds q4 weights. */
  matvecQ4?: FamilyProbe;
  matmulQ4?: FamilyProbe;
  /** Present when the model holds q4 weights: RMSNorm + GEMV, apart or fused. */
  normMatvec?: FamilyProbe;
  /** Present when the model holds q4 weights: GLU + down GEMV, apart or fused. */
  gluMatvec?: FamilyProbe;
  attentionDecode: FamilyProbe;
  /** Prefill: the f32 GEMM and the many-row attention on the model's shapes. */
  matmulPrefill?: FamilyProbe;
  attentionPrefill?: FamilyProbe;
  cached: boolean;
}

/** The model shapes the probe times on. */
export interface ModelKernelShapes {
  hidden: number;
  intermediate: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Keys of the timed decode attention (the context, capped). */
  keys: number;
  /** Query rows of the timed prefill GEMMs and attention (the prefill chunk, capped). */
  rows: number;
  quantized: boolean;
  /** The MLP's activation (the fused GLU's ACT); default silu. */
  activation?: Activation;
}

const CACHE_VERSION = 4;
/** A candidate whose first call takes this many times the best first call is not timed further. */
const SLOW_CUTOFF = 4;

function seeded(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

class Buffers {
  private readonly made: GPUBuffer[] = [];
  constructor(private readonly dev: GPUDevice) {}
  data(d: ArrayBufferView): GPUBuffer {
    const b = this.zeros(d.byteLength);
    this.dev.queue.writeBuffer(b, 0, d.buffer, d.byteOffset, d.byteLength);
    return b;
  }
  zeros(bytes: number): GPUBuffer {
    const b = this.dev.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    this.made.push(b);
    return b;
  }
  destroy(): void {
    for (const b of this.made) b.destroy();
  }
}

/** Runs `body` inside a validation scope; false when it threw or the device reported an error. */
async function checked(ctx: KernelContext, body: () => Promise<boolean>): Promise<boolean> {
  const dev = ctx.gpu.device;
  dev.pushErrorScope('validation');
  let ok = false;
  try {
    ok = await body();
  } catch {
    ok = false;
  }
  const err = await dev.popErrorScope().catch(() => null);
  return ok && !err;
}

/** Best wall time of `run` (submitted and waited for) over `reps` calls after a warm-up; the warm-up alone when slow. */
async function timeCalls(ctx: KernelContext, run: () => void, reps: number, cutoffMs: number): Promise<number> {
  const dev = ctx.gpu.device;
  const once = async () => {
    const t = performance.now();
    run();
    ctx.rec.submit();
    await dev.queue.onSubmittedWorkDone();
    return performance.now() - t;
  };
  let best = await once();
  if (best > cutoffMs) return best;
  for (let i = 0; i < reps; i++) best = Math.min(best, await once());
  return best;
}

/**
 * Checks each candidate against the CPU, times those that pass (the fastest so far sets the slow
 * cutoff), records each one's figures, and makes the fastest the probe's choice. A candidate that
 * fails its check, or throws while timed (e.g. a head size it refuses), goes into `failed`.
 */
async function timeCandidates(ctx: KernelContext, probe: FamilyProbe, candidates: { name: string; correct: () => Promise<boolean>; run: () => void }[], work: { bytes: number; flops?: number }): Promise<FamilyProbe> {
  let bestMs = Infinity;
  for (const { name, correct, run } of candidates) {
    if (!(await correct())) {
      probe.failed.push(name);
      continue;
    }
    const ms = await timeCalls(ctx, run, 2, SLOW_CUTOFF * bestMs).catch(() => NaN);
    if (Number.isNaN(ms)) {
      probe.failed.push(name);
      continue;
    }
    const perSecond = (x: number) => round(x / (ms / 1000) / 1e9);
    probe.timings[name] = { ms: round(ms), gbps: perSecond(work.bytes), ...(work.flops !== undefined ? { gflops: perSecond(work.flops) } : {}) };
    if (ms < bestMs) (bestMs = ms), (probe.choice = name);
  }
  return probe;
}

/** The q4 GEMV at M = 1 and M = 3, both schemes, K % 32 != 0, N not a multiple of a tile, bias and accumulate. */
async function q4GemvCorrect(ctx: KernelContext, name: string): Promise<boolean> {
  const bufs = new Buffers(ctx.gpu.device);
  try {
    return await checked(ctx, async () => {
      for (const [scheme, m, n, k] of [['q4', 1, 37, 172], ['q4-asym', 3, 21, 64]] as [QuantScheme, number, number, number][]) {
        const x = seeded(m * k, 3), w = seeded(n * k, 4), b = seeded(n, 5), y0 = seeded(m * n, 6);
        const { packed, info } = quantizeQ4(w, { scheme, cols: k });
        const f = new Float32Array(packed.buffer);
        const out = bufs.data(y0);
        matmulQ4(ctx, { out, x: bufs.data(x), w: bufs.data(packed), bias: bufs.data(b), m, n, k, accumulate: true, xOffset: 0, yOffset: 0 }, info, name);
        ctx.rec.submit();
        const y = new Float32Array(await readBuffer(ctx.gpu, out, m * n * 4));
        for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
          let acc = y0[i * n + j] + b[j];
          for (let t = 0; t < k; t++) {
            const q = (packed[j * info.rowWords + (t >> 3)] >>> (4 * (t & 7))) & 15;
            const s = f[info.scalesOffset + j * info.groups + (t >> 5)];
            const off = info.minsOffset ? f[info.minsOffset + j * info.groups + (t >> 5)] : -8 * s;
            acc += x[i * k + t] * (q * s + off);
          }
          if (!(Math.abs(acc - y[i * n + j]) <= 1e-4 * Math.max(1, Math.abs(acc)))) return false;
        }
      }
      return true;
    });
  } finally {
    bufs.destroy();
  }
}

/**
 * A q4 GEMM against the dequantized CPU product: M past one 64-row tile, M = 3, N below a tile,
 * K % 32 != 0, both schemes, bias and accumulate, and column gains (POP's deep K/V).
 */
async function q4GemmCorrect(ctx: KernelContext, name: string): Promise<boolean> {
  const bufs = new Buffers(ctx.gpu.device);
  try {
    return await checked(ctx, async () => {
      for (const [scheme, m, n, k, gainRows] of [['q4', 70, 37, 172, 0], ['q4-asym', 3, 70, 64, 0], ['q4', 5, 32, 72, 16]] as [QuantScheme, number, number, number, number][]) {
        const x = seeded(m * k, 3), w = seeded(n * k, 4), b = seeded(n, 5), y0 = seeded(m * n, 6);
        const gains = gainRows ? { values: seeded((n / gainRows) * k, 10), rows: gainRows } : undefined;
        const { packed, info } = quantizeQ4(w, { scheme, cols: k, gains });
        const wd = dequantizeQ4(packed, info);
        const out = bufs.data(y0);
        matmulQ4(ctx, { out, x: bufs.data(x), w: bufs.data(packed), bias: bufs.data(b), m, n, k, accumulate: true, xOffset: 0, yOffset: 0 }, info, name);
        ctx.rec.submit();
        const y = new Float32Array(await readBuffer(ctx.gpu, out, m * n * 4));
        if (!productMatches(y, y0, b, x, wd, m, n, k)) return false;
      }
      return true;
    });
  } finally {
    bufs.destroy();
  }
}

/** y == y0 + b + x · wᵀ within f32 accumulation (1e-4 normalized). */
function productMatches(y: Float32Array, y0: Float32Array, b: Float32Array, x: Float32Array, w: Float32Array, m: number, n: number, k: number): boolean {
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let acc = y0[i * n + j] + b[j];
    for (let t = 0; t < k; t++) acc += x[i * k + t] * w[j * k + t];
    if (!(Math.abs(acc - y[i * n + j]) <= 1e-4 * Math.max(1, Math.abs(acc)))) return false;
  }
  return true;
}

/** An f32 GEMM against the CPU product: M past a 64-row tile and M = 3, N below a tile, bias and accumulate. */
async function f32GemmCorrect(ctx: KernelContext, name: string): Promise<boolean> {
  const bufs = new Buffers(ctx.gpu.device);
  try {
    return await checked(ctx, async () => {
      for (const [m, n, k] of [[70, 37, 172], [3, 70, 64]]) {
        const x = seeded(m * k, 3), w = seeded(n * k, 4), b = seeded(n, 5), y0 = seeded(m * n, 6);
        const out = bufs.data(y0);
        matmul(ctx, { prefill: name, decode: name }, { out, x: bufs.data(x), w: bufs.data(w), bias: bufs.data(b), m, n, k, accumulate: true, xOffset: 0, yOffset: 0 }, name);
        ctx.rec.submit();
        const y = new Float32Array(await readBuffer(ctx.gpu, out, m * n * 4));
        if (!productMatches(y, y0, b, x, w, m, n, k)) return false;
      }
      return true;
    });
  } finally {
    bufs.destroy();
  }
}

/**
 * A challenger replaces the incumbent (the load-time probe's pick, or the family's default) only
 * when it is at least this much faster: the model probe times a capped chunk (128 rows) twice, and
 * on a loaded software adapter close variants swap places run to run (regblock vs regblock_quad
 * within 6% at 128 rows, while regblock_quad is ~1.4x faster at 512).
 */
const CHALLENGER_MARGIN = 0.9;

function keepIncumbent(probe: FamilyProbe, incumbent: string): FamilyProbe {
  const inc = probe.timings[incumbent]?.ms, best = probe.timings[probe.choice]?.ms;
  if (probe.choice !== incumbent && inc !== undefined && best !== undefined && best > CHALLENGER_MARGIN * inc) probe.choice = incumbent;
  return probe;
}

/**
 * The prefill GEMMs on the model's attention output projection [hidden, hidden] at `rows` rows
 * (a real layer shape that every model has, small enough to time at load on a software adapter).
 */
async function probeGemm(ctx: KernelContext, s: ModelKernelShapes, q4: boolean, incumbent?: string): Promise<FamilyProbe> {
  const m = s.rows, n = s.hidden, k = s.hidden;
  const defaultChoice = incumbent ?? (q4 ? 'regblock_q4' : 'regblock');
  const probe: FamilyProbe = { choice: defaultChoice, shape: `${m}x${n}x${k}${q4 ? ' q4' : ''}`, timings: {}, failed: [] };
  const bufs = new Buffers(ctx.gpu.device);
  try {
    const info = quantizeQ4(new Float32Array(n * k), { scheme: 'q4', cols: k }).info;
    const w = bufs.zeros(q4 ? info.words * 4 : n * k * 4), x = bufs.zeros(m * k * 4), y = bufs.zeros(m * n * 4);
    const bytes = (q4 ? info.words * 4 : n * k * 4) + m * k * 4;
    const names = q4 ? Q4_PREFILL_VARIANTS : Object.entries(MATMUL_VARIANTS).filter(([, v]) => !v.decode && (!v.subgroups || ctx.gpu.features.subgroups)).map(([name]) => name);
    const args = { out: y, x, w, bias: null, m, n, k, accumulate: false, xOffset: 0, yOffset: 0 };
    const candidates = names.map((name) => ({
      name,
      correct: () => (q4 ? q4GemmCorrect(ctx, name) : f32GemmCorrect(ctx, name)),
      run: q4 ? () => matmulQ4(ctx, args, info, name) : () => matmul(ctx, { prefill: name, decode: name }, args, name),
    }));
    return keepIncumbent(await timeCandidates(ctx, probe, candidates, { bytes, flops: 2 * m * n * k }), defaultChoice);
  } finally {
    bufs.destroy();
  }
}

async function probeMatvecQ4(ctx: KernelContext, s: ModelKernelShapes): Promise<FamilyProbe> {
  // The layer's two widest GEMVs: gate|up [2 * intermediate, hidden] and down [hidden, intermediate].
  const shapes: [number, number][] = [[2 * s.intermediate, s.hidden], [s.hidden, s.intermediate]];
  const probe: FamilyProbe = { choice: 'matvec_q4', shape: shapes.map(([n, k]) => `${n}x${k}`).join(' + ') + ' q4, M = 1', timings: {}, failed: [] };
  const bufs = new Buffers(ctx.gpu.device);
  try {
    // Zero weights time the same as real ones (the reads and the math do not depend on values).
    const ops = shapes.map(([n, k]) => {
      const info = quantizeQ4(new Float32Array(4 * k), { scheme: 'q4', cols: k }).info;
      const rowWords = info.rowWords, groups = info.groups;
      const full = { ...info, rows: n, scalesOffset: n * rowWords, words: n * rowWords + n * groups };
      return { n, k, info: full, w: bufs.zeros(full.words * 4), x: bufs.zeros(k * 4), y: bufs.zeros(n * 4) };
    });
    const bytes = ops.reduce((a, o) => a + o.info.words * 4 + o.k * 4, 0);
    const candidates = q4DecodeCandidates(ctx.gpu).map((name) => ({
      name,
      correct: () => q4GemvCorrect(ctx, name),
      run: () => { for (const o of ops) matmulQ4(ctx, { out: o.y, x: o.x, w: o.w, bias: null, m: 1, n: o.n, k: o.k, accumulate: false, xOffset: 0, yOffset: 0 }, o.info, name); },
    }));
    return await timeCandidates(ctx, probe, candidates, { bytes });
  } finally {
    bufs.destroy();
  }
}

/** Dequantized W [n, k] of a packed q4 tensor (the probe's CPU check). */
function dequant(packed: Uint32Array, info: QuantInfo, n: number, k: number): Float64Array {
  const f = new Float32Array(packed.buffer), w = new Float64Array(n * k);
  for (let j = 0; j < n; j++) for (let t = 0; t < k; t++) {
    const q = (packed[j * info.rowWords + (t >> 3)] >>> (4 * (t & 7))) & 15;
    const s = f[info.scalesOffset + j * info.groups + (t >> 5)];
    w[j * k + t] = q * s + (info.minsOffset ? f[info.minsOffset + j * info.groups + (t >> 5)] : -8 * s);
  }
  return w;
}

const siluCpu = (x: number) => x / (1 + Math.exp(-x));
const geluCpu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

/**
 * A fused GEMV (RMSNorm or GLU folded into its load) against the CPU on odd shapes: M = 1 and 3,
 * both schemes, K % 32 != 0, N not a multiple of the 16-row workgroup, gain / bias / accumulate.
 */
async function fusedCorrect(ctx: KernelContext, kind: 'norm' | 'glu', act: Activation): Promise<boolean> {
  const bufs = new Buffers(ctx.gpu.device);
  try {
    return await checked(ctx, async () => {
      for (const [scheme, m, n, k] of [['q4', 1, 37, 172], ['q4-asym', 3, 21, 64]] as [QuantScheme, number, number, number][]) {
        const xk = kind === 'glu' ? 2 * k : k;
        const x = seeded(m * xk, 3), w = seeded(n * k, 4), b = seeded(n, 5), y0 = seeded(m * n, 6), gain = seeded(k, 8);
        const { packed, info } = quantizeQ4(w, { scheme, cols: k });
        const wd = dequant(packed, info, n, k);
        const out = bufs.data(y0);
        const withGain = m === 1;
        const args = { out, x: bufs.data(x), w: bufs.data(packed), bias: kind === 'norm' ? bufs.data(b) : null, m, n, k, accumulate: kind === 'glu', xOffset: 0, yOffset: 0 };
        if (kind === 'norm') matvecQ4Norm(ctx, args, info, withGain ? bufs.data(gain) : null, 1e-5);
        else matvecQ4Glu(ctx, args, info, act);
        ctx.rec.submit();
        const y = new Float32Array(await readBuffer(ctx.gpu, out, m * n * 4));
        for (let i = 0; i < m; i++) {
          const xin = new Float64Array(k);
          if (kind === 'norm') {
            let ss = 0;
            for (let t = 0; t < k; t++) ss += x[i * k + t] ** 2;
            const inv = 1 / Math.sqrt(ss / k + 1e-5);
            for (let t = 0; t < k; t++) xin[t] = x[i * k + t] * inv * (withGain ? gain[t] : 1);
          } else {
            for (let t = 0; t < k; t++) xin[t] = (act === 'silu' ? siluCpu : geluCpu)(x[i * xk + t]) * x[i * xk + k + t];
          }
          for (let j = 0; j < n; j++) {
            let acc = kind === 'norm' ? b[j] : y0[i * n + j];
            for (let t = 0; t < k; t++) acc += xin[t] * wd[j * k + t];
            if (!(Math.abs(acc - y[i * n + j]) <= 1e-4 * Math.max(1, Math.abs(acc)))) return false;
          }
        }
      }
      return true;
    });
  } finally {
    bufs.destroy();
  }
}

/**
 * RMSNorm + GEMV (gate|up [2 * intermediate, hidden]) or GLU + GEMV (down [hidden, intermediate])
 * at M = 1: the separate passes (the norm / GLU kernel, then the chosen q4 GEMV) against the fused kernel.
 */
async function probeFused(ctx: KernelContext, s: ModelKernelShapes, kind: 'norm' | 'glu', matvecQ4: string): Promise<FamilyProbe> {
  const act = s.activation ?? 'silu';
  const [n, k] = kind === 'norm' ? [2 * s.intermediate, s.hidden] : [s.hidden, s.intermediate];
  const fused = kind === 'norm' ? 'matvec_q4_norm' : 'matvec_q4_glu';
  const probe: FamilyProbe = { choice: 'separate', shape: `${kind === 'norm' ? 'rms_norm' : `glu (${act})`} + ${n}x${k} q4, M = 1 (separate: ${matvecQ4})`, timings: {}, failed: [] };
  const bufs = new Buffers(ctx.gpu.device);
  try {
    const info0 = quantizeQ4(new Float32Array(4 * k), { scheme: 'q4', cols: k }).info;
    const info = { ...info0, rows: n, scalesOffset: n * info0.rowWords, words: n * info0.rowWords + n * info0.groups };
    const xk = kind === 'glu' ? 2 * k : k;
    const w = bufs.zeros(info.words * 4), x = bufs.zeros(xk * 4), mid = bufs.zeros(k * 4), y = bufs.zeros(n * 4), gain = bufs.zeros(k * 4);
    // Bytes the fused kernel must read: the weights and its input row (plus the gain).
    const bytes = info.words * 4 + xk * 4 + (kind === 'norm' ? k * 4 : 0);
    const args = (xb: GPUBuffer) => ({ out: y, x: xb, w, bias: null, m: 1, n, k, accumulate: false, xOffset: 0, yOffset: 0 });
    const runs: Record<string, () => void> = {
      separate: () => {
        if (kind === 'norm') rmsNorm(ctx, mid, x, gain, 1, k, 1e-5);
        else glu(ctx, mid, x, 1, k, act);
        matmulQ4(ctx, args(mid), info, matvecQ4);
      },
      [fused]: () => (kind === 'norm' ? matvecQ4Norm(ctx, args(x), info, gain, 1e-5) : matvecQ4Glu(ctx, args(x), info, act)),
    };
    const candidates = Object.entries(runs).map(([name, run]) => ({ name, run, correct: async () => name !== fused || fusedCorrect(ctx, kind, act) }));
    return await timeCandidates(ctx, probe, candidates, { bytes });
  } finally {
    bufs.destroy();
  }
}

/** CPU attention of one query row over keys [0, keys) of a token-major [keys, kvHeads, headDim] cache. */
function cpuDecodeAttention(q: Float32Array, k: Float32Array, v: Float32Array, keys: number, heads: number, kvHeads: number, hd: number, scale: number): Float32Array {
  return cpuCausalAttention(q, k, v, 1, keys - 1, heads, kvHeads, hd, scale, 0);
}

/** CPU causal attention of `rows` query rows at positions startPos.. (rows of heads * hd) over a token-major cache, optional window. */
function cpuCausalAttention(q: Float32Array, k: Float32Array, v: Float32Array, rows: number, startPos: number, heads: number, kvHeads: number, hd: number, scale: number, window: number): Float32Array {
  const out = new Float32Array(rows * heads * hd);
  for (let r = 0; r < rows; r++) for (let h = 0; h < heads; h++) {
    const pos = startPos + r, t0 = window > 0 ? Math.max(0, pos + 1 - window) : 0;
    const kvh = Math.floor(h / (heads / kvHeads)), o = (r * heads + h) * hd;
    const sc = new Float64Array(pos + 1);
    let mx = -Infinity;
    for (let t = t0; t <= pos; t++) {
      let s = 0;
      for (let d = 0; d < hd; d++) s += q[o + d] * k[(t * kvHeads + kvh) * hd + d];
      sc[t] = s * scale;
      mx = Math.max(mx, sc[t]);
    }
    let l = 0;
    for (let t = t0; t <= pos; t++) l += (sc[t] = Math.exp(sc[t] - mx));
    for (let t = t0; t <= pos; t++) for (let d = 0; d < hd; d++) out[o + d] += (sc[t] / l) * v[(t * kvHeads + kvh) * hd + d];
  }
  return out;
}

/** A cache of `keys` positions in pages of 16 (identity page table) and one query row at the last position. */
function decodeCase(bufs: Buffers, keys: number, heads: number, kvHeads: number, hd: number, withData: boolean) {
  return attentionCase(bufs, 1, keys, heads, kvHeads, hd, 0, withData);
}

/** A cache of `keys` positions in pages of 16 (identity page table) and `rows` query rows at the last positions. */
function attentionCase(bufs: Buffers, rows: number, keys: number, heads: number, kvHeads: number, hd: number, window: number, withData: boolean) {
  const pageSize = 16, pages = Math.ceil(keys / pageSize), n = pages * pageSize * kvHeads * hd;
  const k = withData ? seeded(n, 7) : null, v = withData ? seeded(n, 8) : null, q = withData ? seeded(rows * heads * hd, 9) : null;
  return {
    k, v, q,
    args: {
      out: bufs.zeros(rows * heads * hd * 4), q: q ? bufs.data(q) : bufs.zeros(rows * heads * hd * 4), qStride: heads * hd,
      k: k ? bufs.data(k) : bufs.zeros(n * 4), v: v ? bufs.data(v) : bufs.zeros(n * 4),
      pageTable: bufs.data(Uint32Array.from({ length: pages }, (_, i) => i)), pageSize,
      rows, startPos: keys - rows, shape: { numHeads: heads, numKvHeads: kvHeads, headDim: hd, scale: 1 / Math.sqrt(hd), window },
    },
  };
}

/**
 * Many rows on the model's heads (so the check compiles what the timing runs): 37 prompt rows
 * after 20 cached (two flash workgroups, a GEMM-path block boundary), causal, and with a window of 24.
 */
async function prefillAttentionCorrect(ctx: KernelContext, name: AttentionVariant, scratch: AttentionScratch, s: ModelKernelShapes): Promise<boolean> {
  const bufs = new Buffers(ctx.gpu.device);
  try {
    return await checked(ctx, async () => {
      for (const window of [0, 24]) {
        const rows = 37, keys = 57, heads = s.numHeads, kvHeads = s.numKvHeads, hd = s.headDim;
        const c = attentionCase(bufs, rows, keys, heads, kvHeads, hd, window, true);
        attention(ctx, c.args, { variants: { prefill: 'regblock', decode: 'matvec' }, scratch }, name);
        ctx.rec.submit();
        const got = new Float32Array(await readBuffer(ctx.gpu, c.args.out, rows * heads * hd * 4));
        const want = cpuCausalAttention(c.q!, c.k!, c.v!, rows, keys - rows, heads, kvHeads, hd, c.args.shape.scale, window);
        if (!want.every((w, i) => Math.abs(w - got[i]) <= 1e-4 * Math.max(1, Math.abs(w)))) return false;
      }
      return true;
    });
  } finally {
    bufs.destroy();
  }
}

/** Prefill attention on the model's heads: `rows` prompt rows from position 0 (causal). */
async function probeAttentionPrefill(ctx: KernelContext, s: ModelKernelShapes, scratch: AttentionScratch, gemmVariant: string): Promise<FamilyProbe> {
  const rows = s.rows;
  const defaultChoice = ctx.gpu.isSoftware ? 'gemm' : 'rows8';
  const probe: FamilyProbe = { choice: defaultChoice, shape: `${s.numHeads}/${s.numKvHeads} heads x ${s.headDim}, ${rows} rows from position 0`, timings: {}, failed: [] };
  const bufs = new Buffers(ctx.gpu.device);
  try {
    const c = attentionCase(bufs, rows, rows, s.numHeads, s.numKvHeads, s.headDim, 0, false);
    const bytes = 2 * rows * s.numKvHeads * s.headDim * 4 + 2 * rows * s.numHeads * s.headDim * 4;
    const flops = 4 * s.numHeads * s.headDim * (rows * (rows + 1)) / 2;
    const candidates = PREFILL_ATTENTION_VARIANTS.map((name) => ({
      name,
      correct: () => prefillAttentionCorrect(ctx, name, scratch, s),
      run: () => attention(ctx, c.args, { variants: { prefill: gemmVariant, decode: 'matvec' }, scratch }, name),
    }));
    return keepIncumbent(await timeCandidates(ctx, probe, candidates, { bytes, flops }), defaultChoice);
  } finally {
    bufs.destroy();
  }
}

async function decodeAttentionCorrect(ctx: KernelContext, name: AttentionVariant, scratch: AttentionScratch): Promise<boolean> {
  const bufs = new Buffers(ctx.gpu.device);
  try {
    return await checked(ctx, async () => {
      // 300 keys: two flash-decoding chunks, the second partial; GQA 6/2, headDim 64.
      const keys = 300, heads = 6, kvHeads = 2, hd = 64;
      const c = decodeCase(bufs, keys, heads, kvHeads, hd, true);
      attention(ctx, c.args, { variants: { prefill: 'regblock', decode: 'matvec' }, scratch }, name);
      ctx.rec.submit();
      const got = new Float32Array(await readBuffer(ctx.gpu, c.args.out, heads * hd * 4));
      const want = cpuDecodeAttention(c.q!, c.k!, c.v!, keys, heads, kvHeads, hd, c.args.shape.scale);
      return want.every((w, i) => Math.abs(w - got[i]) <= 1e-4 * Math.max(1, Math.abs(w)));
    });
  } finally {
    bufs.destroy();
  }
}

async function probeAttentionDecode(ctx: KernelContext, s: ModelKernelShapes, scratch: AttentionScratch): Promise<FamilyProbe> {
  const probe: FamilyProbe = { choice: 'split_keys', shape: `${s.numHeads}/${s.numKvHeads} heads x ${s.headDim}, ${s.keys} keys, one row`, timings: {}, failed: [] };
  const bufs = new Buffers(ctx.gpu.device);
  try {
    const c = decodeCase(bufs, s.keys, s.numHeads, s.numKvHeads, s.headDim, false);
    const bytes = 2 * s.keys * s.numKvHeads * s.headDim * 4;
    // A head size the kernels refuse (over 256) throws while timed: the candidate is dropped.
    const candidates = DECODE_ATTENTION_VARIANTS.map((name) => ({
      name,
      correct: () => decodeAttentionCorrect(ctx, name, scratch),
      run: () => attention(ctx, c.args, { variants: { prefill: 'regblock', decode: 'matvec' }, scratch }, name),
    }));
    return await timeCandidates(ctx, probe, candidates, { bytes });
  } finally {
    bufs.destroy();
  }
}

const round = (v: number) => Number(v.toPrecision(4));

/** The kernel choices for a model on this adapter: cached by adapter and shape, else probed. */
/** `prefill` (default true): also time prefill's GEMMs and attention; false keeps their defaults. */
export async function chooseModelKernels(ctx: KernelContext, given: ModelKernelShapes, scratch: AttentionScratch, opts: { useCache?: boolean; prefill?: boolean; incumbentPrefill?: string } = {}): Promise<{ choice: KernelChoice; result: KernelProbeResult }> {
  const prefill = opts.prefill !== false;
  // One cache key whether or not the caller names the default activation.
  const shapes = { ...given, activation: given.activation ?? 'silu' };
  // The shape's fields in name order: the same key whatever order the caller built them in.
  const key = `pop-llm:kernels:v${CACHE_VERSION}:${ctx.gpu.identity.key}:${JSON.stringify(Object.fromEntries(Object.entries(shapes).sort(([a], [b]) => (a < b ? -1 : 1))))}${prefill ? ':prefill' : ''}`;
  const useCache = opts.useCache !== false && typeof indexedDB !== 'undefined';
  const valid = (r: KernelProbeResult) => DECODE_ATTENTION_VARIANTS.includes(r.attentionDecode?.choice as AttentionVariant)
    && (!shapes.quantized || (!!MATMUL_Q4_VARIANTS[r.matvecQ4?.choice ?? ''] && ['separate', 'matvec_q4_norm'].includes(r.normMatvec?.choice ?? '') && ['separate', 'matvec_q4_glu'].includes(r.gluMatvec?.choice ?? '')))
    && (!prefill || (PREFILL_ATTENTION_VARIANTS.includes(r.attentionPrefill?.choice as AttentionVariant) && !!MATMUL_VARIANTS[r.matmulPrefill?.choice ?? '']
      && (!shapes.quantized || !!MATMUL_Q4_VARIANTS[r.matmulQ4?.choice ?? ''])));
  let result: KernelProbeResult | undefined;
  if (useCache) {
    try {
      const hit = (await get(key)) as KernelProbeResult | undefined;
      if (hit && valid(hit)) result = { ...hit, cached: true };
    } catch {
      /* no IndexedDB (private mode, opaque origin): probe every time */
    }
  }
  if (!result) {
    const matvecQ4 = shapes.quantized ? await probeMatvecQ4(ctx, shapes) : undefined;
    result = {
      ...(matvecQ4 ? { matvecQ4, normMatvec: await probeFused(ctx, shapes, 'norm', matvecQ4.choice), gluMatvec: await probeFused(ctx, shapes, 'glu', matvecQ4.choice) } : {}),
      attentionDecode: await probeAttentionDecode(ctx, shapes, scratch),
      cached: false,
    };
    if (prefill) {
      result.matmulPrefill = await probeGemm(ctx, shapes, false, opts.incumbentPrefill);
      if (shapes.quantized) result.matmulQ4 = await probeGemm(ctx, shapes, true);
      result.attentionPrefill = await probeAttentionPrefill(ctx, shapes, scratch, result.matmulPrefill.choice);
    }
    if (useCache) await set(key, result).catch(() => undefined);
  }
  return {
    choice: {
      matvecQ4: result.matvecQ4?.choice ?? 'matvec_q4', matmulQ4: result.matmulQ4?.choice ?? 'regblock_q4',
      attentionDecode: result.attentionDecode.choice as AttentionVariant, attentionPrefill: (result.attentionPrefill?.choice as AttentionVariant) ?? null,
      matmulPrefill: result.matmulPrefill?.choice,
      normMatvec: (result.normMatvec?.choice ?? 'separate') as KernelChoice['normMatvec'], gluMatvec: (result.gluMatvec?.choice ?? 'separate') as KernelChoice['gluMatvec'],
    },
    result,
  };
}
