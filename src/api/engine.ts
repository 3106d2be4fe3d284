// MLCEngine: WebLLM's engine, run by whichever host owns the GPU (the page, or the app's
// worker through WebWorkerMLCEngineHandler). It checks every request and config at the edge
// (request_fields.ts), queues requests, reloads and unloads in arrival order (queue.ts),
// selects the model by `model` as WebLLM does, and builds the OpenAI-shaped objects
// (openai.ts) from what a ModelSession (one loaded model) reports. A model whose GPU device
// was lost is loaded again on a new device (from the Cache API) by the next call for it.
import { AbortError, EngineNotLoadedError, InvalidRequestError, NoWebGPUError, UnsupportedFeatureError } from '../errors.ts';
import type { FitReport } from '../model/fit.ts';
import { deleteCachedModel } from '../model/model_cache.ts';
import { filesSource } from '../model/source.ts';
import { findModelRecord, prebuiltAppConfig } from './app_config.ts';
import { ModelSession, checkModelFit, type PreparedPrompt, type RunResult } from './model_session.ts';
import type { ChoiceDelta } from './choice_output.ts';
import type { GrammarSpec } from '../engine/grammar.ts';
import type { ChatCompletionsApi, CompletionsApi, EmbeddingsApi, InjectedFault, MLCEngineInterface, ModelSpec, ReloadOptions } from './interface.ts';
import { log, setLogLevel } from './log.ts';
import * as oa from './openai.ts';
import type {
  AppConfig, ChatCompletion, ChatCompletionChunk, ChatCompletionRequestBase, ChatOptions, Completion, CompletionCreateParamsBase,
  InitProgressCallback, LogitProcessor, LogLevel, MLCEngineConfig, ModelInfo, PopLoadOptions, ResponseFormat,
} from './protocol.ts';
import { TaskQueue } from './queue.ts';
import { runtimeStats, type RuntimeStats } from '../engine/stats.ts';
import { ChunkStream } from './stream.ts';
import { checkAppConfig, checkChatOptions, checkChatRequest, checkCompletionRequest, checkEngineConfig, checkReloadOptions } from './request_fields.ts';

/** A fresh 32-bit seed: a request without `seed` samples differently each time (as WebLLM). */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** Where a model id's files are, for fetch: relative locations are the page's (a worker's: its origin's). */
export function absoluteLocation(model: string): string {
  if (!/^\.{0,2}\//.test(model)) return model;
  const base = typeof document !== 'undefined' ? document.URL : (globalThis as { location?: Location }).location?.href;
  return base ? new URL(model, base).href : model;
}

/** The model id for reload's argument: the string itself, or a local folder's name. */
export function modelIdOf(m: ModelSpec): string {
  return typeof m === 'string' ? m : m[0]?.webkitRelativePath?.split('/')[0] || 'local folder';
}

type Kind = 'chat' | 'text';

export class MLCEngine implements MLCEngineInterface {
  readonly chat: { completions: ChatCompletionsApi };
  readonly completions: CompletionsApi;
  readonly embeddings: EmbeddingsApi;

  private readonly models = new Map<string, ModelSession>();
  private readonly queue = new TaskQueue();
  /** The request or load running now: interruptGenerate aborts it. */
  private current: AbortController | null = null;
  /** Reloads running or queued: unload() aborts them. */
  private readonly loading = new Set<AbortController>();
  private appConfig: AppConfig;
  private initProgressCallback?: InitProgressCallback;
  private logitProcessors?: Map<string, LogitProcessor>;
  private load: PopLoadOptions = {};

  constructor(engineConfig: MLCEngineConfig = {}) {
    this.appConfig = prebuiltAppConfig;
    this.configure(engineConfig);
    this.chat = { completions: { create: ((r: ChatCompletionRequestBase) => this.chatCompletion(r)) as ChatCompletionsApi['create'] } };
    this.completions = { create: ((r: CompletionCreateParamsBase) => this.completion(r)) as CompletionsApi['create'] };
    this.embeddings = { create: (r: unknown) => this.embedding(r) };
  }

  /** Applies an engine config (the constructor's; a worker handler gets its client's this way). Fields not given keep their value. */
  configure(engineConfig: MLCEngineConfig): void {
    checkEngineConfig(engineConfig);
    const { appConfig, initProgressCallback, logitProcessorRegistry, logLevel, ...load } = engineConfig;
    if (appConfig) this.appConfig = appConfig;
    if (initProgressCallback) this.initProgressCallback = initProgressCallback;
    if (logitProcessorRegistry) this.logitProcessors = logitProcessorRegistry;
    if (logLevel) setLogLevel(logLevel);
    this.load = { ...this.load, ...load };
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
    this.appConfig = appConfig;
  }
  setLogLevel(level: LogLevel): void {
    setLogLevel(level);
  }
  setLogitProcessorRegistry(registry?: Map<string, LogitProcessor>): void {
    if (registry !== undefined && !(registry instanceof Map)) throw new InvalidRequestError('logitProcessorRegistry', 'a Map from model id to LogitProcessor', registry);
    this.logitProcessors = registry;
  }

  get loadedModelIds(): readonly string[] {
    return [...this.models.keys()];
  }
  get modelInfo(): ModelInfo | null {
    return this.models.values().next().value?.info ?? null;
  }
  get templateNote(): string | null {
    return this.models.values().next().value?.templateNote ?? null;
  }

  // ------------------------------------------------------------ loading
  /**
   * Unloads what is loaded, then loads each model in turn (WebLLM: chatOpts[i] for modelId[i]).
   * Takes its turn in the request queue.
   */
  async reload(modelId: ModelSpec | ModelSpec[], chatOpts?: ChatOptions | ChatOptions[], options: ReloadOptions = {}): Promise<void> {
    const ids = Array.isArray(modelId) && (modelId.length === 0 || !(modelId[0] instanceof File)) ? (modelId as ModelSpec[]) : [modelId as ModelSpec];
    if (ids.length === 0) throw new InvalidRequestError('modelId', 'a model id or a non-empty array of them', modelId);
    for (const m of ids) if (!(typeof m === 'string' && m.length > 0) && !(Array.isArray(m) && m.every((f) => f instanceof File))) throw new InvalidRequestError('modelId', 'a model id (string) or a folder of Files', m);
    const opts = chatOpts === undefined ? undefined : Array.isArray(chatOpts) ? chatOpts : [chatOpts];
    if (opts && opts.length !== ids.length) throw new InvalidRequestError('chatOpts', `one ChatOptions per model (${ids.length})`, `${opts.length} ChatOptions`);
    opts?.forEach((o, i) => checkChatOptions(o, opts.length > 1 ? `chatOpts[${i}]` : 'chatOpts'));
    const names = ids.map(modelIdOf);
    if (new Set(names).size !== names.length) throw new InvalidRequestError('modelId', 'distinct model ids (copy the ModelRecord under another model_id to load a model twice)', names);
    checkReloadOptions(options);
    const { signal: callerSignal, ...loadOverrides } = options;
    if (callerSignal?.aborted) throw new AbortError('load');
    this.current?.abort();
    // unload() while this load runs or waits stops it (WebLLM's reloadController).
    const loadCtl = new AbortController();
    this.loading.add(loadCtl);
    const signal = callerSignal ? AbortSignal.any([callerSignal, loadCtl.signal]) : loadCtl.signal;
    return this.queue.run(async () => {
      this.unloadAll();
      this.current = loadCtl;
      try {
        for (let i = 0; i < ids.length; i++) {
          if (signal?.aborted) throw new AbortError('load');
          const m = ids[i];
          const id = names[i];
          const { record } = typeof m === 'string' ? findModelRecord(m, this.appConfig) : { record: undefined };
          if (record?.model_type === 1) throw new UnsupportedFeatureError('embedding models', `'${id}' is an embedding model; pop-llm runs generative models only`);
          const chatOptions = { ...(record?.overrides ?? {}), ...(opts?.[i] ?? {}) };
          const source = typeof m === 'string' ? absoluteLocation(record!.model) : filesSource(m, id);
          const progress = this.initProgressCallback;
          const loaded = await ModelSession.load(id, source, { ...this.load, ...loadOverrides, chatOptions, record, signal, onProgress: progress ? (r) => progress(r) : undefined });
          this.models.set(id, loaded);
        }
      } catch (e) {
        this.unloadAll();
        throw e;
      } finally {
        this.loading.delete(loadCtl);
        if (this.current === loadCtl) this.current = null;
      }
    }, signal).finally(() => this.loading.delete(loadCtl));
  }

  /** Unloads every model (after the requests before it in the queue); stops loads under way. */
  unload(): Promise<void> {
    this.current?.abort();
    for (const c of this.loading) c.abort();
    this.loading.clear();
    return this.queue.run(async () => this.unloadAll());
  }

  private unloadAll(): void {
    for (const m of this.models.values()) m.unload();
    this.models.clear();
  }

  /**
   * The model a request or call is for, by WebLLM's rule: `model` names a loaded model; with
   * none given, the only loaded one (several loaded: `model` is required).
   */
  private select(model: string | null | undefined, what: string): ModelSession {
    const ids = [...this.models.keys()];
    if (ids.length === 0) throw new EngineNotLoadedError();
    if (model !== undefined && model !== null) {
      const m = this.models.get(model);
      if (!m) throw new InvalidRequestError(`${what}.model`, `a loaded model id (${ids.join(', ')})`, model);
      return m;
    }
    if (ids.length > 1) throw new InvalidRequestError(`${what}.model`, `one of the loaded models (${ids.join(', ')}): several are loaded`, model);
    return this.models.get(ids[0])!;
  }

  // ------------------------------------------------------------ requests
  chatCompletion(request: ChatCompletionRequestBase & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
  chatCompletion(request: ChatCompletionRequestBase & { stream?: false | null }): Promise<ChatCompletion>;
  chatCompletion(request: ChatCompletionRequestBase): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion>;
  async chatCompletion(request: ChatCompletionRequestBase): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion> {
    checkChatRequest(request);
    return this.generate<ChatCompletionChunk, ChatCompletion>('chat', request, (m) => m.prepareChat(request.messages, { tools: request.tools, toolChoice: request.tool_choice, enableThinking: request.extra_body?.enable_thinking }), {
      chunk: oa.chatChunk,
      final: (r, res) => oa.chatFinalChunks(r, res.choices),
      usage: oa.chatUsageChunk,
      complete: (r, res, usage) => oa.chatCompletion(r, res.choices, usage),
    });
  }

  completion(request: CompletionCreateParamsBase & { stream: true }): Promise<AsyncIterable<Completion>>;
  completion(request: CompletionCreateParamsBase & { stream?: false | null }): Promise<Completion>;
  completion(request: CompletionCreateParamsBase): Promise<AsyncIterable<Completion> | Completion>;
  async completion(request: CompletionCreateParamsBase): Promise<AsyncIterable<Completion> | Completion> {
    checkCompletionRequest(request);
    return this.generate<Completion, Completion>('text', request, async (m) => m.prepareCompletion(request.prompt), {
      chunk: (r, i, d) => oa.textChunk(r, d.content, null, i, d.logprobs),
      final: (r, res) => res.choices.map((c, i) => oa.textChunk(r, '', c.finishReason, i)),
      usage: oa.textUsageChunk,
      complete: (r, res, usage) => oa.textCompletion(r, res.choices, request.echo ? request.prompt : '', usage),
    });
  }

  async embedding(_request: unknown): Promise<never> {
    throw new UnsupportedFeatureError('embeddings', 'pop-llm runs generative models only (chat.completions and completions)');
  }

  /**
   * Runs a checked request in its turn. Streaming: resolves with the chunks once the request
   * starts (as WebLLM's, after the previous requests); chunks arrive as tokens do, then a
   * final one with finish_reason, then (stream_options.include_usage) one with `choices: []`
   * and the usage. Non-streaming: resolves with the whole response, usage included.
   */
  private generate<C, R>(kind: Kind, req: ChatCompletionRequestBase | CompletionCreateParamsBase, prepare: (m: ModelSession) => Promise<PreparedPrompt>, build: {
    chunk: (r: oa.ResponseIdentity, choice: number, delta: ChoiceDelta) => C;
    final: (r: oa.ResponseIdentity, res: RunResult) => C[];
    usage: (r: oa.ResponseIdentity, u: ReturnType<typeof oa.buildUsage>) => C;
    complete: (r: oa.ResponseIdentity, res: RunResult, u: ReturnType<typeof oa.buildUsage>) => R;
  }): Promise<AsyncIterable<C> | R> {
    const received = performance.now();
    if (req.signal?.aborted) return Promise.reject(new AbortError('queue'));
    const what = kind === 'chat' ? 'ChatCompletionRequest' : 'CompletionCreateParams';
    return new Promise<AsyncIterable<C> | R>((resolve, reject) => {
      const stream = req.stream ? new ChunkStream<C>() : null;
      let started = false;
      this.queue.run(async () => {
        const m = this.select(req.model, what);
        const ctl = new AbortController();
        const onAbort = () => ctl.abort();
        if (req.signal?.aborted) throw new AbortError('queue');
        req.signal?.addEventListener('abort', onAbort, { once: true });
        this.current = ctl;
        try {
          await this.recoverDevice(m, ctl.signal);
          const prompt = await prepare(m);
          const identity = oa.newResponseIdentity(m.modelId);
          if (stream) {
            started = true;
            resolve(stream);
          }
          const res = await m.run(prompt, {
            maxTokens: req.max_tokens, temperature: req.temperature, topP: req.top_p, topK: req.top_k,
            seed: req.seed ?? randomSeed(), pop: req.pop, ignoreEos: req.ignore_eos, stop: req.stop,
            signal: ctl.signal, logitProcessor: this.logitProcessors?.get(m.modelId),
            frequencyPenalty: req.frequency_penalty, presencePenalty: req.presence_penalty, repetitionPenalty: req.repetition_penalty,
            logitBias: req.logit_bias, minP: req.min_p, topLogprobs: req.logprobs ? req.top_logprobs ?? 0 : undefined, n: req.n,
            grammar: kind === 'chat' ? responseGrammar((req as ChatCompletionRequestBase).response_format) : null,
            reasoning: kind === 'chat',
          }, (choice, delta) => stream?.push(build.chunk(identity, choice, delta)));
          const usage = oa.buildUsage(res.stats, (performance.now() - received) / 1000, res.popFallback);
          if (!stream) return resolve(build.complete(identity, res, usage));
          for (const c of build.final(identity, res)) stream.push(c);
          if (req.stream_options?.include_usage) stream.push(build.usage(identity, usage));
          stream.end();
        } finally {
          req.signal?.removeEventListener('abort', onAbort);
          if (this.current === ctl) this.current = null;
        }
      }, req.signal).catch((e) => {
        if (started) stream!.end(e);
        else reject(e);
      });
    });
  }

  /**
   * Ends the running request with finish_reason 'abort' (queued ones still run, as WebLLM), or
   * stops the load that runs (ABORTED) at its next stage: download, upload, kernel compile, warm-up.
   */
  interruptGenerate(): void {
    this.current?.abort();
  }

  /**
   * A model whose device was lost (the request on it failed with DEVICE_LOST) loads again on a
   * new device before the call that needs it runs; `signal` (the call's) stops that load.
   */
  private async recoverDevice(m: ModelSession, signal?: AbortSignal): Promise<void> {
    if (!m.needsRecovery) return;
    const progress = this.initProgressCallback;
    await m.recover({ signal, onProgress: progress ? (r) => progress(r) : undefined });
  }

  /**
   * Fault injection, for tests and debugging only (an app never needs it): 'device-lost'
   * destroys a loaded model's GPU device at once, as a driver reset would (what runs on it
   * fails with DEVICE_LOST; the next call loads the model again on a new device);
   * 'block-thread' busy-loops the engine's thread for `ms` from its next task (a stuck worker:
   * the worker client's heartbeat reports WORKER_UNRESPONSIVE). Both act outside the queue.
   */
  async injectFault(fault: InjectedFault): Promise<void> {
    const f = fault as { kind?: unknown; ms?: unknown; modelId?: unknown };
    if (f?.kind === 'device-lost') {
      this.select(f.modelId as string | undefined, 'injectFault').destroyDeviceForTesting();
      return;
    }
    if (f?.kind === 'block-thread') {
      const ms = f.ms;
      if (typeof ms !== 'number' || !(ms >= 0 && ms <= 600_000)) throw new InvalidRequestError('fault.ms', 'a number of milliseconds in [0, 600000]', ms);
      // From the next task, so that this call's answer gets out first.
      setTimeout(() => {
        const end = performance.now() + ms;
        while (performance.now() < end) {
          /* stuck on purpose */
        }
      }, 0);
      return;
    }
    throw new InvalidRequestError('fault.kind', "'device-lost' | 'block-thread'", f?.kind);
  }

  async resetChat(_keepStats = false, modelId?: string): Promise<void> {
    if (this.models.size === 0) return; // WebLLM: a no-op before a load
    const m = this.select(modelId, 'resetChat');
    await this.queue.run(async () => {
      m.resetChat();
      this.logitProcessors?.get(m.modelId)?.resetState();
    });
  }

  async getMessage(modelId?: string): Promise<string> {
    return this.select(modelId, 'getMessage').message;
  }

  async runtimeStatsText(modelId?: string): Promise<string> {
    return this.select(modelId, 'runtimeStatsText').runtimeStatsText();
  }

  forwardTokensAndSample(inputIds: number[], _isPrefill: boolean, modelId?: string): Promise<number> {
    if (!Array.isArray(inputIds) || inputIds.length === 0) return Promise.reject(new InvalidRequestError('inputIds', 'a non-empty array of token ids', inputIds));
    return this.queue.run(async () => {
      const m = this.select(modelId, 'forwardTokensAndSample');
      await this.recoverDevice(m);
      return m.forwardTokensAndSample(inputIds, { seed: randomSeed(), logitProcessor: this.logitProcessors?.get(m.modelId) });
    });
  }

  async getMaxStorageBufferBindingSize(): Promise<number> {
    const adapter = await navigator.gpu?.requestAdapter();
    if (!adapter) throw new NoWebGPUError('no suitable GPU adapter');
    const n = adapter.limits.maxStorageBufferBindingSize;
    if (n < 1 << 30) log.warn(`maxStorageBufferBindingSize is ${Math.ceil(n / (1 << 20))} MB: larger tensors are stored in row parts`);
    return n;
  }

  async getGPUVendor(): Promise<string> {
    const adapter = await navigator.gpu?.requestAdapter();
    if (!adapter) throw new NoWebGPUError('no suitable GPU adapter');
    return adapter.info?.vendor ?? '';
  }

  /** GPU memory (every live buffer; the first model's weights, KV cache, scratch) and the JS heap. */
  async stats(): Promise<RuntimeStats> {
    const first = this.models.values().next().value;
    return first ? first.stats() : runtimeStats(null);
  }

  checkFit(model: string, options: { contextWindow?: number; hubBase?: string; memoryBytes?: number } = {}): Promise<FitReport> {
    return checkModelFit(absoluteLocation(findModelRecord(model, this.appConfig).record.model), { ...this.load, ...options });
  }

  deleteCachedModel(model: string, hubBase?: string): Promise<void> {
    return deleteCachedModel(absoluteLocation(findModelRecord(model, this.appConfig).record.model), hubBase ?? this.load.hubBase);
  }
}

/**
 * The grammar a response_format asks for: WebLLM's { type: 'json_object', schema? } and
 * { type: 'grammar', grammar } (EBNF), OpenAI's { type: 'json_schema', json_schema: { name,
 * schema, strict } }; 'text' or none: null.
 */
export function responseGrammar(f: ResponseFormat | null | undefined): GrammarSpec | null {
  if (!f || f.type === 'text' || f.type === undefined) return null;
  if (f.type === 'json_object') return f.schema ? { kind: 'json_schema', schema: typeof f.schema === 'string' ? f.schema : JSON.stringify(f.schema) } : { kind: 'json' };
  if (f.type === 'grammar') return { kind: 'ebnf', grammar: f.grammar! };
  const js = f.json_schema!;
  return { kind: 'json_schema', schema: JSON.stringify(js.schema ?? { type: 'object' }), strict: js.strict ?? undefined };
}

/** Creates an MLCEngine in this thread and loads the model(s), as WebLLM's CreateMLCEngine. */
export async function CreateMLCEngine(modelId: ModelSpec | ModelSpec[], engineConfig?: MLCEngineConfig, chatOpts?: ChatOptions | ChatOptions[]): Promise<MLCEngine> {
  const engine = new MLCEngine(engineConfig);
  await engine.reload(modelId, chatOpts);
  return engine;
}
