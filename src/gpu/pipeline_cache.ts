// Compiled compute pipelines, cached by a typed key: the kernel's base name, the shader
// variant and its override constants. Shader modules are cached by kernel name + variant.
export interface PipelineKey {
  kernel: string;
  variant?: string;
  constants?: Record<string, number>;
}

export function pipelineKeyString(k: PipelineKey): string {
  const c = k.constants ? Object.keys(k.constants).sort().map((n) => `${n}=${k.constants![n]}`).join(',') : '';
  return `${k.kernel}/${k.variant ?? 'default'}{${c}}`;
}

export class PipelineCache {
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  constructor(private readonly device: GPUDevice) {}

  get(key: PipelineKey, code: string, entryPoint = 'main'): GPUComputePipeline {
    const ks = pipelineKeyString(key);
    let p = this.pipelines.get(ks);
    if (p) return p;
    const modKey = `${key.kernel}/${key.variant ?? 'default'}`;
    let module = this.modules.get(modKey);
    if (!module) {
      module = this.device.createShaderModule({ code, label: modKey });
      this.modules.set(modKey, module);
    }
    p = this.device.createComputePipeline({
      layout: 'auto',
      label: ks,
      compute: { module, entryPoint, constants: key.constants },
    });
    this.pipelines.set(ks, p);
    return p;
  }

  get size(): number {
    return this.pipelines.size;
  }

  /** The keys of the pipelines compiled so far (tests: which kernels a run used). */
  keys(): string[] {
    return [...this.pipelines.keys()];
  }
}
