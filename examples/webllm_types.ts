// Compile-time check, run by `npm test`'s tsc step once examples/ is in tsconfig.json's
// include: pop-llm's own OpenAI-shaped types stay assignable to WebLLM 0.2.79's. Responses and chunks: pop-llm's objects fit where code
// typed against WebLLM expects them. Requests, messages and configs: what code written for
// WebLLM builds is accepted by pop-llm's signatures. A type that drifts fails the build here.
import type * as W from '@mlc-ai/web-llm';
import type * as P from 'pop-llm';

/** Compiles only when A is assignable to B. */
type Assignable<A, B> = [A] extends [B] ? true : false;
function expectAssignable<T extends true>(): T | void {}

// What pop-llm returns, where WebLLM's type is expected.
expectAssignable<Assignable<P.ChatCompletion, W.ChatCompletion>>();
expectAssignable<Assignable<P.ChatCompletionChunk, W.ChatCompletionChunk>>();
expectAssignable<Assignable<P.Completion, W.Completion>>();
expectAssignable<Assignable<P.CompletionUsage, W.CompletionUsage>>();
expectAssignable<Assignable<P.ChatCompletionFinishReason, W.ChatCompletionFinishReason>>();
expectAssignable<Assignable<P.InitProgressReport, W.InitProgressReport>>();

// What WebLLM code builds, where pop-llm takes it.
expectAssignable<Assignable<W.ChatCompletionRequest, P.ChatCompletionRequest>>();
expectAssignable<Assignable<W.ChatCompletionRequestStreaming, P.ChatCompletionRequestStreaming>>();
expectAssignable<Assignable<W.ChatCompletionRequestNonStreaming, P.ChatCompletionRequestNonStreaming>>();
expectAssignable<Assignable<W.CompletionCreateParams, P.CompletionCreateParams>>();
expectAssignable<Assignable<W.ChatCompletionMessageParam, P.ChatCompletionMessageParam>>();
expectAssignable<Assignable<W.ChatOptions, P.ChatOptions>>();
expectAssignable<Assignable<W.ModelRecord, P.ModelRecord>>();
expectAssignable<Assignable<W.AppConfig, P.AppConfig>>();
expectAssignable<Assignable<W.MLCEngineConfig, P.MLCEngineConfig>>();
expectAssignable<Assignable<W.InitProgressCallback, P.InitProgressCallback>>();

// The check can fail: a finish reason WebLLM does not have is refused.
// @ts-expect-error 'done' is not a WebLLM finish reason
expectAssignable<Assignable<P.ChatCompletionFinishReason | 'done', W.ChatCompletionFinishReason>>();
