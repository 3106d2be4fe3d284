// Inside the app's worker: WebWorkerMLCEngineHandler, in WebLLM's form
//   const handler = new WebWorkerMLCEngineHandler();
//   self.onmessage = (msg) => handler.onmessage(msg);
// It wraps one in-page MLCEngine (engine.ts; no second implementation) and serves it to the
// page's WebWorkerMLCEngine over Comlink: the handler's onmessage feeds Comlink's endpoint.
// Chunks and responses are the engine's own objects; the handler only carries them.
import * as Comlink from 'comlink';
import { AbortError } from '../errors.ts';
import type { FitReport } from '../model/fit.ts';
import { MLCEngine } from './engine.ts';
import type { InjectedFault, ModelSpec, ReloadOptions } from './interface.ts';
import type {
  AppConfig, ChatCompletion, ChatCompletionChunk, ChatCompletionRequestBase, ChatOptions, Completion, CompletionCreateParamsBase,
  InitProgressReport, LogitProcessor, LogLevel, MLCEngineConfig, ModelInfo,
} from './protocol.ts';
import { registerErrorTransfer } from './transfer.ts';
import { holdLivenessLock } from './liveness.ts';
import type { RuntimeStats } from '../engine/stats.ts';

/** What the client reads synchronously after each call that changes it. */
export interface EngineState {
  loadedModelIds: string[];
  modelInfo: ModelInfo | null;
  templateNote: string | null;
}

/** The object a handler exposes over Comlink: the engine's calls, with requests named by id so the client can abort them. */
export class EngineHost {
  private readonly requests = new Map<number, AbortController>();

  constructor(readonly engine: MLCEngine) {}

  private signalFor(id: number): AbortSignal {
    const c = new AbortController();
    this.requests.set(id, c);
    return c.signal;
  }

  state(): EngineState {
    return { loadedModelIds: [...this.engine.loadedModelIds], modelInfo: this.engine.modelInfo, templateNote: this.engine.templateNote };
  }
  configure(config: Omit<MLCEngineConfig, 'initProgressCallback' | 'logitProcessorRegistry'>): void {
    this.engine.configure(config);
  }
  setAppConfig(appConfig: AppConfig): void {
    this.engine.setAppConfig(appConfig);
  }
  setLogLevel(level: LogLevel): void {
    this.engine.setLogLevel(level);
  }

  async reload(modelId: ModelSpec | ModelSpec[], chatOpts: ChatOptions | ChatOptions[] | undefined, options: Omit<ReloadOptions, 'signal'>, id: number, onProgress?: (r: InitProgressReport) => void): Promise<EngineState> {
    this.engine.setInitProgressCallback(onProgress ? (r) => void onProgress(r) : undefined);
    try {
      await this.engine.reload(modelId, chatOpts, { ...options, signal: this.signalFor(id) });
    } finally {
      this.requests.delete(id);
      this.engine.setInitProgressCallback(undefined);
    }
    return this.state();
  }

  /** A non-streaming request: the whole response. */
  async request(kind: 'chat' | 'text', req: ChatCompletionRequestBase | CompletionCreateParamsBase, id: number): Promise<ChatCompletion | Completion> {
    try {
      const signal = this.signalFor(id);
      return kind === 'chat'
        ? await this.engine.chatCompletion({ ...(req as ChatCompletionRequestBase), stream: false, signal })
        : await this.engine.completion({ ...(req as CompletionCreateParamsBase), stream: false, signal });
    } finally {
      this.requests.delete(id);
    }
  }

  /**
   * A streaming request: `onStart` once it has its turn, `onChunk` for each chunk. Returns only
   * once the page has received every chunk (chunks travel on the callback's port and the reply
   * on the worker's, which are not ordered with each other).
   */
  async stream(kind: 'chat' | 'text', req: ChatCompletionRequestBase | CompletionCreateParamsBase, id: number, onStart: () => void, onChunk: (c: ChatCompletionChunk | Completion) => void): Promise<void> {
    try {
      const signal = this.signalFor(id);
      const chunks: AsyncIterable<ChatCompletionChunk | Completion> = kind === 'chat'
        ? await this.engine.chatCompletion({ ...(req as ChatCompletionRequestBase), stream: true, signal })
        : await this.engine.completion({ ...(req as CompletionCreateParamsBase), stream: true, signal });
      await onStart();
      let last: unknown;
      try {
        for await (const c of chunks) last = onChunk(c); // a Comlink proxy call: settles when the page has it
      } finally {
        await Promise.resolve(last).catch(() => {});
      }
    } finally {
      this.requests.delete(id);
    }
  }

  /** Aborts one request or load (the client's AbortSignal fired). */
  abort(id: number): void {
    this.requests.get(id)?.abort(new AbortError('request'));
  }

  interruptGenerate(): void {
    this.engine.interruptGenerate();
  }
  resetChat(keepStats?: boolean, modelId?: string): Promise<void> {
    return this.engine.resetChat(keepStats, modelId);
  }
  getMessage(modelId?: string): Promise<string> {
    return this.engine.getMessage(modelId);
  }
  runtimeStatsText(modelId?: string): Promise<string> {
    return this.engine.runtimeStatsText(modelId);
  }
  forwardTokensAndSample(inputIds: number[], isPrefill: boolean, modelId?: string): Promise<number> {
    return this.engine.forwardTokensAndSample(inputIds, isPrefill, modelId);
  }
  getMaxStorageBufferBindingSize(): Promise<number> {
    return this.engine.getMaxStorageBufferBindingSize();
  }
  getGPUVendor(): Promise<string> {
    return this.engine.getGPUVendor();
  }
  async unload(): Promise<EngineState> {
    await this.engine.unload();
    return this.state();
  }
  checkFit(model: string, o: { contextWindow?: number; hubBase?: string; memoryBytes?: number }): Promise<FitReport> {
    return this.engine.checkFit(model, o);
  }
  deleteCachedModel(model: string, hubBase?: string): Promise<void> {
    return this.engine.deleteCachedModel(model, hubBase);
  }
  stats(): Promise<RuntimeStats> {
    return this.engine.stats();
  }
  /** Holds a Web Lock for the worker's lifetime: the page learns of its death by getting it (liveness.ts). */
  holdLivenessLock(name: string): Promise<void> {
    return holdLivenessLock(name);
  }
  /** Fault injection for tests and debugging (MLCEngine.injectFault). */
  injectFault(fault: InjectedFault): Promise<void> {
    return this.engine.injectFault(fault);
  }
  /** The client's heartbeat (a stuck worker does not answer) and the service worker client's keep-alive. */
  ping(): boolean {
    return true;
  }
}

type Listener = (e: MessageEvent) => void;

/** A Comlink endpoint whose incoming messages are whatever `deliver` is given. */
export class HandlerEndpoint implements Comlink.Endpoint {
  private readonly listeners = new Set<Listener>();
  constructor(private readonly send: (message: unknown, transfer: Transferable[]) => void) {}
  postMessage(message: unknown, transfer: Transferable[] = []): void {
    this.send(message, transfer);
  }
  addEventListener(_type: string, listener: EventListenerOrEventListenerObject): void {
    this.listeners.add(listener as Listener);
  }
  removeEventListener(_type: string, listener: EventListenerOrEventListenerObject): void {
    this.listeners.delete(listener as Listener);
  }
  deliver(e: MessageEvent): void {
    for (const l of this.listeners) l(e);
  }
}

export class WebWorkerMLCEngineHandler {
  /** The engine this worker runs (WebLLM's handler.engine). */
  readonly engine: MLCEngine;
  protected readonly host: EngineHost;
  private readonly endpoint: HandlerEndpoint;

  constructor() {
    registerErrorTransfer();
    this.engine = new MLCEngine();
    this.host = new EngineHost(this.engine);
    this.endpoint = new HandlerEndpoint((m, t) => this.postMessage(m, t));
    Comlink.expose(this.host, this.endpoint);
    this.onmessage = this.onmessage.bind(this);
  }

  /** Sends a message to the page (the worker's postMessage). */
  postMessage(message: unknown, transfer: Transferable[] = []): void {
    (globalThis as unknown as { postMessage(m: unknown, t: Transferable[]): void }).postMessage(message, transfer);
  }

  /** Logit processors live in the worker, by model id (they are functions: they cannot cross). */
  setLogitProcessorRegistry(registry?: Map<string, LogitProcessor>): void {
    this.engine.setLogitProcessorRegistry(registry);
  }

  /** The worker's message handler: `self.onmessage = (msg) => handler.onmessage(msg)`. */
  onmessage(event: MessageEvent): void {
    this.endpoint.deliver(event);
  }
}
