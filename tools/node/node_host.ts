// `--host node`: the engine under Node on the npm `webgpu` package (Dawn over the machine's
// Vulkan driver), for GPU machines without Chromium. The engine runs in a child process
// (tools/node/dawn_child.mjs -> dawn_engine.ts: the CLI page's code, unchanged), because Dawn
// can take the whole process down (on SwiftShader it crashes on long shaders): a crash, or a
// process stuck in native code, becomes a typed error here that names the step it died in
// (the shader pipeline being compiled, or the call that was running) and the adapter, never a
// hang or a raw segfault. Chromium stays the default host.
// POP_LLM_WEBGPU_ADAPTER=swiftshader runs Dawn on Chromium's SwiftShader ICD (this project's
// machines); otherwise Dawn takes the machine's own Vulkan driver.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromSerialized, GpuProcessCrashedError, NoWebGPUError, type PopErrorCode } from '../../src/errors.ts';
import type { CliErrorInfo, EngineLink, ModelSpec, Reply } from '../cli/protocol.ts';
import { NODE_WEBGPU_ADVICE, type AdapterInfo, type ChildMessage, type ParentMessage } from './node_protocol.ts';

export const HOSTS = ['chromium', 'node'] as const;
export type Host = (typeof HOSTS)[number];

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'dawn_child.mjs');
/** Where Debian's chromium keeps its SwiftShader Vulkan ICD and a Vulkan loader. */
export const SWIFTSHADER_DIR = process.env.POP_LLM_SWIFTSHADER_DIR ?? '/usr/lib/chromium';

export interface NodeEngineOptions {
  /** 'swiftshader': Chromium's SwiftShader ICD; 'default' (or anything else): the machine's driver. Default POP_LLM_WEBGPU_ADAPTER. */
  adapter?: string;
  /** No heartbeat from the engine process for this long: it is stuck in native code and is killed. Default POP_LLM_NODE_STALL_S, else 300 s. */
  stallMs?: number;
  /** Starting Dawn and the engine's modules takes longer than this: killed. Default 120 s. */
  startMs?: number;
}

/** The environment of the engine process: the caller's, plus the SwiftShader ICD when asked for. */
function childEnv(adapter: string): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (adapter !== 'swiftshader') return env;
  const icd = resolve(SWIFTSHADER_DIR, 'vk_swiftshader_icd.json');
  if (!existsSync(icd)) throw new NoWebGPUError(`POP_LLM_WEBGPU_ADAPTER=swiftshader, but there is no SwiftShader ICD at ${icd} (POP_LLM_SWIFTSHADER_DIR names its folder)`, NODE_WEBGPU_ADVICE);
  env.VK_ICD_FILENAMES = icd;
  // Chromium ships its own Vulkan loader beside the ICD; use it where the system has none.
  if (existsSync(resolve(SWIFTSHADER_DIR, 'libvulkan.so.1'))) env.LD_LIBRARY_PATH = [env.LD_LIBRARY_PATH, SWIFTSHADER_DIR].filter(Boolean).join(':');
  return env;
}

const describeAdapter = (a: AdapterInfo | null): string =>
  a ? [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' ').replace(/\s+/g, ' ').trim() || 'an unnamed adapter' : '';

/** Dawn's own warnings in the process's stderr (e.g. "Couldn't load Vulkan: libvulkan.so.1 ..."), one line. */
function dawnWarnings(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('at '));
  return lines.slice(-3).join(' | ').slice(0, 400);
}

/** The engine in a Node process on Dawn; every way it fails is a typed error. */
export class NodeEngineLink implements EngineLink {
  onToken: ((id: number, text: string) => void) | null = null;
  adapter: AdapterInfo | null = null;
  private readonly pending = new Map<number, { ok: (r: Reply<unknown>) => void; fail: (e: Error) => void }>();
  private nextId = 1;
  private step = 'starting the engine process';
  /** A pipeline whose compile started and has not returned. */
  private compiling: string | null = null;
  private lastPipeline: string | null = null;
  private stderr = '';
  private lastBeat = Date.now();
  private exited: Error | null = null;
  private fatal: CliErrorInfo | null = null;
  private fatalAdvice: string | null = null;
  /** Why this side killed the process (a hang), if it did. */
  private killedFor: string | null = null;
  private isReady = false;
  private readonly t0 = performance.now();
  private readonly watchdog: ReturnType<typeof setInterval>;
  /** Told once the process is gone (ready() listens while starting). */
  private onExit: ((e: Error) => void) | null = null;
  private readonly onParentExit = () => this.child.kill('SIGKILL');

  constructor(private readonly child: ChildProcess, private readonly stallMs: number) {
    child.stderr!.setEncoding('utf8').on('data', (s: string) => this.output(s));
    child.stdout!.setEncoding('utf8').on('data', (s: string) => this.output(s));
    let partial = '';
    (child.stdio[4] as NodeJS.ReadableStream).setEncoding('utf8');
    (child.stdio[4] as NodeJS.ReadableStream).on('data', (s: string) => {
      const lines = (partial + s).split('\n');
      partial = lines.pop()!;
      for (const l of lines) this.crumb(l);
    });
    child.on('message', (m: ChildMessage) => this.message(m));
    // 'close', not 'exit': by then every breadcrumb the process wrote before it died has been read.
    child.on('close', (code, signal) => this.exit(code, signal));
    this.watchdog = setInterval(() => {
      // From ready on (starting has its own limit, startMs): module loading is not a hang.
      if (this.isReady && Date.now() - this.lastBeat > this.stallMs) {
        this.killedFor = `no sign of life for ${Math.round(this.stallMs / 1000)} s, killed`;
        child.kill('SIGKILL');
      }
    }, 1000);
    this.watchdog.unref();
    process.once('exit', this.onParentExit);
  }

  private output(s: string): void {
    this.stderr = (this.stderr + s).slice(-8192);
    if (process.env.POP_LLM_DEBUG) process.stderr.write(`[node host] ${s}`);
  }

  private crumb(line: string): void {
    this.lastBeat = Date.now();
    if (process.env.POP_LLM_DEBUG) process.stderr.write(`[node host ${((performance.now() - this.t0) / 1000).toFixed(2)} s] ${line}\n`);
    if (line.startsWith('pipeline ')) (this.compiling = line.slice(9)), (this.lastPipeline = this.compiling);
    else if (line.startsWith('compiled ')) this.compiling = null;
    else if (line.startsWith('shader ')) this.lastPipeline = line.slice(7);
    else if (line.startsWith('call ')) this.step = `running ${line.slice(5)}`;
    else if (line.startsWith('done ')) this.step = `idle after ${line.slice(5)}`;
    else if (!line.startsWith('fatal ')) this.step = line;
  }

  private message(m: ChildMessage): void {
    this.lastBeat = Date.now();
    if (m.type === 'token') this.onToken?.(m.id, m.text);
    else if (m.type === 'reply') {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      p?.ok(m.reply);
    } else if (m.type === 'fatal') (this.fatal = m.error), (this.fatalAdvice = m.advice ?? null);
    else if (m.type === 'ready') (this.adapter = m.adapter), (this.isReady = true);
  }

  /** Why the process is gone, as a typed error. */
  private death(code: number | null, signal: NodeJS.Signals | null): Error {
    if (this.fatal) {
      const f = this.fatal;
      const reason = typeof f.fields?.reason === 'string' ? f.fields.reason : f.message;
      const warn = dawnWarnings(this.stderr);
      // The child's advice (the package's, or the driver's) is kept; Dawn's warnings join the reason.
      if (f.code === 'NO_WEBGPU') return new NoWebGPUError(warn ? `${reason}; Dawn said: ${warn}` : reason, this.fatalAdvice ?? NODE_WEBGPU_ADVICE);
      return fromSerialized({ name: 'PopError', code: f.code as PopErrorCode, message: f.message, fields: (f.fields ?? {}) as Record<string, string> });
    }
    const how = this.killedFor ?? (signal ? `signal ${signal}` : `exit code ${code}`);
    const step = this.compiling ? `compiling the shader pipeline ${this.compiling}` : this.step + (this.lastPipeline ? ` (last shader pipeline compiled: ${this.lastPipeline})` : '');
    return new GpuProcessCrashedError('node', how, step, describeAdapter(this.adapter), dawnWarnings(this.stderr));
  }

  private exit(code: number | null, signal: NodeJS.Signals | null): void {
    clearInterval(this.watchdog);
    process.off('exit', this.onParentExit);
    this.exited = this.death(code, signal);
    for (const p of this.pending.values()) p.fail(this.exited);
    this.pending.clear();
    this.onExit?.(this.exited);
  }

  /** Resolves once the engine process says it is ready; rejects with why it is not. */
  ready(startMs: number): Promise<void> {
    return new Promise((ok, fail) => {
      if (this.exited) return fail(this.exited);
      const timer = setTimeout(() => {
        this.killedFor = `not started after ${Math.round(startMs / 1000)} s, killed`;
        this.child.kill('SIGKILL');
      }, startMs);
      const check = (m: ChildMessage) => {
        if (m.type === 'ready') clearTimeout(timer), this.child.off('message', check), ok();
      };
      this.child.on('message', check);
      this.onExit = (e) => (clearTimeout(timer), fail(e));
    });
  }

  call<T>(fn: string, arg: unknown, arg2?: unknown): Promise<Reply<T>> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise((ok, fail) => {
      this.pending.set(id, { ok: ok as (r: Reply<unknown>) => void, fail });
      // A channel closing under us is the process going: its exit rejects this call with why.
      this.child.send({ type: 'call', id, fn, args: [arg, arg2] } satisfies ParentMessage, (e) => e && this.child.kill('SIGKILL'));
    });
  }

  /** The engine process (tests send it signals). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The pipeline being compiled now, if any (from the process's breadcrumbs). */
  get compilingPipeline(): string | null {
    return this.compiling;
  }

  folder(dir: string): ModelSpec {
    return { kind: 'folder', id: dir, path: resolve(dir) };
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((ok) => this.child.once('close', () => ok()));
    try {
      this.child.send({ type: 'close' } satisfies ParentMessage);
    } catch {
      this.child.kill('SIGKILL');
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  }
}

/** Starts the engine process on Dawn and waits until it has an adapter and the engine's code. */
export async function startNodeEngine(o: NodeEngineOptions = {}): Promise<NodeEngineLink> {
  const adapter = o.adapter ?? process.env.POP_LLM_WEBGPU_ADAPTER ?? 'default';
  const stallS = Number(process.env.POP_LLM_NODE_STALL_S);
  const child = spawn(process.execPath, ['--expose-gc', CHILD], { stdio: ['ignore', 'pipe', 'pipe', 'ipc', 'pipe'], env: childEnv(adapter) });
  const link = new NodeEngineLink(child, o.stallMs ?? (stallS > 0 ? stallS * 1000 : 300_000));
  try {
    await link.ready(o.startMs ?? 120_000);
  } catch (e) {
    await link.close();
    throw e;
  }
  return link;
}
