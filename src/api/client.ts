// The page's side of an engine in a worker: WebWorkerMLCEngine / CreateWebWorkerMLCEngine, as
// WebLLM's (the app's worker runs WebWorkerMLCEngineHandler), over Comlink. It implements the
// same MLCEngineInterface as the in-page MLCEngine by forwarding each call; the engine in the
// worker checks requests, queues them and builds every chunk and response. Streams arrive
// through a proxied callback and are handed out as async iterables; nothing polls.
// CreateWorkerEngine / WorkerEngine (pop-llm's earlier names) start pop-llm's own worker.
import * as Comlink from 'comlink';
import { AbortError, UnsupportedFeatureError, UnsupportedFieldError, WorkerDiedError, type PopError } from '../errors.ts';
import type { FitReport } from '../model/fit.ts';
import type { ChatCompletionsApi, CompletionsApi, EmbeddingsApi, MLCEngineInterface, ModelSpec, ReloadOptions } from './interface.ts';
import type {
  AppConfig, ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam, ChatCompletionRequestBase, ChatOptions, Completion, CompletionCreateParamsBase,
  InitProgressCallback, LogitProcessor, LogLevel, MLCEngineConfig, ModelInfo,
} from './protocol.ts';
import { checkAppConfig, checkChatOptions, checkEngineConfig } from './request_fields.ts';
import { ChunkStream } from './stream.ts';
import { startEngineWorker } from './engine_worker.ts';
import { registerErrorTransfer } from './transfer.ts';
import type { EngineHost, EngineState } from './worker_handler.ts';

registerErrorTransfer();

/** Relative URLs are the page's: the worker would resolve them against its own script URL. */
function pageUrl(model: string): string {
  return /^\.{0,2}\//.test(model) && typeof location !== 'undefined' ? new URL(model, location.href).href : model;
}
const pageModel = (m: ModelSpec): ModelSpec => (typeof m === 'string' ? pageUrl(m) : m);
const pageAppConfig = (a: AppConfig): AppConfig => ({ ...a, model_list: a.model_list.map((r) => ({ ...r, model: pageUrl(r.model) })) });

/**
 * Image parts for the trip to the worker: relative URLs become the page's, and what cannot be
 * cloned (<img>, canvas) becomes an ImageBitmap (transferred). Files and Blobs are cloned.
 */
async function wireMessages(messages: ChatCompletionMessageParam[]): Promise<{ messages: ChatCompletionMessageParam[]; transfer: Transferable[] }> {
  const transfer: Transferable[] = [];
  if (!Array.isArray(messages)) return { messages, transfer };
  const out = await Promise.all(messages.map(async (m) => {
    const c = (m as { content?: unknown }).content;
    if (!Array.isArray(c)) return m;
    const parts = await Promise.all(c.map(async (p: { type?: string; image_url?: { url?: unknown } }) => {
      if (p?.type !== 'image_url' || typeof p.image_url !== 'object' || p.image_url === null) return p;
      const u = p.image_url.url;
      if (typeof u === 'string') return { ...p, image_url: { ...p.image_url, url: pageUrl(u) } };
      const cloneable = (typeof Blob !== 'undefined' && u instanceof Blob) || (typeof ImageBitmap !== 'undefined' && u instanceof ImageBitmap) || typeof u !== 'object' || u === null;
      if (cloneable) return p;
      let bitmap: ImageBitmap;
      try {
        bitmap = await createImageBitmap(u as ImageBitmapSource);
      } catch {
        return p; // the engine reports it (IMAGE_DECODE_FAILED)
      }
      transfer.push(bitmap);
      return { ...p, image_url: { ...p.image_url, url: bitmap } };
    }));
    return { ...m, content: parts } as ChatCompletionMessageParam;
  }));
  return { messages: out, transfer };
}

/** A worker, or WebLLM's ChatWorker shape ({ onmessage, postMessage }). */
export type ChatWorker = Worker | { onmessage: ((e: MessageEvent) => void) | null; postMessage(message: unknown, transfer?: Transferable[]): void };

function endpointOf(w: ChatWorker): Comlink.Endpoint {
  if (typeof Worker !== 'undefined' && w instanceof Worker) return w;
  const listeners = new Set<(e: MessageEvent) => void>();
  w.onmessage = (e: MessageEvent) => {
    for (const l of listeners) l(e);
  };
  return {
    postMessage: (m: unknown, t?: Transferable[]) => w.postMessage(m, t ?? []),
    addEventListener: (_t: string, l: EventListenerOrEventListenerObject) => void listeners.add(l as (e: MessageEvent) => void),
    removeEventListener: (_t: string, l: EventListenerOrEventListenerObject) => void listeners.delete(l as (e: MessageEvent) => void),
  };
}

let nextId = 1;

export class WebWorkerMLCEngine implements MLCEngineInterface {
  readonly chat: { completions: ChatCompletionsApi };
  readonly completions: CompletionsApi;
  readonly embeddings: EmbeddingsApi;
  protected readonly remote: Comlink.Remote<EngineHost>;
  /**
   * Calls in flight, each with its reject: `failPending` rejects them all (a worker that died,
   * a lost device). The liveness check itself belongs to whoever detects the failure.
   */
  protected readonly pending = new Map<number, (e: PopError) => void>();
  private dead: PopError | null = null;
  private initProgressCallback?: InitProgressCallback;
  private configured: Promise<void>;
  private state: EngineState = { loadedModelIds: [], modelInfo: null, templateNote: null };

  constructor(readonly worker: ChatWorker, engineConfig: MLCEngineConfig = {}) {
    checkEngineConfig(engineConfig);
    const { initProgressCallback, logitProcessorRegistry, appConfig, ...rest } = engineConfig;
    if (logitProcessorRegistry) throw new UnsupportedFieldError('logitProcessorRegistry', 'engineConfig', 'logit processors are functions and run where the engine runs: set them in the worker, handler.setLogitProcessorRegistry(registry)');
    this.initProgressCallback = initProgressCallback;
    this.remote = Comlink.wrap<EngineHost>(endpointOf(worker));
    this.configured = this.call(() => this.remote.configure({ ...rest, ...(appConfig ? { appConfig: pageAppConfig(appConfig) } : {}) }));
    this.configured.catch(() => {});
    if (typeof Worker !== 'undefined' && worker instanceof Worker) {
      worker.addEventListener('error', (e) => this.failPending(new WorkerDiedError(e.message || 'uncaught error in the worker')));
      worker.addEventListener('messageerror', () => this.failPending(new WorkerDiedError('a message could not be deserialized')));
    }
    this.chat = { completions: { create: ((r: ChatCompletionRequestBase) => this.chatCompletion(r)) as ChatCompletionsApi['create'] } };
    this.completions = { create: ((r: CompletionCreateParamsBase) => this.completion(r)) as CompletionsApi['create'] };
    this.embeddings = { create: (r: unknown) => this.embedding(r) };
  }

  /** Rejects every call in flight with `error`, and every later one when `permanent` (default). */
  failPending(error: PopError, permanent = true): void {
    if (permanent) this.dead = error;
    for (const reject of this.pending.values()) reject(error);
    this.pending.clear();
  }

  /** Runs a remote call; a dead worker rejects it instead of leaving it hanging. */
  protected call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const key = nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(key, reject);
      fn().then(resolve, reject).finally(() => this.pending.delete(key));
    });
  }

  private async after<T>(fn: () => Promise<T>): Promise<T> {
    await this.configured;
    return this.call(fn);
  }

  // ------------------------------------------------------------ settings
  setInitProgressCallback(cb?: InitProgressCallback): void {
    this.initProgressCallback = cb;
  }
  getInitProgressCallback(): InitProgressCallback | undefined {
    return this.initProgressCallback;
  }
  setAppConfig(appConfig: AppConfig): void {
    checkAppConfig(appConfig);
    this.configured = this.configured.then(() => this.call(() => this.remote.setAppConfig(pageAppConfig(appConfig))));
  }
  setLogLevel(level: LogLevel): void {
    this.configured = this.configured.then(() => this.call(() => this.remote.setLogLevel(level)));
  }
  setLogitProcessorRegistry(_registry?: Map<string, LogitProcessor>): void {
    throw new UnsupportedFieldError('logitProcessorRegistry', 'WebWorkerMLCEngine', 'logit processors run where the engine runs: set them in the worker, handler.setLogitProcessorRegistry(registry)');
  }

  get loadedModelIds(): readonly string[] {
    return this.state.loadedModelIds;
  }
  get modelInfo(): ModelInfo | null {
    return this.state.modelInfo;
  }
  get templateNote(): string | null {
    return this.state.templateNote;
  }

  // ------------------------------------------------------------ loading
  async reload(modelId: ModelSpec | ModelSpec[], chatOpts?: ChatOptions | ChatOptions[], options: ReloadOptions = {}): Promise<void> {
    if (chatOpts !== undefined) (Array.isArray(chatOpts) ? chatOpts : [chatOpts]).forEach((o) => checkChatOptions(o));
    const { signal, ...load } = options;
    if (signal?.aborted) throw new AbortError('load');
    const ids = Array.isArray(modelId) && (modelId.length === 0 || !(modelId[0] instanceof File)) ? (modelId as ModelSpec[]).map(pageModel) : pageModel(modelId as ModelSpec);
    const id = nextId++;
    const onAbort = () => void this.remote.abort(id);
    signal?.addEventListener('abort', onAbort, { once: true });
    const progress = this.initProgressCallback;
    try {
      this.state = { loadedModelIds: [], modelInfo: null, templateNote: null };
      this.state = await this.after(() => this.remote.reload(ids, chatOpts, load, id, progress ? Comlink.proxy(progress) : undefined));
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async unload(): Promise<void> {
    this.state = await this.after(() => this.remote.unload());
  }

  // ------------------------------------------------------------ requests
  chatCompletion(request: ChatCompletionRequestBase & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
  chatCompletion(request: ChatCompletionRequestBase & { stream?: false | null }): Promise<ChatCompletion>;
  chatCompletion(request: ChatCompletionRequestBase): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion>;
  async chatCompletion(request: ChatCompletionRequestBase): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion> {
    const { signal, ...rest } = request;
    const { messages, transfer } = await wireMessages(rest.messages);
    return this.send<ChatCompletionChunk, ChatCompletion>('chat', { ...rest, messages }, transfer, signal);
  }

  completion(request: CompletionCreateParamsBase & { stream: true }): Promise<AsyncIterable<Completion>>;
  completion(request: CompletionCreateParamsBase & { stream?: false | null }): Promise<Completion>;
  completion(request: CompletionCreateParamsBase): Promise<AsyncIterable<Completion> | Completion>;
  async completion(request: CompletionCreateParamsBase): Promise<AsyncIterable<Completion> | Completion> {
    const { signal, ...rest } = request;
    return this.send<Completion, Completion>('text', rest, [], signal);
  }

  async embedding(_request: unknown): Promise<never> {
    throw new UnsupportedFeatureError('embeddings', 'pop-llm runs generative models only (chat.completions and completions)');
  }

  /** Sends a request; its signal (which cannot cross to the worker) aborts it there by id. */
  private async send<C, R>(kind: 'chat' | 'text', wire: ChatCompletionRequestBase | CompletionCreateParamsBase, transfer: Transferable[], signal?: AbortSignal): Promise<AsyncIterable<C> | R> {
    if (signal?.aborted) throw new AbortError('queue');
    const id = nextId++;
    const onAbort = () => void this.remote.abort(id);
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => signal?.removeEventListener('abort', onAbort);
    const payload = transfer.length ? Comlink.transfer(wire, transfer) : wire;
    if (!wire.stream) return this.after(() => this.remote.request(kind, payload, id) as Promise<R>).finally(done);
    const chunks = new ChunkStream<C>();
    let onStart!: () => void;
    const started = new Promise<void>((r) => (onStart = r));
    const call = this.after(() => this.remote.stream(kind, payload, id, Comlink.proxy(() => onStart()), Comlink.proxy((c: ChatCompletionChunk | Completion) => chunks.push(c as C))));
    call.then(() => chunks.end(), (e) => chunks.end(e)).finally(done);
    await Promise.race([started, call]);
    return chunks;
  }

  interruptGenerate(): void {
    if (!this.dead) void this.remote.interruptGenerate();
  }
  resetChat(keepStats?: boolean, modelId?: string): Promise<void> {
    return this.after(() => this.remote.resetChat(keepStats, modelId));
  }
  getMessage(modelId?: string): Promise<string> {
    return this.after(() => this.remote.getMessage(modelId));
  }
  runtimeStatsText(modelId?: string): Promise<string> {
    return this.after(() => this.remote.runtimeStatsText(modelId));
  }
  forwardTokensAndSample(inputIds: number[], isPrefill: boolean, modelId?: string): Promise<number> {
    return this.after(() => this.remote.forwardTokensAndSample(inputIds, isPrefill, modelId));
  }
  getMaxStorageBufferBindingSize(): Promise<number> {
    return this.after(() => this.remote.getMaxStorageBufferBindingSize());
  }
  getGPUVendor(): Promise<string> {
    return this.after(() => this.remote.getGPUVendor());
  }
  checkFit(model: string, options: { contextWindow?: number; hubBase?: string; memoryBytes?: number } = {}): Promise<FitReport> {
    return this.after(() => this.remote.checkFit(pageUrl(model), options));
  }
  deleteCachedModel(model: string, hubBase?: string): Promise<void> {
    return this.after(() => this.remote.deleteCachedModel(pageUrl(model), hubBase));
  }

  /** Ends the worker (and the GPU device it owns); calls in flight reject with WORKER_DIED. */
  terminate(): void {
    if (typeof Worker !== 'undefined' && this.worker instanceof Worker) this.worker.terminate();
    this.failPending(new WorkerDiedError('terminated'));
  }
}

/** Creates the page's client of an engine in `worker` (which runs WebWorkerMLCEngineHandler) and loads the model(s). */
export async function CreateWebWorkerMLCEngine(worker: ChatWorker, modelId: ModelSpec | ModelSpec[], engineConfig?: MLCEngineConfig, chatOpts?: ChatOptions | ChatOptions[]): Promise<WebWorkerMLCEngine> {
  const engine = new WebWorkerMLCEngine(worker, engineConfig);
  await engine.reload(modelId, chatOpts);
  return engine;
}

/** pop-llm's earlier name for WebWorkerMLCEngine. */
export { WebWorkerMLCEngine as WorkerEngine };

/** Starts pop-llm's own worker and loads the model(s) (pop-llm's earlier entry point; same as CreateWebWorkerMLCEngine). */
export async function CreateWorkerEngine(modelId: ModelSpec | ModelSpec[], engineConfig?: MLCEngineConfig, chatOpts?: ChatOptions | ChatOptions[]): Promise<WebWorkerMLCEngine> {
  const worker = await startEngineWorker();
  let engine: WebWorkerMLCEngine | null = null;
  try {
    engine = new WebWorkerMLCEngine(worker, engineConfig);
    await engine.reload(modelId, chatOpts);
  } catch (e) {
    if (engine) engine.terminate();
    else worker.terminate(); // nobody else holds the worker (and its GPU device)
    throw e;
  }
  return engine;
}
