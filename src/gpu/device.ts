// Adapter and device acquisition: feature detection, limits, and device-lost handling.
// A lost device turns into a DeviceLostError that every later call throws, so a caller
// can recover by reloading instead of hanging.
import { DeviceLostError, GpuError, NoWebGPUError, UnsupportedFeatureError } from '../errors.ts';

export interface GpuFeatures {
  shaderF16: boolean;
  subgroups: boolean;
  timestampQuery: boolean;
}

export interface GpuLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
  minStorageBufferOffsetAlignment: number;
  minUniformBufferOffsetAlignment: number;
}

export interface AdapterIdentity {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Stable key used to cache per-adapter kernel choices. */
  key: string;
}

/** Devices acquired in this realm and not yet lost or destroyed (stats). */
export const liveDevices = { count: 0 };

export class GpuDevice {
  lostError: DeviceLostError | null = null;
  /** The last uncaptured validation / out-of-memory error (kept for diagnostics). */
  lastError: string | null = null;
  private readonly lostListeners = new Set<(e: DeviceLostError) => void>();

  constructor(
    readonly device: GPUDevice,
    readonly adapter: GPUAdapter,
    readonly features: GpuFeatures,
    readonly limits: GpuLimits,
    readonly identity: AdapterIdentity,
  ) {
    device.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.lastError = e.message;
      console.error(`[pop-llm] WebGPU error: ${e.message}`);
    });
    liveDevices.count++;
    // 'destroyed': destroy() was called (our unload, or anyone holding the GPUDevice); anything else is a real loss.
    device.lost.then((info) => this.markLost(new DeviceLostError(info.reason === 'destroyed' ? 'destroyed' : 'unknown', info.message)));
  }

  /** Once per device: every later call throws `e`, listeners (buffer accounting, engines) hear of it. */
  private markLost(e: DeviceLostError): void {
    if (this.lostError) return;
    this.lostError = e;
    liveDevices.count--;
    for (const l of this.lostListeners) l(e);
  }

  /**
   * Throws the DeviceLostError if the device is gone, or a GpuError for an earlier rejected
   * command (validation errors arrive asynchronously; they must never pass silently).
   */
  checkAlive(): void {
    if (this.lostError) throw this.lostError;
    if (this.lastError) {
      const e = new GpuError(this.lastError);
      this.lastError = null;
      throw e;
    }
  }

  /**
   * What a failed GPU call (mapAsync, onSubmittedWorkDone) means: a lost device rejects them
   * with a DOMException (AbortError / OperationError) that looks like a user abort, and
   * `device.lost` may resolve only a moment later. So wait for it briefly: DeviceLostError
   * if the device went, else a GpuError with the call's own message. Never the raw exception.
   */
  async failure(e: unknown, waitMs = 2000): Promise<Error> {
    if (!this.lostError) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([this.device.lost, new Promise((r) => (timer = setTimeout(r, waitMs)))]);
      clearTimeout(timer);
    }
    if (this.lostError) return this.lostError;
    if (e instanceof Error && 'code' in e) return e; // already typed
    return new GpuError(`${(e as Error)?.name ?? 'Error'}: ${(e as Error)?.message ?? String(e)}`);
  }

  onLost(listener: (e: DeviceLostError) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  get isSoftware(): boolean {
    return this.identity.architecture === 'swiftshader' || /swiftshader|llvmpipe|lavapipe/i.test(this.identity.description);
  }

  /** Destroys the device and all its buffers; the accounting sees it at once (device.lost resolves later). */
  destroy(): void {
    this.markLost(new DeviceLostError('destroyed', 'GpuDevice.destroy'));
    this.device.destroy();
  }
}

export interface AcquireOptions {
  powerPreference?: GPUPowerPreference;
  /** Use f16 when offered (default true). */
  allowF16?: boolean;
  gpu?: GPU;
}

export async function acquireGpu(opts: AcquireOptions = {}): Promise<GpuDevice> {
  const gpu = opts.gpu ?? (typeof navigator !== 'undefined' ? navigator.gpu : undefined);
  if (!gpu) throw new NoWebGPUError('navigator.gpu is undefined');
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  } catch (e) {
    throw new NoWebGPUError(`requestAdapter failed: ${String(e)}`);
  }
  if (!adapter) throw new NoWebGPUError('no suitable GPU adapter');

  const has = (f: string) => adapter!.features.has(f as GPUFeatureName);
  const features: GpuFeatures = {
    shaderF16: (opts.allowF16 ?? true) && has('shader-f16'),
    subgroups: has('subgroups'),
    timestampQuery: has('timestamp-query'),
  };
  const requiredFeatures: GPUFeatureName[] = [];
  if (features.shaderF16) requiredFeatures.push('shader-f16');
  if (features.subgroups) requiredFeatures.push('subgroups' as GPUFeatureName);
  if (features.timestampQuery) requiredFeatures.push('timestamp-query');

  const a = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxBufferSize: a.maxBufferSize,
    maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
    maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: a.maxComputeWorkgroupSizeY,
    maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
  };
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'pop-llm' });
  } catch (e) {
    throw new UnsupportedFeatureError('WebGPU device', `requestDevice failed: ${String(e)}`);
  }
  const d = device.limits;
  const limits: GpuLimits = {
    maxBufferSize: d.maxBufferSize,
    maxStorageBufferBindingSize: d.maxStorageBufferBindingSize,
    maxComputeWorkgroupStorageSize: d.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: d.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupsPerDimension: d.maxComputeWorkgroupsPerDimension,
    maxStorageBuffersPerShaderStage: d.maxStorageBuffersPerShaderStage,
    minStorageBufferOffsetAlignment: d.minStorageBufferOffsetAlignment,
    minUniformBufferOffsetAlignment: d.minUniformBufferOffsetAlignment,
  };
  const info = adapter.info;
  const identity: AdapterIdentity = {
    vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description,
    key: [info.vendor, info.architecture, info.device, info.description, features.shaderF16 ? 'f16' : 'f32', features.subgroups ? 'sg' : ''].join('|'),
  };
  return new GpuDevice(device, adapter, features, limits, identity);
}
