// What every kernel wrapper needs: the device, the pipeline cache, the recorder and a
// dummy buffer for optional bindings that a dispatch does not use.
import type { GpuDevice } from '../gpu/device.ts';
import type { PipelineCache, PipelineKey } from '../gpu/pipeline_cache.ts';
import type { Recorder } from '../gpu/recorder.ts';

export interface KernelContext {
  gpu: GpuDevice;
  pipelines: PipelineCache;
  rec: Recorder;
  /** 16 bytes, bound where an optional input (bias, gain) is absent. */
  dummy: GPUBuffer;
}

export function pipeline(ctx: KernelContext, key: PipelineKey, code: string, entryPoint = 'main'): GPUComputePipeline {
  return ctx.pipelines.get(entryPoint === 'main' ? key : { ...key, variant: `${key.variant ?? 'default'}:${entryPoint}` }, code, entryPoint);
}

/** Workgroups for one invocation per element, WG per workgroup, folded into 2D. */
export function elementGrid(ctx: KernelContext, elements: number, wg: number): [number, number] {
  return ctx.rec.grid(Math.ceil(elements / wg));
}
