// Memory figures a page can read through the worker (`engine.stats()`): every live GPU buffer
// in the realm (all devices; src/gpu/buffer_pool.ts liveGpuMemory), the loaded engine's own
// split into weights, KV cache and scratch, and the JS heap where the browser reports it.
// Fault tests use them to check that GPU memory is back to its baseline after each fault.
import { liveGpuMemory } from '../gpu/buffer_pool.ts';
import { liveDevices } from '../gpu/device.ts';
import { weightTensors } from '../model/loader.ts';
import type { GpuOps } from '../ops/gpu_ops.ts';
import type { Engine } from './engine.ts';

export interface EngineMemory {
  /** Bytes of the buffers this engine's device pool holds (weights + KV + scratch + the ops' own). */
  poolBytes: number;
  poolPeakBytes: number;
  weightBytes: number;
  kvBytes: number;
  /** poolBytes - weights - KV: run state, attention scratch, pooled scratch, the ops' fixed buffers. */
  scratchBytes: number;
}

export interface RuntimeStats {
  gpu: { liveBytes: number; liveBuffers: number; peakBytes: number; devices: number };
  /** null when no model is loaded. */
  engine: EngineMemory | null;
  /** performance.memory.usedJSHeapSize (Chromium), else null. */
  jsHeapBytes: number | null;
}

export function engineMemory(e: Engine<GPUBuffer>): EngineMemory {
  const ops = e.ops as GpuOps;
  const bytes = (t: GPUBuffer) => ops.bytesOf(t);
  const tensors: GPUBuffer[] = [...weightTensors(e.weights), ...(e.vision ? e.vision.tower.tensors() : [])];
  const weightBytes = tensors.reduce((a, t) => a + bytes(t), 0);
  const kvBytes = [...new Set(e.cache.layers)].reduce((a, l) => a + bytes(l.k) + bytes(l.v), 0); // KV-shared layers' storage once
  return { poolBytes: ops.pool.bytesInUse, poolPeakBytes: ops.pool.peakBytes, weightBytes, kvBytes, scratchBytes: ops.pool.bytesInUse - weightBytes - kvBytes };
}

export function runtimeStats(e: Engine<GPUBuffer> | null): RuntimeStats {
  const heap = (performance as { memory?: { usedJSHeapSize?: number } }).memory?.usedJSHeapSize ?? null;
  return {
    gpu: { liveBytes: liveGpuMemory.bytes, liveBuffers: liveGpuMemory.buffers, peakBytes: liveGpuMemory.peakBytes, devices: liveDevices.count },
    engine: e ? engineMemory(e) : null,
    jsHeapBytes: heap,
  };
}
