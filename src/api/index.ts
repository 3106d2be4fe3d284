// The public API, in one module: every runtime name and type an app uses (WebLLM's names,
// and pop-llm's earlier ones as aliases). src/index.ts re-exports this.
export { MLCEngine, CreateMLCEngine } from './engine.ts';
export { WebWorkerMLCEngine, CreateWebWorkerMLCEngine, CreateWorkerEngine, WorkerEngine, DEFAULT_HEARTBEAT, type ChatWorker, type HeartbeatOptions } from './client.ts';
export { WebWorkerMLCEngineHandler } from './worker_handler.ts';
export { ServiceWorkerMLCEngineHandler, ServiceWorkerMLCEngine, CreateServiceWorkerMLCEngine } from './service_worker.ts';
export { prebuiltAppConfig } from './app_config.ts';
export { hasModelInCache, deleteModelAllInfoInCache, deleteModelInCache, deleteChatConfigInCache, deleteModelWasmInCache } from './cache.ts';
export { LOG_LEVELS, ModelType } from './protocol.ts';
export {
  CHAT_REQUEST_FIELDS, COMPLETION_REQUEST_FIELDS, ENGINE_CONFIG_FIELDS, CHAT_OPTIONS_FIELDS, MODEL_RECORD_FIELDS, MESSAGE_FIELDS, type FieldRule, type FieldTable,
} from './request_fields.ts';
export type { MLCEngineInterface, ChatCompletionsApi, CompletionsApi, EmbeddingsApi, ModelSpec, ReloadOptions, InjectedFault } from './interface.ts';
export type {
  AppConfig, ModelRecord, ChatOptions, ChatConfig, MLCEngineConfig, EngineConfig, PopLoadOptions, ModelInfo,
  InitProgressReport, InitProgressCallback, LogLevel, LogitProcessor, PopSetting,
  ChatCompletionRequest, ChatCompletionRequestBase, ChatCompletionRequestStreaming, ChatCompletionRequestNonStreaming,
  CompletionCreateParams, CompletionCreateParamsBase, CompletionCreateParamsStreaming, CompletionCreateParamsNonStreaming,
  CompletionRequest, CompletionRequestBase, CompletionRequestStreaming, CompletionRequestNonStreaming,
  ChatCompletion, ChatCompletionChunk, ChatCompletionChoice, ChatCompletionChunkChoice, ChatCompletionChunkDelta, ChatCompletionMessage,
  Completion, CompletionChunk, CompletionChoice, CompletionUsage, ChatCompletionFinishReason, FinishReason,
  ChatCompletionMessageParam, ChatCompletionSystemMessageParam, ChatCompletionUserMessageParam, ChatCompletionAssistantMessageParam, ChatCompletionToolMessageParam,
  ChatCompletionContentPart, ChatCompletionContentPartText, ChatCompletionContentPartImage, ChatCompletionRole, ChatCompletionMessageToolCall,
  ChatCompletionTool, ChatCompletionToolChoiceOption, ChatCompletionNamedToolChoice, FunctionDefinition, ResponseFormat, ChatCompletionStreamOptions,
  ChatCompletionTokenLogprob, TopLogprob, Logprobs, PopRequestFields, SamplingRequest,
} from './protocol.ts';
export type { FitReport } from '../model/fit.ts';
