// The one place where OpenAI-shaped objects are built: chunks, completions and usage, from
// what a generation reports. The in-page engine builds them; the worker only carries them.
import type { GenerateStats } from '../engine/engine.ts';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionMessageToolCall, ChatCompletionTokenLogprob, Completion, CompletionUsage, FinishReason } from './protocol.ts';

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
      ...(s.keepReason ? { pop_keep_reason: s.keepReason } : {}),
      layers: s.layers,
      reused_prompt_tokens: s.reusedTokens,
      ...(popFallback ? { pop_fallback: 'exact' as const } : {}),
    },
  };
}

type RunChoiceLike = { content: string; reasoning: string | null; toolCalls: ChatCompletionMessageToolCall[]; logprobs: ChatCompletionTokenLogprob[] | null; finishReason: FinishReason };
type DeltaLike = { content: string; reasoning: string; logprobs: ChatCompletionTokenLogprob[] | null };

/** A streamed piece of choice `index`: content and / or reasoning_content, with its tokens' logprobs when asked. */
export function chatChunk(r: ResponseIdentity, index: number, d: DeltaLike): ChatCompletionChunk {
  const delta: ChatCompletionChunk['choices'][number]['delta'] = { role: 'assistant', content: d.content };
  if (d.reasoning) delta.reasoning_content = d.reasoning;
  return { id: r.id, object: 'chat.completion.chunk', created: r.created, model: r.model, choices: [{ index, delta, finish_reason: null, logprobs: d.logprobs ? { content: d.logprobs } : null }] };
}
/** Each choice's last chunk: its tool calls (as delta.tool_calls, whole) and finish_reason. */
export function chatFinalChunks(r: ResponseIdentity, choices: readonly RunChoiceLike[]): ChatCompletionChunk[] {
  return choices.map((c, index) => ({
    id: r.id, object: 'chat.completion.chunk', created: r.created, model: r.model,
    choices: [{ index, delta: c.toolCalls.length ? { role: 'assistant', tool_calls: c.toolCalls.map((t, i) => ({ index: i, ...t })) } : {}, finish_reason: c.finishReason, logprobs: null }],
  }));
}
export function chatUsageChunk(r: ResponseIdentity, usage: CompletionUsage): ChatCompletionChunk {
  return { id: r.id, object: 'chat.completion.chunk', created: r.created, model: r.model, choices: [], usage };
}
export function chatCompletion(r: ResponseIdentity, choices: readonly RunChoiceLike[], usage: CompletionUsage): ChatCompletion {
  return {
    id: r.id, object: 'chat.completion', created: r.created, model: r.model, usage,
    choices: choices.map((c, index) => ({
      index,
      message: { role: 'assistant', content: c.toolCalls.length && !c.content ? null : c.content, ...(c.toolCalls.length ? { tool_calls: c.toolCalls } : {}), ...(c.reasoning !== null && c.reasoning !== '' ? { reasoning_content: c.reasoning } : {}) },
      finish_reason: c.finishReason,
      logprobs: c.logprobs ? { content: c.logprobs } : null,
    })),
  };
}

export function textChunk(r: ResponseIdentity, text: string, finish: FinishReason | null = null, index = 0, logprobs: ChatCompletionTokenLogprob[] | null = null): Completion {
  return { id: r.id, object: 'text_completion', created: r.created, model: r.model, choices: [{ index, text, finish_reason: finish, logprobs: logprobs ? { content: logprobs } : null }] };
}
export function textUsageChunk(r: ResponseIdentity, usage: CompletionUsage): Completion {
  return { id: r.id, object: 'text_completion', created: r.created, model: r.model, choices: [], usage };
}
export function textCompletion(r: ResponseIdentity, choices: readonly RunChoiceLike[], echo: string, usage: CompletionUsage): Completion {
  return { id: r.id, object: 'text_completion', created: r.created, model: r.model, usage, choices: choices.map((c, index) => ({ index, text: echo + c.content, finish_reason: c.finishReason, logprobs: c.logprobs ? { content: c.logprobs } : null })) };
}
