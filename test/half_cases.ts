// f16 weights end to end, run in the page (test/f16.spec.ts): the GPU engine loaded with
// weightDtype 'f16' against the CPU engine loaded the same way (CpuOps keeps the f16-rounded
// weights: the values the f16 storage kernels compute with), POP, 'auto', and speeds.
import { createGpuEngine, describeGpuEngine } from '../src/engine/create.ts';
import { Engine, type EngineOptions } from '../src/engine/engine.ts';
import type { PopSetting } from '../src/engine/pop.ts';
import { randomModelFiles, scaleConfig } from '../src/model/random_model.ts';
import { memorySource, urlSource, type ModelSource } from '../src/model/source.ts';
import { CpuOps } from '../src/reference/cpu_ops.ts';
import { acquireGpu } from '../src/gpu/device.ts';
import { GpuOps } from '../src/ops/gpu_ops.ts';
import { matmul } from '../src/kernels/matmul.ts';
import { matmulF16 } from '../src/kernels/matmul_f16.ts';
import type { FixtureSpec } from './engine_cases.ts';

type Dtype = NonNullable<EngineOptions['weightDtype']>;
const engines = new Map<string, { gpu: Engine<GPUBuffer>; cpu: Engine<Float32Array> | null }>();

function sourceOf(spec: FixtureSpec): ModelSource {
  return spec.url ? urlSource(spec.url) : memorySource(randomModelFiles(spec.scale ? scaleConfig(spec.config!, spec.scale) : spec.config!, { seed: spec.seed ?? 7 }));
}

/** A GPU engine (f32 math over f16 storage: the tested kernels) and, with `cpu`, the CpuOps engine with the same weightDtype. */
async function open(spec: FixtureSpec, weightDtype: Dtype, cpu = true): Promise<{ gpu: Engine<GPUBuffer>; cpu: Engine<Float32Array> | null }> {
  const key = JSON.stringify([spec, weightDtype, cpu]);
  let e = engines.get(key);
  if (e) return e;
  const source = sourceOf(spec);
  const opts = { prefillChunk: spec.prefillChunk, pageSize: spec.pageSize, weightDtype };
  const maxBindingBytes = (spec as { maxBindingBytes?: number }).maxBindingBytes;
  const gpu = await createGpuEngine(source, { ...opts, shaderF16: false, maxBindingBytes });
  engines.set(key, (e = { gpu, cpu: cpu ? await Engine.load(new CpuOps(), source, opts) : null }));
  return e;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) (d = Math.max(d, Math.abs(a[i] - b[i]))), (m = Math.max(m, Math.abs(b[i])));
  return d / Math.max(1, m);
}

export const halfCases = {
  /** Teacher-forced logits, GPU f16 engine vs the CPU f16-rounded reference; worst normalized error per step. */
  async logitsVsCpu(spec: FixtureSpec, prompt: number[], continuation: number[], pop?: PopSetting): Promise<number[]> {
    const { gpu, cpu } = await open(spec, 'f16');
    const got = await gpu.teacherForced(prompt, continuation, pop);
    const want = await cpu!.teacherForced(prompt, continuation, pop);
    return got.map((g, i) => maxDiff(g, want[i]));
  },
  /** Greedy ids and keep from the GPU engine with this weightDtype. */
  async generate(spec: FixtureSpec, weightDtype: Dtype, prompt: number[], maxTokens: number, pop?: PopSetting): Promise<{ ids: number[]; keep: number }> {
    const { gpu } = await open(spec, weightDtype, false);
    const r = await gpu.generate(prompt, { maxTokens, pop, ignoreEos: true });
    return { ids: r.ids, keep: r.stats.keep };
  },
  /** What describeGpuEngine reports, and the weight buffers' bytes. */
  async describe(spec: FixtureSpec, weightDtype: Dtype): Promise<Record<string, unknown>> {
    const { gpu } = await open(spec, weightDtype, false);
    const d = describeGpuEngine(gpu);
    const w = gpu.weights;
    const all = [w.embed, w.finalNorm, w.lmHead, w.deepKv, w.deepKvBias, ...w.layers.flatMap((l) => Object.values(l))];
    const weightBytes = [...new Set(all.filter((t): t is GPUBuffer => !!t && typeof t === 'object'))].reduce((a, t) => a + t.size, 0);
    return { weightDtype: d.weightDtype, f16Arithmetic: d.f16Arithmetic, variants: d.variants, shaderF16: (d.features as { shaderF16: boolean }).shaderF16, weightBytes };
  },
  /**
   * Speeds on this adapter (reported, not asserted): GEMM GFLOP/s and GEMV weight GB/s, f32 vs
   * f16 storage, best of `rounds` interleaved.
   */
  async kernelSpeeds(shapes: [number, number, number][], rounds = 5): Promise<Record<string, string>> {
    const g = new GpuOps(await acquireGpu(), { prefill: 'regblock', decode: 'matvec' }, 16);
    await g.probeVariants({ useCache: false });
    const rand = (n: number) => { const a = new Float32Array(n); let s = 1; for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; a[i] = s / 2 ** 31 - 1; } return a; };
    const out: Record<string, string> = { probe: `${g.matmulVariants.prefill} / ${g.matmulVariants.decode}` };
    for (const [m, n, k] of shapes) {
      const x = g.upload('x', rand(m * k)), y = g.alloc('y', m * n), wf = rand(n * k);
      const w32 = g.upload('w', wf), w16 = g.upload('w16', wf, { half: true });
      const args = (w: GPUBuffer) => ({ out: y, x, w, bias: null, m, n, k, accumulate: false, xOffset: 0, yOffset: 0 });
      const variants = m === 1 ? [['matvec', 'matvec_f16w'], ['matvec_wg', 'matvec_wg_f16w']] : [['regblock', 'regblock_f16w'], ['tiled', 'tiled_f16w']];
      const runs: [string, () => void, number][] = variants.flatMap(([f32, f16]) => [
        [f32, () => matmul(g.ctx, g.matmulVariants, args(w32), f32), n * k * 4],
        [f16, () => matmulF16(g.ctx, g.matmulVariants, args(w16), g.halfInfo(w16)!, false, f16), n * k * 2],
      ] as [string, () => void, number][]);
      const reps = m === 1 ? Math.max(2, Math.round(2e7 / (n * k))) : 1;
      const best = runs.map(() => Infinity);
      for (const [, r] of runs) r();
      await g.sync();
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < runs.length; i++) {
          const t0 = performance.now();
          for (let j = 0; j < reps; j++) runs[i][1]();
          await g.sync();
          best[i] = Math.min(best[i], (performance.now() - t0) / reps);
        }
      }
      runs.forEach(([name, , bytes], i) => {
        const ms = best[i];
        out[`${m}x${n}x${k} ${name}`] = `${ms.toFixed(2)} ms, ${((2 * m * n * k) / ms / 1e6).toFixed(2)} GFLOP/s` + (m === 1 ? `, ${(bytes / ms / 1e6).toFixed(2)} GB/s weights` : '') + (i % 2 ? `, x${(best[i - 1] / ms).toFixed(2)} vs f32` : '');
      });
      for (const b of [x, y, w32, w16]) g.free(b);
    }
    g.destroy();
    return out;
  },
  /** Decode / prefill tok/s of a random-weight model, f32 vs f16 storage, loaded together and run in turns. */
  async engineSpeeds(config: Record<string, any>, rounds = 3): Promise<Record<string, unknown>> {
    const files = randomModelFiles(config, { seed: 3, dtype: 'BF16' });
    const prompt = Array.from({ length: 64 }, (_, i) => 3 + ((i * 7919) % 40000));
    const setups: [string, Dtype][] = [['f32', 'f32'], ['f16', 'f16'], ['auto', 'auto']];
    const list: Engine<GPUBuffer>[] = [];
    const out: Record<string, any> = {};
    for (const [label, weightDtype] of setups) {
      const e = await createGpuEngine(memorySource(files), { contextWindow: 256, weightDtype });
      list.push(e);
      const d = describeGpuEngine(e);
      out[label] = { decodeTokS: 0, prefillTokS: 0, weightDtype: d.weightDtype, variants: d.variants };
    }
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < list.length; i++) {
        const r = await list[i].generate(prompt, { maxTokens: 17, ignoreEos: true, pop: 'off' });
        const o = out[setups[i][0]];
        o.decodeTokS = Math.max(o.decodeTokS, +r.stats.decodeTokensPerS.toFixed(2));
        o.prefillTokS = Math.max(o.prefillTokS, +r.stats.prefillTokensPerS.toFixed(1));
      }
    }
    list.forEach((e, i) => {
      const w = e.weights;
      const all = [w.embed, w.finalNorm, w.lmHead, w.deepKv, w.deepKvBias, ...w.layers.flatMap((l) => Object.values(l))];
      out[setups[i][0]].weightMiB = +([...new Set(all.filter((t): t is GPUBuffer => !!t && typeof t === 'object'))]).reduce((a, t) => a + t.size / 2 ** 20, 0).toFixed(1);
      e.unload();
    });
    return out;
  },
};
