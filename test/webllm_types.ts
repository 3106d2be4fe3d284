// Compile-time only (tsc --noEmit): pop-llm's own API types stay compatible with WebLLM
// 0.2.79's, so code written for WebLLM type-checks against pop-llm with the import changed.
// Requests: WebLLM's are accepted by pop-llm. Responses: pop-llm's are WebLLM's.
import type * as W from '@mlc-ai/web-llm';
import type * as P from '../src/api/index.ts';

type Assert<A extends B, B> = A;

export type Requests = [
  Assert<W.ChatCompletionRequestBase, P.ChatCompletionRequestBase>,
  Assert<W.ChatCompletionRequestStreaming, P.ChatCompletionRequestStreaming>,
  Assert<W.ChatCompletionRequestNonStreaming, P.ChatCompletionRequestNonStreaming>,
  Assert<W.CompletionCreateParamsBase, P.CompletionCreateParamsBase>,
  Assert<W.ChatOptions, P.ChatOptions>,
  Assert<W.ModelRecord, P.ModelRecord>,
  Assert<W.AppConfig, P.AppConfig>,
  Assert<W.MLCEngineConfig, P.MLCEngineConfig>,
  Assert<W.LogitProcessor, P.LogitProcessor>,
  Assert<W.InitProgressReport, P.InitProgressReport>,
  Assert<W.LogLevel, P.LogLevel>,
];

export type Responses = [
  Assert<P.ChatCompletion, W.ChatCompletion>,
  Assert<P.ChatCompletionChunk, W.ChatCompletionChunk>,
  Assert<P.Completion, W.Completion>,
  Assert<P.CompletionUsage, W.CompletionUsage>,
  Assert<P.ChatCompletionFinishReason, W.ChatCompletionFinishReason>,
];
