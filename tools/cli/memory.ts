// Memory figures of a load, for `pop-llm bench`: GPU bytes from the engine's buffer pool, and
// the page's JS heap sampled during the load. Chrome's performance.memory.usedJSHeapSize counts
// ArrayBuffer backing stores too (fetched files, f32 conversions, q4 packing: checked on
// Chromium 156), and is precise only with --enable-precise-memory-info (tools/node/browser.ts).
// Weights stream in (src/model/stream.ts) with short synchronous stretches (a row range
// converted and written) that a timer can miss: the sampler also samples on every
// GPUQueue.writeBuffer (each row-range upload, while its host copy is live) and on the
// loader's progress callback. The loader's own accounting (Engine.loadStats) comes with it.
import type { Engine } from '../../src/engine/engine.ts';
import { weightTensors } from '../../src/model/loader.ts';
import { globalRoleShape, layerRoleShape, layerRolesFor, perLayerInputShape } from '../../src/model/family.ts';
import type { GpuOps } from '../../src/ops/gpu_ops.ts';
import type { LoadMemory } from './protocol.ts';

const heapNow = (): number | null => (performance as any).memory?.usedJSHeapSize ?? null;

/**
 * The heap once garbage is gone: with --js-flags=--expose-gc, gc() twice across short waits
 * (ArrayBuffer backing stores are released after the collection, not within it).
 */
export async function settledHeap(): Promise<number | null> {
  const gc = (globalThis as any).gc as (() => void) | undefined;
  const sleep = () => new Promise((r) => setTimeout(r, 100));
  if (gc) for (let i = 0; i < 2; i++) gc(), await sleep();
  return heapNow();
}

/** Samples the JS heap while `fn` runs: timer, writeBuffer calls and `sample()` calls. */
export class HeapSampler {
  base: number | null = null;
  peak: number | null = null;
  samples = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private restore: (() => void) | null = null;

  readonly sample = (): void => {
    const v = heapNow();
    if (v === null) return;
    this.samples++;
    if (this.peak === null || v > this.peak) this.peak = v;
  };

  async start(): Promise<void> {
    this.base = await settledHeap(); // no garbage of an earlier model in the baseline
    this.sample();
    this.timer = setInterval(this.sample, 5);
    const proto = GPUQueue.prototype as any;
    const orig = proto.writeBuffer;
    const sample = this.sample;
    proto.writeBuffer = function (this: GPUQueue, ...args: unknown[]) {
      sample();
      return orig.apply(this, args);
    };
    this.restore = () => void (proto.writeBuffer = orig);
  }

  stop(): void {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.restore?.();
    this.timer = null;
    this.restore = null;
  }
}

/** Parameters of the text model, from the config's weight shapes (tied LM head counted once). */
export function textParams(e: Engine<unknown>): number {
  const c = e.config;
  const n = (s: number[]) => s.reduce((a, b) => a * b, 1);
  let p = n(globalRoleShape(c, 'embed')) + n(globalRoleShape(c, 'finalNorm')) + (c.tieWordEmbeddings ? 0 : n(globalRoleShape(c, 'lmHead')));
  for (let l = 0; l < c.numLayers; l++) for (const r of layerRolesFor(c, l)) p += n(layerRoleShape(c, r, l));
  if (c.perLayerInput) for (const r of ['pleEmbed', 'pleModelProj', 'pleProjNorm'] as const) p += n(perLayerInputShape(c, r));
  return p;
}

/** How a weight is stored on the GPU (its first row part when split): q4 / q4-asym / f16 / f32. */
function storageOf(ops: GpuOps, t: GPUBuffer): string {
  const b = ops.splitInfo(t)?.parts[0]?.buf ?? t;
  return ops.quantInfo(b)?.scheme ?? (ops.halfInfo(b) ? 'f16' : 'f32');
}

/** GPU figures after load plus the heap sampled during it; call once the load's host data is unreachable. */
export async function loadMemory(e: Engine<GPUBuffer>, heap: HeapSampler): Promise<LoadMemory> {
  const ops = e.ops as GpuOps;
  const bytes = (t: GPUBuffer) => (ops.bytesOf ? ops.bytesOf(t) : t.size);
  // A VLM's tower and connector are weights too (not scratch).
  const tensors = [...weightTensors(e.weights), ...(e.vision ? e.vision.tower.tensors() : [])];
  const weightBytes = tensors.reduce((a, t) => a + bytes(t), 0);
  const kvBytes = [...new Set(e.cache.layers)].reduce((a, l) => a + bytes(l.k) + bytes(l.v), 0); // KV-shared layers' storage once
  const params = textParams(e as Engine<unknown>);
  const after = await settledHeap();
  return {
    gpuBytes: ops.pool.bytesInUse, gpuPeakBytes: ops.pool.peakBytes, weightBytes, kvBytes, kvDtype: e.cache.dtype,
    deepKvBytes: e.weights.deepKv ? bytes(e.weights.deepKv) : 0,
    pleBytes: e.weights.ple ? Object.values(e.weights.ple).reduce((a, t) => a + bytes(t), 0) : 0,
    embedBytes: bytes(e.weights.embed),
    lmHeadBytes: e.weights.lmHead === e.weights.embed ? 0 : bytes(e.weights.lmHead),
    embedStorage: storageOf(ops, e.weights.embed),
    lmHeadStorage: e.weights.lmHead === e.weights.embed ? 'tied' : storageOf(ops, e.weights.lmHead),
    params, modelBytes: params * 4,
    jsHeapBaseBytes: heap.base, jsHeapPeakBytes: heap.peak, jsHeapAfterBytes: after, jsHeapSamples: heap.samples,
    loader: e.loadStats,
  };
}
