// `--host node`: the engine under Node on the npm `webgpu` package (Dawn over the machine's
// Vulkan driver), for GPU machines without Chromium. What exists so far is the start-up check:
// it loads Dawn and asks it for an adapter, and ends with a typed error that says why it
// cannot go on (no package, no adapter, or: running the engine under Node is not built yet).
// Chromium stays the default host. On this project's machine Dawn over SwiftShader
// (VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json) crashes on long shaders.
import { NoWebGPUError, UnsupportedFeatureError } from '../../src/errors.ts';

export const HOSTS = ['chromium', 'node'] as const;
export type Host = (typeof HOSTS)[number];

/** Starts Dawn and names its adapter; every way this cannot run the engine is a typed error. */
export async function startNodeHost(): Promise<never> {
  let dawn: { create: (flags: string[]) => GPU };
  try {
    // A runtime name, so that TypeScript and Vite do not need the optional package.
    const name = 'webgpu';
    dawn = (await import(/* @vite-ignore */ name)) as typeof dawn;
  } catch (e) {
    throw new NoWebGPUError(`the Node host needs the npm package 'webgpu' (Dawn), which did not load: ${(e as Error).message.split('\n')[0]}; run npm install webgpu, or use the default Chromium host`);
  }
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await dawn.create([]).requestAdapter();
  } catch (e) {
    throw new NoWebGPUError(`Dawn could not start: ${(e as Error).message}`);
  }
  if (!adapter) throw new NoWebGPUError('Dawn found no WebGPU adapter (no Vulkan driver, or VK_ICD_FILENAMES points nowhere)');
  const info = adapter.info;
  throw new UnsupportedFeatureError('--host node', `Dawn started on ${info.vendor} ${info.architecture} ${info.device} ${info.description}`.replace(/\s+/g, ' ').trim()
    + ', but running the engine under Node is not built yet; run the Chromium host instead (POP_LLM_WEBGPU_ADAPTER=default uses this GPU)');
}
