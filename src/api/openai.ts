// The one place where OpenAI-shaped objects are built: chunks, completions and usage, from
// what a generation reports. The in-page engine builds them; the worker only carries them.
import type { GenerateStats } from '../engine/engine.ts';
import type { ChatCompletion, ChatCompletionChunk, Completion, CompletionUsage, FinishReason } from './protocol.ts';

/** Identity of one response: every chunk of a stream shares it. */
export interface ResponseIdentity { id: string; created: number; model: string }

export function newResponseIdentity(model: string): ResponseIdentity {
  return { id: crypto.randomUUID(), created: Math.floor(Date.now() / 1000), model };
}

/**
 * Usage as WebLLM counts it: prompt_tokens are the tokens prefilled in this round (a
 * multi-round chat reuses the earlier rounds' K/V), completion_tokens those generated.
 */
export function buildUsage(s: GenerateStats, e2eSeconds: number, popFallback: boolean): CompletionUsage {
  return {
    prompt_tokens: s.prefilledTokens,
    completion_tokens: s.completionTokens,
    total_tokens: s.prefilledTokens + s.completionTokens,
    extra: {
      e2e_latency_s: e2eSeconds,
      prefill_tokens_per_s: s.prefillTokensPerS,
      decode_tokens_per_s: s.decodeTokensPerS,
      time_to_first_token_s: s.ttftMs / 1000,
      time_per_output_token_s: s.completionTokens > 0 ? s.decodeMs / 1000 / s.completionTokens : 0,
      ttft_ms: s.ttftMs,
      pop_keep: s.keep,
      layers: s.layers,
      reused_prompt_tokens: s.reusedTokens,
      ...(popFallback ? { pop_fallback: 'exact' as const } : {}),
    },
  };
}

export function chatChunk(r: ResponseIdentity, content: string): ChatCompletionChunk {
  return { id: r.id, object: 'chat.completion.chunk', created: r.created, model: r.model, choices: [{ index: 0, delta: { role: 'assistant', content }, finish_reason: null, logprobs: null }] };
}
export function chatFinalChunk(r: ResponseIdentity, finish: FinishReason): ChatCompletionChunk {
  return { id: r.id, object: 'chat.completion.chunk', created: r.created, model: r.model, choices: [{ index: 0, delta: {}, finish_reason: finish, logprobs: null }] };
}
export function chatUsageChunk(r: ResponseIdentity, usage: CompletionUsage): ChatCompletionChunk {
  return { id: r.id, object: 'chat.completion.chunk', created: r.created, model: r.model, choices: [], usage };
}
export function chatCompletion(r: ResponseIdentity, content: string, finish: FinishReason, usage: CompletionUsage): ChatCompletion {
  return { id: r.id, object: 'chat.completion', created: r.created, model: r.model, choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finish, logprobs: null }], usage };
}

export function textChunk(r: ResponseIdentity, text: string, finish: FinishReason | null = null): Completion {
  return { id: r.id, object: 'text_completion', created: r.created, model: r.model, choices: [{ index: 0, text, finish_reason: finish, logprobs: null }] };
}
export function textUsageChunk(r: ResponseIdentity, usage: CompletionUsage): Completion {
  return { id: r.id, object: 'text_completion', created: r.created, model: r.model, choices: [], usage };
}
export function textCompletion(r: ResponseIdentity, text: string, finish: FinishReason, usage: CompletionUsage): Completion {
  return { ...textChunk(r, text, finish), usage };
}
