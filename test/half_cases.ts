// f16 weights end to end, run in the page (test/f16.spec.ts): the GPU engine loaded with
// weightDtype 'f16' against the CPU engine loaded the same way (CpuOps keeps the f16-rounded
// weights: the values the f16 storage kernels compute with), POP and 'auto'.
import { createGpuEngine, describeGpuEngine } from '../src/engine/create.ts';
import { Engine, type EngineOptions } from '../src/engine/engine.ts';
import type { PopSetting } from '../src/engine/pop.ts';
import { randomModelFiles, scaleConfig } from '../src/model/random_model.ts';
import { memorySource, urlSource, type ModelSource } from '../src/model/source.ts';
import { CpuOps } from '../src/reference/cpu_ops.ts';
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
};
