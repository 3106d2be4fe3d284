// Builds an engine on WebGPU: acquire the device, probe kernel variants for this adapter,
// load the model. Used by the worker, the CLI page and the tests alike.
import { acquireGpu, type GpuDevice } from '../gpu/device.ts';
import { GpuOps } from '../ops/gpu_ops.ts';
import { halfComputeWorks } from '../kernels/matmul_f16.ts';
import { urlSource, type ModelSource } from '../model/source.ts';
import { AbortError } from '../errors.ts';
import { Engine, type EngineOptions } from './engine.ts';

export interface GpuEngineOptions extends EngineOptions {
  /** Reuse the per-adapter probe result cached in IndexedDB (default true). */
  probeCache?: boolean;
  /** Base for Hub ids (tests point it at a local server). */
  hubBase?: string;
  gpu?: GpuDevice;
  /** Split tensors larger than this many bytes into row parts (default: the device's binding limit; tests). */
  maxBindingBytes?: number;
  /**
   * f16 weights: use f16 arithmetic where the adapter has shader-f16 (default true; it is
   * checked once at load and dropped if wrong). false: f32 math over f16 storage everywhere.
   */
  shaderF16?: boolean;
}

/** 'auto' weights: f16 where the adapter has shader-f16 (real GPUs), else f32 (SwiftShader). */
export function resolveWeightDtype(dtype: EngineOptions['weightDtype'], gpu: GpuDevice): 'f32' | 'f16' {
  return dtype === 'f16' || ((dtype ?? 'auto') === 'auto' && gpu.features.shaderF16) ? 'f16' : 'f32';
}

/**
 * A device of its own (unless `opts.gpu`), the kernel probe, then the load. `opts.signal` is
 * honoured between each (ABORTED, stage 'kernel compile'), and a load that fails or is
 * aborted destroys the device it acquired: nothing of it stays on the GPU.
 */
export async function createGpuEngine(model: string | ModelSource, opts: GpuEngineOptions = {}): Promise<Engine<GPUBuffer>> {
  const aborted = (stage: string) => {
    if (opts.signal?.aborted) throw new AbortError(stage);
  };
  aborted('load');
  const gpu = opts.gpu ?? (await acquireGpu());
  try {
    aborted('load');
    const maxRows = opts.prefillChunk ?? 512;
    const ops = new GpuOps(gpu, { prefill: 'regblock', decode: 'matvec' }, maxRows, { maxBindingBytes: opts.maxBindingBytes });
    await ops.probeVariants({ useCache: opts.probeCache });
    aborted('kernel compile');
    const weightDtype = resolveWeightDtype(opts.weightDtype, gpu);
    // The f16-arithmetic kernels are compiled only here, on adapters that have the feature.
    if (weightDtype === 'f16' && opts.shaderF16 !== false && gpu.features.shaderF16) ops.halfCompute = await halfComputeWorks(ops.ctx);
    aborted('kernel compile');
    const source = typeof model === 'string' ? urlSource(model, { hubBase: opts.hubBase }) : model;
    return await Engine.load(ops, source, { ...opts, weightDtype });
  } catch (e) {
    if (!opts.gpu) gpu.destroy();
    throw e;
  }
}

/** What the engine runs on, for stats: adapter, features and the chosen kernel variants. */
export function describeGpuEngine(engine: Engine<GPUBuffer>): Record<string, unknown> {
  const ops = engine.ops as GpuOps;
  return {
    adapter: ops.gpu.identity,
    features: ops.gpu.features,
    variants: ops.variants,
    quantization: engine.opts.quantization ?? 'none',
    weightDtype: engine.opts.weightDtype ?? 'f32',
    f16Arithmetic: ops.halfCompute,
    probe: ops.probe,
    gpuBytes: ops.pool.bytesInUse,
  };
}
