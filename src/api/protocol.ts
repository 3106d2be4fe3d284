// The OpenAI-style request and response shapes, following WebLLM's engine conventions
// (own types: the package's declarations cannot import WebLLM, a devDependency). Streaming
// and non-streaming requests are typed apart so `create` returns the right thing.
import type { PopSetting } from '../engine/pop.ts';

export type ChatCompletionContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string | Blob | ImageBitmap | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas } };
export type ChatCompletionMessageParam =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string | ChatCompletionContentPart[]; name?: string }
  | { role: 'assistant'; content?: string | null; name?: string }
  | { role: 'tool'; content: string; tool_call_id: string };
export interface InitProgressReport { progress: number; timeElapsed: number; text: string }

export interface SamplingRequest {
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  seed?: number;
  stop?: string | string[];
  /** POP for this request: off | exact | auto | keep | {ratio}. */
  pop?: PopSetting;
  ignore_eos?: boolean;
  signal?: AbortSignal;
}

export interface ChatCompletionRequestBase extends SamplingRequest {
  messages: ChatCompletionMessageParam[];
  model?: string;
}
export interface ChatCompletionRequestStreaming extends ChatCompletionRequestBase { stream: true }
export interface ChatCompletionRequestNonStreaming extends ChatCompletionRequestBase { stream?: false | null }
export type ChatCompletionRequest = ChatCompletionRequestStreaming | ChatCompletionRequestNonStreaming;

export interface CompletionRequestBase extends SamplingRequest {
  prompt: string;
  model?: string;
}
export interface CompletionRequestStreaming extends CompletionRequestBase { stream: true }
export interface CompletionRequestNonStreaming extends CompletionRequestBase { stream?: false | null }
export type CompletionRequest = CompletionRequestStreaming | CompletionRequestNonStreaming;

export type FinishReason = 'stop' | 'length' | 'abort';

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  extra: {
    ttft_ms: number;
    prefill_tokens_per_s: number;
    decode_tokens_per_s: number;
    /** Layers prompt tokens ran through (= num layers when POP is off). */
    pop_keep: number;
    /** Why that keep ran ('exact' picks the smallest lossless keep of the model: src/engine/pop.ts). */
    pop_keep_reason: string;
    layers: number;
    /** Prompt tokens whose K/V came from the previous turn (multi-turn reuse). */
    reused_prompt_tokens: number;
    e2e_latency_s: number;
    time_to_first_token_s: number;
  };
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: { index: number; delta: { role?: 'assistant'; content?: string }; finish_reason: FinishReason | null }[];
  usage?: CompletionUsage;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: { index: number; message: { role: 'assistant'; content: string }; finish_reason: FinishReason }[];
  usage: CompletionUsage;
}

export interface CompletionChunk {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { index: number; text: string; finish_reason: FinishReason | null }[];
  usage?: CompletionUsage;
}

export interface Completion extends CompletionChunk {
  usage: CompletionUsage;
}

export interface EngineConfig {
  initProgressCallback?: (report: InitProgressReport) => void;
  pop?: PopSetting;
  contextWindow?: number;
  /** Base URL for Hub ids (defaults to https://huggingface.co). */
  hubBase?: string;
  /** Keep downloads in the browser cache (default true). */
  useCache?: boolean;
  /** Matmul weight storage: 'auto' (default: f16 where the adapter has shader-f16), 'f32' or 'f16' (EngineOptions.weightDtype). */
  weightDtype?: 'auto' | 'f32' | 'f16';
  /** VLMs: largest image accepted, in decoded pixels (default 8192 x 8192); larger images get IMAGE_TOO_LARGE. */
  maxImagePixels?: number;
  /**
   * Device memory the model's weights and KV cache may take, in bytes, when the app knows it
   * (WebGPU does not say): a larger model is refused before download (MODEL_TOO_LARGE).
   */
  memoryBytes?: number;
  /** int4 weight-only quantization on load (group 32): 'none' (default), 'q4' (symmetric) or 'q4-asym' (EngineOptions.quantization). */
  quantization?: 'none' | 'q4' | 'q4-asym';
  /** With quantization: the LM head in int4 too (default: kept f32). */
  quantizeLmHead?: boolean;
  /** Scan the weights for NaN / Inf while they load (MALFORMED_WEIGHTS; default true). false: a trusted source, skip it. */
  checkWeights?: boolean;
}
