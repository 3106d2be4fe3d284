// The page's side of an engine in a worker: WebWorkerMLCEngine / CreateWebWorkerMLCEngine, as
// WebLLM's (the app's worker runs WebWorkerMLCEngineHandler), over Comlink. It implements the
// same MLCEngineInterface as the in-page MLCEngine by forwarding each call; the engine in the
// worker checks requests, queues them and builds every chunk and response. Streams arrive
// through a proxied callback and are handed out as async iterables; nothing polls.
// CreateWorkerEngine / WorkerEngine (pop-llm's earlier names) start pop-llm's own worker.
import * as Comlink from 'comlink';
import { AbortError, InvalidRequestError, UnsupportedFeatureError, UnsupportedFieldError, WorkerDiedError, WorkerUnresponsiveError, type PopError } from '../errors.ts';
import type { FitReport } from '../model/fit.ts';
import type { ChatCompletionsApi, CompletionsApi, EmbeddingsApi, InjectedFault, MLCEngineInterface, ModelSpec, ReloadOptions } from './interface.ts';
import type {
  AppConfig, ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam, ChatCompletionRequestBase, ChatOptions, Completion, CompletionCreateParamsBase,
  InitProgressCallback, LogitProcessor, LogLevel, MLCEngineConfig, ModelInfo,
} from './protocol.ts';
import { checkAppConfig, checkChatOptions, checkEngineConfig } from './request_fields.ts';
import { ChunkStream } from './stream.ts';
import { startEngineWorker } from './engine_worker.ts';
import { registerErrorTransfer } from './transfer.ts';
import { fetchImage } from '../vision/image_fetch.ts';
import { livenessLockName, watchLiveness } from './liveness.ts';
import type { RuntimeStats } from '../engine/stats.ts';
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
  let index = 0;
  if (!Array.isArray(messages)) return { messages, transfer };
  const out = await Promise.all(messages.map(async (m) => {
    const c = (m as { content?: unknown }).content;
    if (!Array.isArray(c)) return m;
    const parts = await Promise.all(c.map(async (p: { type?: string; image_url?: { url?: unknown } }) => {
      if (p?.type !== 'image_url' || typeof p.image_url !== 'object' || p.image_url === null) return p;
      const u = p.image_url.url;
      // URLs are fetched here (the page's origin, cookies and relative URLs): IMAGE_FETCH_FAILED with the status.
      if (typeof u === 'string') return { ...p, image_url: { ...p.image_url, url: await fetchImage(pageUrl(u), index++) } };
      const cloneable = (typeof Blob !== 'undefined' && u instanceof Blob) || (typeof ImageBitmap !== 'undefined' && u instanceof ImageBitmap) || typeof u !== 'object' || u === null;
      index++;
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

/**
 * The client's heartbeat: while a call is pending it pings the worker every `intervalMs`; a ping
 * unanswered after `timeoutMs` means the worker is alive but stuck (a busy loop, a wasm call
 * that never returns). The default deadline is long enough for the longest synchronous step of
 * a load (parsing a large tokenizer, converting a shard) on a slow machine.
 */
export interface HeartbeatOptions {
  intervalMs: number;
  timeoutMs: number;
}
export const DEFAULT_HEARTBEAT: HeartbeatOptions = { intervalMs: 1_000, timeoutMs: 60_000 };

export class WebWorkerMLCEngine implements MLCEngineInterface {
  readonly chat: { completions: ChatCompletionsApi };
  readonly completions: CompletionsApi;
  readonly embeddings: EmbeddingsApi;
  protected remote!: Comlink.Remote<EngineHost>;
  /**
   * Calls in flight, each with its reject: `failPending` rejects them all (a worker that died,
   * a lost device). The liveness check itself belongs to whoever detects the failure.
   */
  protected readonly pending = new Map<number, (e: PopError) => void>();
  private dead: PopError | null = null;
  private initProgressCallback?: InitProgressCallback;
  private configured: Promise<void>;
  private stopWatching: () => void = () => {};
  private state: EngineState = { loadedModelIds: [], modelInfo: null, templateNote: null };
  private heartbeat: HeartbeatOptions | null = DEFAULT_HEARTBEAT;
  /** The worker the heartbeat is watching now (one ping loop at a time). */
  private beating: ChatWorker | null = null;
  /** Settles when the current worker has answered its first call (true) or failed it (false). */
  private firstAnswer: Promise<boolean> = Promise.resolve(true);

  /** `makeWorker`: how to start a fresh worker, so that reload after WORKER_DIED starts one. */
  constructor(public worker: ChatWorker, engineConfig: MLCEngineConfig = {}, private readonly makeWorker?: () => Promise<Worker>) {
    checkEngineConfig(engineConfig);
    const { initProgressCallback, logitProcessorRegistry, appConfig, ...rest } = engineConfig;
    if (logitProcessorRegistry) throw new UnsupportedFieldError('logitProcessorRegistry', 'engineConfig', 'logit processors are functions and run where the engine runs: set them in the worker, handler.setLogitProcessorRegistry(registry)');
    this.initProgressCallback = initProgressCallback;
    this.config = { ...rest, ...(appConfig ? { appConfig: pageAppConfig(appConfig) } : {}) };
    this.configured = this.attach(worker);
    this.chat = { completions: { create: ((r: ChatCompletionRequestBase) => this.chatCompletion(r)) as ChatCompletionsApi['create'] } };
    this.completions = { create: ((r: CompletionCreateParamsBase) => this.completion(r)) as CompletionsApi['create'] };
    this.embeddings = { create: (r: unknown) => this.embedding(r) };
  }

  private readonly config: Omit<MLCEngineConfig, 'initProgressCallback' | 'logitProcessorRegistry'>;

  private attach(worker: ChatWorker): Promise<void> {
    this.worker = worker;
    this.remote = Comlink.wrap<EngineHost>(endpointOf(worker));
    let answered!: (ok: boolean) => void;
    this.firstAnswer = new Promise<boolean>((r) => (answered = r));
    const configured = this.call(() => this.remote.configure(this.config));
    configured.then(() => answered(true), () => answered(false));
    configured.catch(() => {});
    if (typeof Worker !== 'undefined' && worker instanceof Worker) {
      // A worker that ends without an event (killed, crashed, out of memory) releases its lock.
      const lock = livenessLockName();
      this.stopWatching = watchLiveness(lock, this.remote.holdLivenessLock(lock), () => void (this.worker === worker && this.failPending(new WorkerDiedError('the worker stopped without an error event (killed, crashed or out of memory)'))));
      worker.addEventListener('error', (e) => this.worker === worker && this.failPending(new WorkerDiedError(e.message || 'uncaught error in the worker')));
      worker.addEventListener('messageerror', () => this.worker === worker && this.failPending(new WorkerDiedError('a message could not be deserialized')));
    }
    return configured;
  }

  /** Rejects every call in flight with `error`, and every later one when `permanent` (default). */
  failPending(error: PopError, permanent = true): void {
    if (permanent) this.dead = error;
    for (const reject of this.pending.values()) reject(error);
    this.pending.clear();
  }

  /** Runs a remote call; a dead or stuck worker rejects it instead of leaving it hanging. */
  protected call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const key = nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(key, reject);
      this.watchHeartbeat();
      fn().then(resolve, reject).finally(() => this.pending.delete(key));
    });
  }

  /**
   * Sets the heartbeat (DEFAULT_HEARTBEAT unless changed), or turns it off with null. A worker
   * that misses its deadline while a call is pending is ended: that call and every later one
   * reject with WORKER_UNRESPONSIVE, and reload starts a fresh worker (CreateWorkerEngine).
   */
  setHeartbeat(options: HeartbeatOptions | null): void {
    if (options !== null) {
      for (const k of ['intervalMs', 'timeoutMs'] as const) {
        const v = (options as Partial<HeartbeatOptions>)?.[k];
        if (typeof v !== 'number' || !(v > 0 && v <= 3_600_000)) throw new InvalidRequestError(`heartbeat.${k}`, 'a number of milliseconds in (0, 3600000]', v);
      }
    }
    this.heartbeat = options && { intervalMs: options.intervalMs, timeoutMs: options.timeoutMs };
  }

  /** Starts the ping loop for the current worker if a call is pending and none runs (only for a Worker: it can be ended). */
  private watchHeartbeat(): void {
    const worker = this.worker;
    if (!this.heartbeat || this.beating === worker || !(typeof Worker !== 'undefined' && worker instanceof Worker)) return;
    this.beating = worker;
    const remote = this.remote;
    const stop = () => {
      if (this.beating === worker) this.beating = null;
    };
    const tick = () => {
      const h = this.heartbeat;
      if (!h || this.worker !== worker || this.dead || this.pending.size === 0) return stop();
      let answered = false;
      const deadline = setTimeout(() => {
        if (answered || this.worker !== worker || this.dead) return;
        stop();
        this.stopWatching();
        worker.terminate(); // stuck: ending it frees its GPU device too
        this.failPending(new WorkerUnresponsiveError(h.timeoutMs));
      }, h.timeoutMs);
      remote.ping().then(() => {
        answered = true;
        clearTimeout(deadline);
        setTimeout(tick, this.heartbeat?.intervalMs ?? 0);
      }, () => {
        answered = true;
        clearTimeout(deadline);
        stop();
      });
    };
    // The clock starts once the worker has answered its first call: starting a worker (its
    // module graph, its handler) is not being stuck.
    void this.firstAnswer.then((ok) => (ok ? setTimeout(tick, this.heartbeat?.intervalMs ?? 0) : stop()));
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
    // After WORKER_DIED, reload starts a fresh worker (chat state kept on this side survives).
    if (this.dead && this.makeWorker && !(this.dead instanceof WorkerDiedError && this.dead.fields.detail === 'terminated')) {
      this.stopWatching();
      if (typeof Worker !== 'undefined' && this.worker instanceof Worker) this.worker.terminate();
      this.dead = null;
      this.configured = this.attach(await this.makeWorker());
    }
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
  /** GPU memory (all live buffers; the engine's weights, KV cache, scratch) and the worker's JS heap. */
  stats(): Promise<RuntimeStats> {
    return this.after(() => this.remote.stats());
  }
  checkFit(model: string, options: { contextWindow?: number; hubBase?: string; memoryBytes?: number } = {}): Promise<FitReport> {
    return this.after(() => this.remote.checkFit(pageUrl(model), options));
  }
  deleteCachedModel(model: string, hubBase?: string): Promise<void> {
    return this.after(() => this.remote.deleteCachedModel(pageUrl(model), hubBase));
  }

  /** Fault injection for tests and debugging, in the worker's engine (MLCEngine.injectFault): its device lost, or its thread stuck. */
  injectFault(fault: InjectedFault): Promise<void> {
    return this.after(() => this.remote.injectFault(fault));
  }

  /** Ends the worker (and the GPU device it owns); calls in flight reject with WORKER_DIED. */
  terminate(): void {
    this.stopWatching();
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
    engine = new WebWorkerMLCEngine(worker, engineConfig, startEngineWorker);
    await engine.reload(modelId, chatOpts);
  } catch (e) {
    if (engine) engine.terminate();
    else worker.terminate(); // nobody else holds the worker (and its GPU device)
    throw e;
  }
  return engine;
}
