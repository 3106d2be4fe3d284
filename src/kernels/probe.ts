// Chooses kernel variants per adapter with a short timed probe at load: each candidate is
// checked against a CPU result on a small shape, then timed on a representative one. The
// choice is cached by adapter identity (idb-keyval in the browser), so later loads skip it.
import { get, set } from 'idb-keyval';
import type { GpuDevice } from '../gpu/device.ts';
import type { KernelContext } from './context.ts';
import { MATMUL_VARIANTS, matmul, type MatmulVariants } from './matmul.ts';
import { readBuffer } from '../gpu/recorder.ts';
import { GpuError } from '../errors.ts';

export interface ProbeResult extends MatmulVariants {
  /** Measured GFLOP/s per candidate, for stats. */
  timings: Record<string, number>;
  cached: boolean;
}

const CACHE_VERSION = 1;

function candidates(gpu: GpuDevice, decode: boolean): string[] {
  return Object.entries(MATMUL_VARIANTS).filter(([, v]) => v.decode === decode && !v.modelProbeOnly && (!v.subgroups || gpu.features.subgroups)).map(([k]) => k);
}

function seeded(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

async function correct(ctx: KernelContext, name: string): Promise<boolean> {
  const m = 5, n = 70, k = 12;
  const x = seeded(m * k, 1), w = seeded(n * k, 2);
  const dev = ctx.gpu.device;
  const mk = (d: Float32Array) => {
    const b = dev.createBuffer({ size: d.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    dev.queue.writeBuffer(b, 0, d.buffer, d.byteOffset, d.byteLength);
    return b;
  };
  const bx = mk(x), bw = mk(w), by = mk(new Float32Array(m * n));
  try {
    matmul(ctx, { prefill: name, decode: name }, { out: by, x: bx, w: bw, bias: null, m, n, k, accumulate: false, xOffset: 0, yOffset: 0 }, name);
    ctx.rec.submit();
    const y = new Float32Array(await readBuffer(ctx.gpu, by, m * n * 4));
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let t = 0; t < k; t++) acc += x[i * k + t] * w[j * k + t];
      if (!(Math.abs(acc - y[i * n + j]) <= 1e-4 * Math.max(1, Math.abs(acc)))) return false;
    }
    return true;
  } catch {
    return false;
  } finally {
    bx.destroy(), bw.destroy(), by.destroy();
  }
}

async function gflops(ctx: KernelContext, name: string, m: number, n: number, k: number): Promise<number> {
  const dev = ctx.gpu.device;
  const mk = (bytes: number) => dev.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE });
  const bx = mk(m * k * 4), bw = mk(n * k * 4), by = mk(m * n * 4);
  const run = () => matmul(ctx, { prefill: name, decode: name }, { out: by, x: bx, w: bw, bias: null, m, n, k, accumulate: false, xOffset: 0, yOffset: 0 }, name);
  try {
    run();
    ctx.rec.submit();
    await dev.queue.onSubmittedWorkDone();
    let best = Infinity;
    for (let i = 0; i < 2; i++) {
      const t = performance.now();
      run();
      ctx.rec.submit();
      await dev.queue.onSubmittedWorkDone();
      best = Math.min(best, performance.now() - t);
    }
    return (2 * m * n * k) / (best / 1000) / 1e9;
  } finally {
    bx.destroy(), bw.destroy(), by.destroy();
  }
}

async function pick(ctx: KernelContext, decode: boolean, timings: Record<string, number>): Promise<string> {
  // Representative shapes: a 128-token prefill GEMM, and a decode GEMV over a wide matrix.
  const [m, n, k] = decode ? [1, 4096, 512] : [128, 512, 512];
  let best = '', bestRate = -1;
  for (const name of candidates(ctx.gpu, decode)) {
    if (!(await correct(ctx, name))) continue;
    const rate = await gflops(ctx, name, m, n, k);
    timings[name] = Number(rate.toPrecision(3)); // 3 figures: a slow candidate still shows its rate
    if (rate > bestRate) (best = name), (bestRate = rate);
  }
  if (!best) throw new GpuError('no matmul variant passed its check on this adapter');
  return best;
}

export async function chooseMatmulVariants(ctx: KernelContext, opts: { useCache?: boolean } = {}): Promise<ProbeResult> {
  const key = `pop-llm:probe:v${CACHE_VERSION}:${ctx.gpu.identity.key}`;
  const useCache = opts.useCache !== false && typeof indexedDB !== 'undefined';
  if (useCache) {
    try {
      const hit = (await get(key)) as ProbeResult | undefined;
      if (hit && MATMUL_VARIANTS[hit.prefill] && MATMUL_VARIANTS[hit.decode]) return { ...hit, cached: true };
    } catch {
      /* no IndexedDB (private mode, opaque origin): probe every time */
    }
  }
  const timings: Record<string, number> = {};
  const prefill = await pick(ctx, false, timings);
  const decode = await pick(ctx, true, timings);
  const result: ProbeResult = { prefill, decode, timings, cached: false };
  if (useCache) await set(key, result).catch(() => undefined);
  return result;
}
