// Records kernel dispatches into one command encoder and one compute pass per submit.
// Uniform parameters go into a single arena buffer (256-byte slots) written once per
// submit; bind groups are cached by (pipeline, buffers, slot), so a decode step that
// repeats the same dispatch sequence allocates nothing.
import type { GpuDevice } from './device.ts';

const SLOT = 256;
const MAX_SLOTS = 4096;

let nextId = 1;
const ids = new WeakMap<object, number>();
function idOf(o: object): number {
  let id = ids.get(o);
  if (id === undefined) ids.set(o, (id = nextId++));
  return id;
}

export interface Dispatch {
  pipeline: GPUComputePipeline;
  /** Uniform params (binding 0), as 32-bit words; u32 unless listed in `f32`. */
  params: readonly number[];
  /** Indices into `params` that are f32 rather than u32. */
  f32?: readonly number[];
  /** Storage buffers for bindings 1..n, in order; null skips a binding the entry point does not use. */
  buffers: readonly (GPUBuffer | null)[];
  workgroups: readonly [number, number?, number?];
}

export class Recorder {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly arena: GPUBuffer;
  private readonly staging = new ArrayBuffer(SLOT * MAX_SLOTS);
  private readonly u32 = new Uint32Array(this.staging);
  private readonly f32 = new Float32Array(this.staging);
  private slot = 0;
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  dispatchCount = 0;

  constructor(readonly gpu: GpuDevice) {
    this.arena = gpu.device.createBuffer({ label: 'uniform-arena', size: SLOT * MAX_SLOTS, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  }

  private ensurePass(): GPUComputePassEncoder {
    if (!this.encoder) this.encoder = this.gpu.device.createCommandEncoder({ label: 'pop-llm' });
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }

  dispatch(d: Dispatch): void {
    if (this.slot >= MAX_SLOTS) this.submit();
    const base = (this.slot * SLOT) / 4;
    for (let i = 0; i < d.params.length; i++) this.u32[base + i] = d.params[i] >>> 0;
    if (d.f32) for (const i of d.f32) this.f32[base + i] = d.params[i];
    const key = `${idOf(d.pipeline)}|${this.slot}|${d.buffers.map((b) => (b ? idOf(b) : 0)).join(',')}`;
    let bg = this.bindGroups.get(key);
    if (!bg) {
      if (this.bindGroups.size > 16384) this.bindGroups.clear();
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.arena, offset: this.slot * SLOT, size: SLOT } }];
      d.buffers.forEach((buffer, i) => buffer && entries.push({ binding: i + 1, resource: { buffer } }));
      bg = this.gpu.device.createBindGroup({ layout: d.pipeline.getBindGroupLayout(0), entries, label: d.pipeline.label });
      this.bindGroups.set(key, bg);
    }
    const pass = this.ensurePass();
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, bg);
    const [x, y = 1, z = 1] = d.workgroups;
    if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
    this.slot++;
    this.dispatchCount++;
  }

  /** Copies between buffers; ends the current compute pass (copies live outside passes). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.ensurePass();
    this.pass!.end();
    this.pass = null;
    this.encoder!.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Writes the uniforms and submits everything recorded so far. */
  submit(): void {
    this.gpu.checkAlive();
    if (this.slot > 0) this.gpu.device.queue.writeBuffer(this.arena, 0, this.staging, 0, this.slot * SLOT);
    if (this.pass) this.pass.end();
    if (this.encoder) this.gpu.device.queue.submit([this.encoder.finish()]);
    this.pass = null;
    this.encoder = null;
    this.slot = 0;
  }

  /** Grid for `n` workgroups, folded into 2D when it exceeds the per-dimension limit. */
  grid(n: number): [number, number] {
    const max = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    if (n <= max) return [n, 1];
    const y = Math.ceil(n / max);
    return [Math.ceil(n / y), y];
  }
}

/** Reads a buffer back to the CPU (the only synchronizing call). */
export async function readBuffer(gpu: GpuDevice, src: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
  gpu.checkAlive();
  const staging = gpu.device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'readback' });
  const enc = gpu.device.createCommandEncoder();
  enc.copyBufferToBuffer(src, offset, staging, 0, Math.ceil(bytes / 4) * 4);
  gpu.device.queue.submit([enc.finish()]);
  try {
    await staging.mapAsync(GPUMapMode.READ);
  } catch (e) {
    staging.destroy();
    throw await gpu.failure(e);
  }
  const out = staging.getMappedRange().slice(0, bytes);
  staging.unmap();
  staging.destroy();
  return out;
}
