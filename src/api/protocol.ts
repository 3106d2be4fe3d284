// The public shapes of the API, owned here: WebLLM 0.2.79's names and fields (the OpenAI-style
// requests, responses and chunks, ChatOptions, AppConfig/ModelRecord, the engine config), plus
// pop-llm's own fields, each marked "pop-llm". Nothing public imports from @mlc-ai/web-llm
// (a devDependency); test/webllm_types.ts (compile-time) keeps them compatible with WebLLM's.
import type { PopSetting } from '../engine/pop.ts';

export type { PopSetting };

// ---------------------------------------------------------------- messages
export interface ChatCompletionContentPartText { type: 'text'; text: string }
export interface ChatCompletionContentPartImage {
  type: 'image_url';
  image_url: {
    /** An http(s), data: or blob: URL; pop-llm also takes a File, Blob, ImageBitmap, <img> or canvas. */
    url: string | Blob | ImageBitmap | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas;
    detail?: 'auto' | 'low' | 'high';
  };
}
export type ChatCompletionContentPart = ChatCompletionContentPartText | ChatCompletionContentPartImage;
export interface ChatCompletionMessageToolCall { id: string; type: 'function'; function: { name: string; arguments: string } }
export interface ChatCompletionSystemMessageParam { role: 'system'; content: string }
export interface ChatCompletionUserMessageParam { role: 'user'; content: string | ChatCompletionContentPart[]; name?: string }
export interface ChatCompletionAssistantMessageParam { role: 'assistant'; content?: string | null; name?: string; tool_calls?: ChatCompletionMessageToolCall[] }
export interface ChatCompletionToolMessageParam { role: 'tool'; content: string; tool_call_id: string }
export type ChatCompletionMessageParam = ChatCompletionSystemMessageParam | ChatCompletionUserMessageParam | ChatCompletionAssistantMessageParam | ChatCompletionToolMessageParam;
export type ChatCompletionRole = 'system' | 'user' | 'assistant' | 'tool' | 'function';

export interface FunctionDefinition { name: string; description?: string; parameters?: Record<string, unknown> }
export interface ChatCompletionTool { type: 'function'; function: FunctionDefinition }
export interface ChatCompletionNamedToolChoice { type: 'function'; function: { name: string } }
export type ChatCompletionToolChoiceOption = 'none' | 'auto' | ChatCompletionNamedToolChoice;
/** WebLLM's { type: 'json_object', schema? } / { type: 'grammar', grammar }, and OpenAI's { type: 'json_schema', json_schema }. */
export interface ResponseFormat {
  type?: 'text' | 'json_object' | 'grammar' | 'json_schema';
  schema?: string | Record<string, unknown>;
  grammar?: string;
  json_schema?: { name: string; description?: string; schema?: Record<string, unknown>; strict?: boolean | null };
}
export interface ChatCompletionStreamOptions { include_usage?: boolean }

// ---------------------------------------------------------------- requests
/** Fields pop-llm adds to every generation request. */
export interface PopRequestFields {
  /** pop-llm: POP for this request: 'off' | 'exact' | 'auto' | a keep | {ratio}. */
  pop?: PopSetting;
  /** pop-llm: top-k sampling (0 = off). */
  top_k?: number;
  /** pop-llm: cancels this request (queued: rejects with ABORTED; running: finish_reason 'abort'). */
  signal?: AbortSignal;
}

/** Fields common to chat and text completion requests (WebLLM's GenerationConfig). */
export interface SamplingRequest extends PopRequestFields {
  stream?: boolean | null;
  stream_options?: ChatCompletionStreamOptions | null;
  n?: number | null;
  frequency_penalty?: number | null;
  presence_penalty?: number | null;
  max_tokens?: number | null;
  stop?: string | null | string[];
  temperature?: number | null;
  top_p?: number | null;
  logit_bias?: Record<string, number> | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  /** WebLLM's: the CTRL / transformers repetition penalty (> 0; 1 = off) over prompt and reply tokens. */
  repetition_penalty?: number | null;
  /** pop-llm: keep tokens with p >= min_p * p_max (0..1). */
  min_p?: number | null;
  seed?: number | null;
  ignore_eos?: boolean;
  model?: string | null;
}

export interface ChatCompletionRequestBase extends SamplingRequest {
  messages: ChatCompletionMessageParam[];
  tool_choice?: ChatCompletionToolChoiceOption;
  tools?: ChatCompletionTool[];
  response_format?: ResponseFormat;
  extra_body?: { enable_thinking?: boolean | null };
}
export interface ChatCompletionRequestStreaming extends ChatCompletionRequestBase { stream: true }
export interface ChatCompletionRequestNonStreaming extends ChatCompletionRequestBase { stream?: false | null }
export type ChatCompletionRequest = ChatCompletionRequestStreaming | ChatCompletionRequestNonStreaming;

export interface CompletionCreateParamsBase extends SamplingRequest {
  prompt: string;
  echo?: boolean | null;
  suffix?: string | null;
  user?: string;
  best_of?: number | null;
}
export interface CompletionCreateParamsStreaming extends CompletionCreateParamsBase { stream: true }
export interface CompletionCreateParamsNonStreaming extends CompletionCreateParamsBase { stream?: false | null }
export type CompletionCreateParams = CompletionCreateParamsStreaming | CompletionCreateParamsNonStreaming;
/** Earlier pop-llm names of the completion request types. */
export type CompletionRequestBase = CompletionCreateParamsBase;
export type CompletionRequestStreaming = CompletionCreateParamsStreaming;
export type CompletionRequestNonStreaming = CompletionCreateParamsNonStreaming;
export type CompletionRequest = CompletionCreateParams;

// ---------------------------------------------------------------- responses
export type ChatCompletionFinishReason = 'stop' | 'length' | 'tool_calls' | 'abort';
export type FinishReason = ChatCompletionFinishReason;

export interface TopLogprob { token: string; bytes: number[] | null; logprob: number }
export interface ChatCompletionTokenLogprob extends TopLogprob { top_logprobs: TopLogprob[] }
export interface Logprobs { content: ChatCompletionTokenLogprob[] | null }

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  extra: {
    e2e_latency_s: number;
    prefill_tokens_per_s: number;
    decode_tokens_per_s: number;
    time_to_first_token_s: number;
    time_per_output_token_s: number;
    grammar_init_s?: number;
    grammar_per_token_s?: number;
    /** pop-llm: time to first token in ms, as the engine measured it. */
    ttft_ms: number;
    /** pop-llm: layers prompt tokens ran through (= layers when POP is off). */
    pop_keep: number;
    /** pop-llm: why that keep ran ('exact' picks the smallest lossless keep of the model). */
    pop_keep_reason?: string;
    /** pop-llm: the model's layer count. */
    layers: number;
    /** pop-llm: prompt tokens whose K/V came from the previous round (multi-round reuse). */
    reused_prompt_tokens: number;
    /** pop-llm: set when `pop: 'auto'` had no calibration (pop.json) and ran this instead. */
    pop_fallback?: 'exact';
  };
}

export interface ChatCompletionMessage { role: 'assistant'; content: string | null; tool_calls?: ChatCompletionMessageToolCall[]; /** Thinking models: the <think> part. */ reasoning_content?: string | null }
export interface ChatCompletionChoice { index: number; message: ChatCompletionMessage; finish_reason: ChatCompletionFinishReason; logprobs: Logprobs | null }
export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: ChatCompletionChoice[];
  /** Always present (as OpenAI's non-streaming responses). */
  usage: CompletionUsage;
  system_fingerprint?: string;
}

export interface ChatCompletionChunkDelta { role?: 'system' | 'user' | 'assistant' | 'tool'; content?: string | null; reasoning_content?: string | null; tool_calls?: (ChatCompletionMessageToolCall & { index: number })[] }
export interface ChatCompletionChunkChoice { index: number; delta: ChatCompletionChunkDelta; finish_reason: ChatCompletionFinishReason | null; logprobs?: Logprobs | null }
export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  /** Empty on the usage chunk (the last one, only with stream_options.include_usage). */
  choices: ChatCompletionChunkChoice[];
  usage?: CompletionUsage;
  system_fingerprint?: string;
}

export interface CompletionChoice { index: number; text: string; finish_reason: ChatCompletionFinishReason | null; logprobs?: Logprobs | null }
/** A text completion, and (as WebLLM) each streamed piece of one. */
export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage?: CompletionUsage;
  system_fingerprint?: string;
}
/** Earlier pop-llm name of a streamed text completion piece. */
export type CompletionChunk = Completion;

// ---------------------------------------------------------------- config
export interface InitProgressReport { progress: number; timeElapsed: number; text: string }
export type InitProgressCallback = (report: InitProgressReport) => void;

export const LOG_LEVELS = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, SILENT: 5 } as const;
export type LogLevel = keyof typeof LOG_LEVELS;

/**
 * A stateful hook between the forward pass and sampling, as WebLLM's: `processLogits` gets
 * the logits on the CPU and returns the ones to sample from; `processSampledToken` sees each
 * token sampled; `resetState` runs on resetChat.
 */
export interface LogitProcessor {
  processLogits: (logits: Float32Array) => Float32Array;
  processSampledToken: (token: number) => void;
  resetState: () => void;
}

/** WebLLM's ChatConfig fields that a ChatOptions may override (see request_fields.ts for what is honoured). */
export interface ChatConfig {
  tokenizer_files: string[];
  tokenizer_info?: { token_postproc_method: string; prepend_space_in_encode: boolean; strip_space_in_decode: boolean };
  token_table_postproc_method?: string;
  vocab_size: number;
  conv_config?: object;
  conv_template: object;
  context_window_size: number;
  sliding_window_size: number;
  attention_sink_size: number;
  repetition_penalty: number;
  frequency_penalty: number;
  presence_penalty: number;
  top_p: number;
  temperature: number;
  bos_token_id?: number;
}
export type ChatOptions = Partial<ChatConfig>;

export enum ModelType { LLM = 0, embedding = 1, VLM = 2 }

export interface ModelRecord {
  /** Where the model is: a URL (relative ones are the page's), or a Hugging Face Hub id. */
  model: string;
  /** The name requests and reload() use. */
  model_id: string;
  /** WebLLM's compiled model library; pop-llm runs its own kernels and never fetches it. */
  model_lib?: string;
  overrides?: ChatOptions;
  vram_required_MB?: number;
  low_resource_required?: boolean;
  buffer_size_required_bytes?: number;
  required_features?: string[];
  model_type?: ModelType;
}
export interface AppConfig {
  model_list: ModelRecord[];
  useIndexedDBCache?: boolean;
}

/** How pop-llm loads a model (its own EngineConfig fields). */
export interface PopLoadOptions {
  /** Default POP setting for requests that give none. */
  pop?: PopSetting;
  /** Same as ChatOptions.context_window_size (earlier pop-llm name). */
  contextWindow?: number;
  /** Base URL for Hub ids (defaults to https://huggingface.co). */
  hubBase?: string;
  /** Keep downloads in the browser cache (default true). */
  useCache?: boolean;
  /** Matmul weight storage: 'auto' (default: f16 where the adapter has shader-f16), 'f32' or 'f16'. */
  weightDtype?: 'auto' | 'f32' | 'f16';
  /** KV cache storage: 'auto' (default: f16 where the adapter has shader-f16), 'f32' or 'f16' (half the bytes). */
  kvDtype?: 'auto' | 'f32' | 'f16';
  /** VLMs: largest image accepted, in decoded pixels (default 8192 x 8192); larger images get IMAGE_TOO_LARGE. */
  maxImagePixels?: number;
  /** Device memory the weights and KV cache may take, in bytes: a larger model is refused before download (MODEL_TOO_LARGE). */
  memoryBytes?: number;
  /** int4 weight-only quantization on load (group 32): 'none' (default), 'q4' (symmetric) or 'q4-asym'. */
  quantization?: 'none' | 'q4' | 'q4-asym';
  /** The older LM-head switch (when lmHeadDtype is not given): true = int4, false = unquantized. */
  quantizeLmHead?: boolean;
  /** Embedding tables: 'auto' (default: 'q4' with quantization, else 'f32'), 'q4', 'f16' or 'f32'. */
  embeddingDtype?: 'auto' | 'q4' | 'f16' | 'f32';
  /** LM head: 'auto' (default: 'q4' with quantization, a tied head then reads the q4 embedding; else weightDtype), 'q4', 'f16' or 'f32'. */
  lmHeadDtype?: 'auto' | 'q4' | 'f16' | 'f32';
  /** Scan the weights for NaN / Inf while they load (MALFORMED_WEIGHTS; default true). false: a trusted source, skip it. */
  checkWeights?: boolean;
}

/** WebLLM's MLCEngineConfig plus pop-llm's load options. */
export interface MLCEngineConfig extends PopLoadOptions {
  appConfig?: AppConfig;
  initProgressCallback?: InitProgressCallback;
  logitProcessorRegistry?: Map<string, LogitProcessor>;
  logLevel?: LogLevel;
}
export type EngineConfig = MLCEngineConfig;

/** What a UI needs to know about a loaded model. */
export interface ModelInfo { layers: number; contextWindow: number; quantization: 'none' | 'q4' | 'q4-asym' }
