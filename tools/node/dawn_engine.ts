// The Node host's engine process (tools/node/dawn_child.mjs loads it; tools/node/node_host.ts
// starts it and talks to it over Node's IPC channel). It runs the CLI page's own code
// (tools/cli/page.ts: the same engine, model, ops and kernels a tab runs) with three host
// differences: the GPU is Dawn's (the npm `webgpu` package) behind `navigator.gpu`, local model
// folders are read from disk (tools/node/fs_source.ts) instead of fetched, and tokens stream
// back as IPC messages instead of an exposed page function.
// Dawn can crash the whole process (on SwiftShader, long shaders): before each native step that
// may do so (adapter, device, each shader module and pipeline) it writes a line naming the step
// to file descriptor 4 with a synchronous write, so the parent still reads it after a crash.
import { writeSync } from 'node:fs';
import { NoWebGPUError } from '../../src/errors.ts';
import { folderSource } from './fs_source.ts';
import type { Reply } from '../cli/protocol.ts';
import { NODE_DAWN_PACKAGE_ADVICE, NODE_WEBGPU_ADVICE, type ChildMessage, type ParentMessage } from './node_protocol.ts';

const CRUMB_FD = 4;
const crumb = (step: string): void => {
  try {
    writeSync(CRUMB_FD, step.replace(/\n/g, ' ') + '\n');
  } catch {
    // No breadcrumb pipe (started by hand): nothing to tell.
  }
};
const send = (m: ChildMessage): void => void process.send?.(m);
const errorInfo = (e: unknown) => {
  const err = e as { code?: unknown; message?: unknown; fields?: Record<string, unknown> };
  return { code: typeof err?.code === 'string' ? err.code : 'INTERNAL', message: typeof err?.message === 'string' ? err.message : String(e), fields: err?.fields ?? {} };
};
/** NO_WEBGPU with its advice kept apart, so that the parent can add Dawn's warnings to the reason. */
class NoDawnError extends NoWebGPUError {
  constructor(reason: string, readonly advice: string) {
    super(reason, advice);
  }
}

/** Wraps the GPUDevice calls that compile WGSL so that each leaves a breadcrumb first. */
function traceCompiles(proto: GPUDevice): void {
  const p = proto as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of ['createShaderModule', 'createComputePipeline', 'createComputePipelineAsync'] as const) {
    const orig = p[name];
    if (typeof orig !== 'function') continue;
    p[name] = function (this: GPUDevice, ...args: unknown[]) {
      const d = args[0] as { label?: string; code?: string } | undefined;
      crumb(`${name === 'createShaderModule' ? 'shader' : 'pipeline'} ${d?.label || (d?.code ?? '').slice(0, 80)}`);
      const r = orig.apply(this, args);
      if (name !== 'createShaderModule') crumb(`compiled ${d?.label ?? ''}`);
      return r;
    };
  }
}

async function start(): Promise<void> {
  crumb('loading the npm package webgpu (Dawn)');
  let dawn: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    const name = 'webgpu'; // a runtime name: the package is optional
    dawn = (await import(/* @vite-ignore */ name)) as typeof dawn;
  } catch (e) {
    throw new NoDawnError(`the npm package 'webgpu' (Dawn) did not load: ${(e as Error).message.split('\n')[0]}`, NODE_DAWN_PACKAGE_ADVICE);
  }
  for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  const flags = (process.env.POP_LLM_DAWN_FLAGS ?? '').split(/\s+/).filter(Boolean);
  crumb('creating the Dawn instance');
  const gpu = dawn.create(flags);
  crumb('requesting an adapter');
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    throw new NoDawnError(`Dawn's requestAdapter failed: ${(e as Error).message}`, NODE_WEBGPU_ADVICE);
  }
  if (!adapter) throw new NoDawnError('Dawn found no WebGPU adapter', NODE_WEBGPU_ADVICE);
  const i = adapter.info;
  const info = { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description };
  traceCompiles((globalThis as unknown as { GPUDevice: { prototype: GPUDevice } }).GPUDevice.prototype);
  // The engine asks `navigator.gpu` for its device (src/gpu/device.ts), as in a tab.
  const nav = (globalThis as { navigator?: object }).navigator;
  if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
  // The bench's JS-heap figures (tools/cli/memory.ts read Chrome's performance.memory): here
  // V8's heap plus ArrayBuffer backing stores, as Chrome counts them.
  if (!('memory' in performance)) Object.defineProperty(performance, 'memory', { get: () => {
    const m = process.memoryUsage();
    return { usedJSHeapSize: m.heapUsed + m.arrayBuffers };
  } });
  crumb('loading the engine');
  const page = await import('../cli/page.ts');
  page.useFolderSource(folderSource);
  (globalThis as Record<string, unknown>).__popCliToken = (id: number, text: string) => send({ type: 'token', id, text });
  const calls = (globalThis as unknown as { popCli: Record<string, (a: unknown, b: unknown) => Promise<unknown>> }).popCli;
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'close') {
      crumb('closing');
      void calls.unload(undefined, undefined);
      process.disconnect?.();
      return;
    }
    crumb(`call ${m.fn}`);
    void calls[m.fn](m.args[0], m.args[1]).then(
      (reply) => (crumb(`done ${m.fn}`), send({ type: 'reply', id: m.id, reply: reply as Reply<unknown> })),
      (e) => send({ type: 'reply', id: m.id, reply: { error: errorInfo(e) } }),
    );
  });
  crumb('ready');
  send({ type: 'ready', adapter: info });
}

// A heartbeat, so that the parent tells a process stuck in native code from a slow one.
setInterval(() => send({ type: 'beat' }), 1000).unref();
process.on('disconnect', () => process.exit(0));
const fatal = (e: unknown): void => {
  crumb(`fatal ${(e as Error)?.message ?? e}`);
  if (!process.send) process.exit(1);
  const advice = e instanceof NoDawnError ? e.advice : undefined;
  process.send({ type: 'fatal', error: errorInfo(e), advice } satisfies ChildMessage, () => process.exit(1));
};
process.on('uncaughtException', fatal);
start().catch(fatal);
