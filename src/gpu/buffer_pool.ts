// GPU buffers: creation with labels and byte accounting, and a pool of reusable scratch
// buffers keyed by (size class, usage), so repeated requests allocate nothing new.
import { GpuOutOfMemoryError } from '../errors.ts';
import type { GpuDevice } from './device.ts';

export const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/**
 * Every live buffer made through any pool in this realm (page or worker), over all devices:
 * what `stats()` reports, so a test sees a leak after a fault (a lost or destroyed device's
 * buffers are gone with it and leave the count).
 */
export const liveGpuMemory = { bytes: 0, buffers: 0, peakBytes: 0 };

export class BufferPool {
  /** Bytes held by live buffers created through this pool (weights, cache and scratch). */
  bytesInUse = 0;
  peakBytes = 0;
  private readonly free = new Map<string, GPUBuffer[]>();
  private sizes = new WeakMap<GPUBuffer, number>();
  private buffers = 0;

  constructor(private readonly gpu: GpuDevice) {
    // A lost (or destroyed) device takes its buffers with it.
    gpu.onLost(() => {
      liveGpuMemory.bytes -= this.bytesInUse;
      liveGpuMemory.buffers -= this.buffers;
      this.bytesInUse = 0;
      this.buffers = 0;
      this.sizes = new WeakMap();
      this.free.clear();
    });
  }

  /** Creates a dedicated buffer (weights, KV pages). Throws a typed error over the device limits. */
  create(label: string, bytes: number, usage: GPUBufferUsageFlags = STORAGE): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const limit = usage & GPUBufferUsage.STORAGE ? Math.min(this.gpu.limits.maxBufferSize, this.gpu.limits.maxStorageBufferBindingSize) : this.gpu.limits.maxBufferSize;
    if (size > limit) throw new GpuOutOfMemoryError(label, size, usage & GPUBufferUsage.STORAGE ? 'maxStorageBufferBindingSize' : 'maxBufferSize', limit);
    this.gpu.checkAlive();
    const buf = this.gpu.device.createBuffer({ label, size, usage });
    this.sizes.set(buf, size);
    this.bytesInUse += size;
    this.buffers++;
    this.peakBytes = Math.max(this.peakBytes, this.bytesInUse);
    liveGpuMemory.bytes += size;
    liveGpuMemory.buffers++;
    liveGpuMemory.peakBytes = Math.max(liveGpuMemory.peakBytes, liveGpuMemory.bytes);
    return buf;
  }

  /** Creates a buffer holding `data`. */
  upload(label: string, data: ArrayBufferView, usage: GPUBufferUsageFlags = STORAGE): GPUBuffer {
    const buf = this.create(label, data.byteLength, usage | GPUBufferUsage.COPY_DST);
    this.gpu.device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
    return buf;
  }

  destroy(buf: GPUBuffer): void {
    const size = this.sizes.get(buf);
    if (size === undefined) return;
    this.sizes.delete(buf);
    this.bytesInUse -= size;
    this.buffers--;
    liveGpuMemory.bytes -= size;
    liveGpuMemory.buffers--;
    buf.destroy();
  }

  /** A scratch buffer of at least `bytes`, reused from the pool when one is free. */
  acquire(label: string, bytes: number, usage: GPUBufferUsageFlags = STORAGE): GPUBuffer {
    const cls = sizeClass(bytes);
    const key = `${cls}:${usage}`;
    const list = this.free.get(key);
    if (list && list.length) return list.pop()!;
    return this.create(label, cls, usage);
  }

  release(buf: GPUBuffer): void {
    const size = this.sizes.get(buf);
    if (size === undefined) return;
    const key = `${size}:${buf.usage}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    list.push(buf);
  }

  /** Destroys pooled buffers that are not in use. */
  trim(): void {
    for (const list of this.free.values()) for (const b of list.splice(0)) this.destroy(b);
  }
}

function sizeClass(bytes: number): number {
  // Powers of two up to 1 MiB, then 1 MiB steps: bounded waste, few distinct classes.
  const min = 256;
  if (bytes <= min) return min;
  if (bytes <= 1 << 20) return 1 << Math.ceil(Math.log2(bytes));
  return Math.ceil(bytes / (1 << 20)) * (1 << 20);
}
