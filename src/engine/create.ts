// Builds an engine on WebGPU: acquire the device, probe kernel variants for this adapter,
// load the model. Used by the worker, the CLI page and the tests alike.
import { acquireGpu, type GpuDevice } from '../gpu/device.ts';
import { GpuOps } from '../ops/gpu_ops.ts';
import { halfComputeWorks } from '../kernels/matmul_f16.ts';
import { MATMUL_VARIANTS } from '../kernels/matmul.ts';
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
  /**
   * Time prefill's kernels (f32 and q4 GEMM, many-row attention) on the model's shapes at load.
   * Default: on real GPUs only; a software adapter keeps its known fastest (register-blocked
   * GEMMs, attention through the GEMM path) unless asked (`pop-llm bench` asks, to report them).
   */
  probePrefill?: boolean;
}

/**
 * 'auto' storage of the weights or the KV cache: f16 where the adapter has shader-f16 (real
 * GPUs), else f32 (SwiftShader). Other values pass unchanged, so Engine.load refuses a bad one
 * by name.
 */
export function resolveAutoDtype(dtype: 'auto' | 'f32' | 'f16' | undefined, shaderF16: boolean): 'f32' | 'f16' {
  return (dtype ?? 'auto') === 'auto' ? (shaderF16 ? 'f16' : 'f32') : (dtype as 'f32' | 'f16');
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
    const weightDtype = resolveAutoDtype(opts.weightDtype, gpu.features.shaderF16);
    // The f16-arithmetic kernels are compiled only here, on adapters that have the feature.
    if (weightDtype === 'f16' && opts.shaderF16 !== false && gpu.features.shaderF16) ops.halfCompute = await halfComputeWorks(ops.ctx);
    aborted('kernel compile');
    const source = typeof model === 'string' ? urlSource(model, { hubBase: opts.hubBase }) : model;
    const engine = await Engine.load(ops, source, { ...opts, weightDtype, kvDtype: resolveAutoDtype(opts.kvDtype, gpu.features.shaderF16) });
    // The per-model kernels (q4 GEMV, decode attention), timed on this model's shapes.
    const c = engine.config;
    await ops.probeModelKernels({ hidden: c.hiddenSize, intermediate: c.intermediateSize, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, context: engine.contextWindow, activation: c.activation }, { useCache: opts.probeCache, prefill: opts.probePrefill });
    aborted('kernel compile');
    return engine;
  } catch (e) {
    if (!opts.gpu) gpu.destroy(); // the engine's buffers go with it
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
    kvDtype: engine.cache.dtype,
    f16Arithmetic: ops.halfCompute,
    probe: ops.probe,
    kernelProbe: ops.kernelProbe,
    kernels: kernelReport(ops),
    gpuBytes: ops.pool.bytesInUse,
  };
}

/** One kernel family's choice on this adapter and every candidate's timing (stats, `pop-llm bench`). */
export interface KernelFamilyReport {
  family: string;
  choice: string;
  /** The shape the candidates were timed on. */
  shape: string;
  /** Per candidate: the measured figure in `unit`. */
  timings: Record<string, number>;
  unit: 'GFLOP/s' | 'GB/s';
  failed: string[];
  cached: boolean;
}

/** The probes' choices: matmul / GEMV (src/kernels/probe.ts); q4 GEMV and GEMM, f32 GEMM on the model's shape, decode and prefill attention (src/ops/kernel_probe.ts). */
export function kernelReport(ops: GpuOps): KernelFamilyReport[] {
  const out: KernelFamilyReport[] = [];
  const p = ops.probe;
  if (p) {
    const pick = (decode: boolean) => Object.fromEntries(Object.entries(p.timings).filter(([k]) => MATMUL_VARIANTS[k]?.decode === decode));
    out.push({ family: 'matmul (prefill GEMM, f32)', choice: p.prefill, shape: '128x512x512', timings: pick(false), unit: 'GFLOP/s', failed: [], cached: p.cached });
    out.push({ family: 'matvec (decode GEMV, f32)', choice: p.decode, shape: '1x4096x512', timings: pick(true), unit: 'GFLOP/s', failed: [], cached: p.cached });
  }
  const k = ops.kernelProbe;
  const gbps = (t: Record<string, { gbps: number }>) => Object.fromEntries(Object.entries(t).map(([n, v]) => [n, v.gbps]));
  if (k?.matvecQ4) out.push({ family: 'matvec_q4 (decode GEMV, int4)', choice: k.matvecQ4.choice, shape: k.matvecQ4.shape, timings: gbps(k.matvecQ4.timings), unit: 'GB/s', failed: k.matvecQ4.failed, cached: k.cached });
  if (k?.normMatvec) out.push({ family: 'rms_norm + matvec_q4 (decode, fused or apart)', choice: k.normMatvec.choice, shape: k.normMatvec.shape, timings: gbps(k.normMatvec.timings), unit: 'GB/s', failed: k.normMatvec.failed, cached: k.cached });
  if (k?.gluMatvec) out.push({ family: 'glu + matvec_q4 (decode down, fused or apart)', choice: k.gluMatvec.choice, shape: k.gluMatvec.shape, timings: gbps(k.gluMatvec.timings), unit: 'GB/s', failed: k.gluMatvec.failed, cached: k.cached });
  if (k) out.push({ family: 'attention (decode)', choice: k.attentionDecode.choice, shape: k.attentionDecode.shape, timings: gbps(k.attentionDecode.timings), unit: 'GB/s', failed: k.attentionDecode.failed, cached: k.cached });
  const gflops = (t: Record<string, { gflops?: number }>) => Object.fromEntries(Object.entries(t).map(([n, v]) => [n, v.gflops ?? 0]));
  if (k?.matmulPrefill) out.push({ family: 'matmul (prefill GEMM, f32, model shape)', choice: k.matmulPrefill.choice, shape: k.matmulPrefill.shape, timings: gflops(k.matmulPrefill.timings), unit: 'GFLOP/s', failed: k.matmulPrefill.failed, cached: k.cached });
  if (k?.matmulQ4) out.push({ family: 'matmul_q4 (prefill GEMM, int4)', choice: k.matmulQ4.choice, shape: k.matmulQ4.shape, timings: gflops(k.matmulQ4.timings), unit: 'GFLOP/s', failed: k.matmulQ4.failed, cached: k.cached });
  if (k?.attentionPrefill) out.push({ family: 'attention (prefill)', choice: k.attentionPrefill.choice, shape: k.attentionPrefill.shape, timings: gflops(k.attentionPrefill.timings), unit: 'GFLOP/s', failed: k.attentionPrefill.failed, cached: k.cached });
  return out;
}
