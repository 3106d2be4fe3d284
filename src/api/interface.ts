// The one engine interface, implemented by both hosts: MLCEngine (in the page, or inside a
// worker) and WebWorkerMLCEngine (the page's client of an engine in a worker). WebLLM's
// MLCEngineInterface, plus pop-llm's extras; test/api_interface.spec.ts checks both hosts.
import type { FitReport } from '../model/fit.ts';
import type {
  AppConfig, ChatCompletion, ChatCompletionChunk, ChatCompletionRequestBase, ChatCompletionRequestNonStreaming, ChatCompletionRequestStreaming,
  ChatOptions, Completion, CompletionCreateParamsBase, CompletionCreateParamsNonStreaming, CompletionCreateParamsStreaming,
  InitProgressCallback, LogitProcessor, LogLevel, ModelInfo, PopLoadOptions,
} from './protocol.ts';

export interface ChatCompletionsApi {
  create(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion>;
  create(request: ChatCompletionRequestStreaming): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(request: ChatCompletionRequestBase): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion>;
}
export interface CompletionsApi {
  create(request: CompletionCreateParamsNonStreaming): Promise<Completion>;
  create(request: CompletionCreateParamsStreaming): Promise<AsyncIterable<Completion>>;
  create(request: CompletionCreateParamsBase): Promise<AsyncIterable<Completion> | Completion>;
}
export interface EmbeddingsApi {
  /** Refused (UNSUPPORTED_FEATURE): pop-llm runs generative models only. */
  create(request: unknown): Promise<never>;
}

/** pop-llm's own options for reload (beyond WebLLM's modelId and chatOpts): load options for this load, and a signal. */
export interface ReloadOptions extends PopLoadOptions {
  /** Cancels the load (ABORTED). */
  signal?: AbortSignal;
}

/**
 * A fault to inject (tests and debugging only): destroy a loaded model's GPU device, or keep the
 * engine's thread busy for `ms` (a worker that is alive but stuck). MLCEngine.injectFault says more.
 */
export type InjectedFault = { kind: 'device-lost'; modelId?: string } | { kind: 'block-thread'; ms: number };

/** A model to load: a model id (a record of the AppConfig, or itself a URL, path or Hub id), or (pop-llm) a local folder's files. */
export type ModelSpec = string | File[];

export interface MLCEngineInterface {
  readonly chat: { completions: ChatCompletionsApi };
  readonly completions: CompletionsApi;
  readonly embeddings: EmbeddingsApi;

  setInitProgressCallback(cb?: InitProgressCallback): void;
  getInitProgressCallback(): InitProgressCallback | undefined;
  setAppConfig(appConfig: AppConfig): void;
  setLogLevel(level: LogLevel): void;
  /** In-page engines take the processors; a worker client refuses (set them in the worker, on its handler). */
  setLogitProcessorRegistry(registry?: Map<string, LogitProcessor>): void;

  reload(modelId: ModelSpec | ModelSpec[], chatOpts?: ChatOptions | ChatOptions[], options?: ReloadOptions): Promise<void>;
  unload(): Promise<void>;

  chatCompletion(request: ChatCompletionRequestNonStreaming): Promise<ChatCompletion>;
  chatCompletion(request: ChatCompletionRequestStreaming): Promise<AsyncIterable<ChatCompletionChunk>>;
  chatCompletion(request: ChatCompletionRequestBase): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion>;
  completion(request: CompletionCreateParamsNonStreaming): Promise<Completion>;
  completion(request: CompletionCreateParamsStreaming): Promise<AsyncIterable<Completion>>;
  completion(request: CompletionCreateParamsBase): Promise<AsyncIterable<Completion> | Completion>;
  embedding(request: unknown): Promise<never>;

  interruptGenerate(): void;
  resetChat(keepStats?: boolean, modelId?: string): Promise<void>;
  getMessage(modelId?: string): Promise<string>;
  runtimeStatsText(modelId?: string): Promise<string>;
  forwardTokensAndSample(inputIds: number[], isPrefill: boolean, modelId?: string): Promise<number>;
  getMaxStorageBufferBindingSize(): Promise<number>;
  getGPUVendor(): Promise<string>;

  // pop-llm's extras
  /** Whether a model fits this device and browser, before downloading it (grey out models). */
  checkFit(model: string, options?: { contextWindow?: number; hubBase?: string; memoryBytes?: number }): Promise<FitReport>;
  /** Removes a downloaded model from the browser cache. */
  deleteCachedModel(model: string, hubBase?: string): Promise<void>;
  /** Ids of the loaded models, in load order. */
  readonly loadedModelIds: readonly string[];
  /** After reload: the (first) model's layers, context window and quantization; null before. */
  readonly modelInfo: ModelInfo | null;
  /** After reload: set when the (first) model has no chat template. */
  readonly templateNote: string | null;
  /** Fault injection for tests and debugging (never needed by an app): see MLCEngine.injectFault. */
  injectFault(fault: InjectedFault): Promise<void>;
}
