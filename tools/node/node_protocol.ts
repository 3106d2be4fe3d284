// What the Node host (tools/node/node_host.ts) and its engine process (tools/node/dawn_engine.ts)
// pass each other over Node's IPC channel: the CLI page's calls (tools/cli/protocol.ts) and
// the process's own signs of life. Everything here is plain JSON.
import type { CliErrorInfo, Reply } from '../cli/protocol.ts';

export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

export type ParentMessage =
  | { type: 'call'; id: number; fn: string; args: [unknown, unknown] }
  | { type: 'close' };

export type ChildMessage =
  | { type: 'ready'; adapter: AdapterInfo }
  /** The process cannot go on (it exits); NO_WEBGPU comes with its advice apart. */
  | { type: 'fatal'; error: CliErrorInfo; advice?: string }
  | { type: 'reply'; id: number; reply: Reply<unknown> }
  | { type: 'token'; id: number; text: string }
  | { type: 'beat' };

/** NO_WEBGPU's advice on the Node host where Dawn loaded but found no adapter (the browser's advice is about browsers). */
export const NODE_WEBGPU_ADVICE =
  "The Node host runs Dawn (npm package 'webgpu') over the machine's Vulkan driver: it needs the Vulkan loader (libvulkan.so.1; Debian/Ubuntu: libvulkan1) " +
  'and the GPU\'s Vulkan ICD (check with vulkaninfo; in a container, NVIDIA_DRIVER_CAPABILITIES must include graphics); VK_ICD_FILENAMES picks an ICD, ' +
  "POP_LLM_WEBGPU_ADAPTER=swiftshader uses Chromium's SwiftShader. Or leave out --host node: the default Chromium host needs none of this.";

/** NO_WEBGPU's advice where the `webgpu` package itself did not load. */
export const NODE_DAWN_PACKAGE_ADVICE =
  "Install it (npm install webgpu: an optional dependency of pop-llm, with Dawn prebuilt for Linux, macOS and Windows on x64 and arm64), or leave out --host node: the default Chromium host does not need it.";
