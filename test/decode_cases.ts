// Whole tiny models run in the page for the decode-memory work of issue 18: the f16 KV cache
// (GPU engine vs the CPU twin storing the same f16-rounded K/V) and the fused decode GEMVs
// (each forced through a whole model against the CPU twin). Spec files: test/kv_f16.spec.ts,
// test/decode_fusion.spec.ts.
import { resolveAutoDtype } from '../src/engine/create.ts';
import { acquireGpu } from '../src/gpu/device.ts';
import { GpuOps } from '../src/ops/gpu_ops.ts';
import { Engine, type EngineOptions } from '../src/engine/engine.ts';
import { engineMemory } from '../src/engine/stats.ts';
import { randomModelFiles, scaleConfig } from '../src/model/random_model.ts';
import { memorySource } from '../src/model/source.ts';
import { CpuOps } from '../src/reference/cpu_ops.ts';
import type { KernelChoice } from '../src/ops/kernel_probe.ts';
import { parsePopSetting } from '../src/engine/pop.ts';

export interface TinySpec {
  config: Record<string, any>;
  scale: Parameters<typeof scaleConfig>[1];
  pageSize: number;
  prefillChunk: number;
  seed?: number;
}

/** Worst |a - b| / max(1, max |b|) over the rows. */
function maxDiff(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((row, i) => {
    let d = 0, m = 0;
    for (let j = 0; j < row.length; j++) (d = Math.max(d, Math.abs(row[j] - b[i][j]))), (m = Math.max(m, Math.abs(b[i][j])));
    worst = Math.max(worst, row.length === b[i].length ? d / Math.max(1, m) : Infinity);
  });
  return worst;
}

/**
 * A GPU engine on its own device with the default kernels (SwiftShader's choices) and no
 * load-time probe: the cases force the choices they test, and a fresh page has no probe cache.
 */
async function gpuEngine(spec: TinySpec, opts: EngineOptions): Promise<Engine<GPUBuffer>> {
  const ops = new GpuOps(await acquireGpu(), { prefill: 'regblock', decode: 'matvec' }, spec.prefillChunk);
  return Engine.load(ops, sourceOf(spec), opts);
}

function sourceOf(spec: TinySpec) {
  return memorySource(randomModelFiles(scaleConfig(spec.config, spec.scale), { seed: spec.seed ?? 7 }));
}

export const decodeCases = {
  /**
   * f16 KV cache through a whole model: teacher-forced logits (prefill in chunks, decode, POP
   * off and exact: the deep K/V writes) of the GPU engine with kvDtype 'f16' against the CPU
   * twin with kvDtype 'f16' (which rounds K/V to f16 as it stores them), how far f16 storage
   * moved the CPU logits from f32 storage, the GPU engine's KV bytes against 2 bytes a value,
   * n = 2 greedy choices on the f16 GPU engine (the prompt's shared last page is copied on
   * write), and what 'auto' resolves to on this adapter.
   */
  async kvF16(spec: TinySpec, quantization: EngineOptions['quantization'], prompt: number[], continuation: number[]) {
    const source = sourceOf(spec);
    const base: EngineOptions = { prefillChunk: spec.prefillChunk, pageSize: spec.pageSize, quantization, contextWindow: 256 };
    const gpu16 = await gpuEngine(spec, { ...base, kvDtype: 'f16' });
    const cpu16 = await Engine.load(new CpuOps(), source, { ...base, kvDtype: 'f16' });
    const cpu32 = await Engine.load(new CpuOps(), source, { ...base, kvDtype: 'f32' });
    const out: Record<string, number> = {};
    for (const p of ['off', 'exact']) {
      const pop = parsePopSetting(p);
      const want = await cpu16.teacherForced(prompt, continuation, pop);
      out[`gpuF16VsCpuF16 ${p}`] = maxDiff(await gpu16.teacherForced(prompt, continuation, pop), want);
      out[`cpuF16VsCpuF32 ${p}`] = maxDiff(want, await cpu32.teacherForced(prompt, continuation, pop));
    }
    const copied0 = gpu16.cache.copiedPages;
    const n2 = await gpu16.generate(prompt.slice(0, 13), { maxTokens: 6, temperature: 0, ignoreEos: true, n: 2 });
    const alone = await cpu16.generate(prompt.slice(0, 13), { maxTokens: 6, temperature: 0, ignoreEos: true });
    const gpu = (gpu16.ops as GpuOps).gpu, c = gpu16.config, slots = gpu16.cache.allocator.numPages * spec.pageSize;
    const result = {
      diffs: out,
      kvBytes: engineMemory(gpu16).kvBytes, kvBytesAt2: c.numLayers * 2 * slots * c.numKvHeads * c.headDim * 2,
      dtypes: { f16: gpu16.cache.dtype, cpu: cpu16.cache.dtype, auto: resolveAutoDtype(undefined, gpu.features.shaderF16), forcedF32: resolveAutoDtype('f32', gpu.features.shaderF16) },
      adapterShaderF16: gpu.features.shaderF16,
      choices: n2.choices!.map((c) => c.ids), cpuAlone: alone.ids, copied: gpu16.cache.copiedPages - copied0,
    };
    gpu.destroy();
    return result;
  },

  /**
   * Each kernel choice forced in turn through a whole quantized model (prefill in chunks, the
   * last prompt row alone past POP's keep, decode): worst normalized difference of the
   * teacher-forced logits from the CPU twin's.
   */
  async choicesVsCpu(spec: TinySpec, quantization: EngineOptions['quantization'], prompt: number[], continuation: number[], choices: Partial<KernelChoice>[]): Promise<{ errs: Record<string, number>; pipelines: string[] }> {
    const source = sourceOf(spec);
    const base: EngineOptions = { prefillChunk: spec.prefillChunk, pageSize: spec.pageSize, quantization, contextWindow: 256 };
    const gpu = await gpuEngine(spec, base);
    const cpu = await Engine.load(new CpuOps(), source, base);
    const ops = gpu.ops as GpuOps, before = ops.kernelChoice;
    const out: Record<string, number> = {};
    try {
      for (const pop of ['exact']) {
        const want = await cpu.teacherForced(prompt, continuation, parsePopSetting(pop));
        for (const ch of choices) {
          ops.kernelChoice = { ...before, ...ch };
          out[`${JSON.stringify(ch)} pop ${pop}`] = maxDiff(await gpu.teacherForced(prompt, continuation, parsePopSetting(pop)), want);
        }
      }
    } finally {
      ops.kernelChoice = before;
    }
    // A fresh device ran no probe: every pipeline it compiled was used by these runs.
    const pipelines = ops.ctx.pipelines.keys();
    ops.gpu.destroy();
    return { errs: out, pipelines };
  },
};
