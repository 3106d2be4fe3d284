// What the chat demo and <pop-chat> share: a conversation over a WorkerEngine (the whole
// history is sent each turn, so the engine reuses the K/V of the shared prefix), the stats
// line, and error text with its code. No DOM here.
import type { WorkerEngine } from '../../src/api/client.ts';
import type { ChatCompletionMessageParam, CompletionUsage, FinishReason } from '../../src/api/protocol.ts';
import type { PopSetting } from '../../src/engine/pop.ts';
import { InvalidArgumentError } from '../../src/errors.ts';

export interface TurnOptions {
  maxTokens?: number;
  pop?: PopSetting;
  temperature?: number;
}

/** A user turn: text, or OpenAI content parts (text and images: URL strings, File/Blob, ImageBitmap, <img>). */
export type UserContent = string | ({ type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string | Blob | ImageBitmap | HTMLImageElement } })[];

export interface TurnResult {
  reply: string;
  /** Absent when the turn was stopped (the engine reports no usage for an aborted request). */
  usage?: CompletionUsage;
  finishReason: FinishReason;
}

export class ChatSession {
  readonly history: ChatCompletionMessageParam[] = [];
  private running = false;

  constructor(readonly engine: WorkerEngine) {}

  get busy(): boolean {
    return this.running;
  }

  /**
   * Sends one user message (text, or text and image parts); `onText` gets the reply so far
   * after each streamed piece. A failed turn (a bad image, say) is not kept in the history.
   */
  async send(content: UserContent, o: TurnOptions, onText: (replySoFar: string) => void): Promise<TurnResult> {
    if (this.running) throw new InvalidArgumentError('send', 'a reply is still being generated');
    this.running = true;
    this.history.push({ role: 'user', content } as ChatCompletionMessageParam);
    let reply = '';
    try {
      const chunks = await this.engine.chat.completions.create({
        messages: [...this.history], stream: true, stream_options: { include_usage: true }, max_tokens: o.maxTokens, pop: o.pop, temperature: o.temperature ?? 0,
      });
      let usage: CompletionUsage | undefined;
      let finish: FinishReason = 'stop';
      for await (const c of chunks) {
        const d = c.choices[0]?.delta.content ?? '';
        if (d) onText((reply += d));
        if (c.usage) usage = c.usage;
        if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
      }
      this.history.push({ role: 'assistant', content: reply });
      return { reply, usage, finishReason: finish };
    } catch (e) {
      if (errorCode(e) === 'ABORTED') {
        this.history.push({ role: 'assistant', content: reply });
        return { reply, finishReason: 'abort' };
      }
      this.history.pop(); // the failed user turn is not part of the conversation
      throw e;
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    this.engine.interruptGenerate();
  }

  async reset(): Promise<void> {
    this.history.length = 0;
    await this.engine.resetChat();
  }
}

export function errorCode(e: unknown): string {
  return (e as { code?: string } | null)?.code ?? 'ERROR';
}

/** `CODE: message` for any thrown value. */
export function errorText(e: unknown): string {
  const msg = (e as { message?: string } | null)?.message ?? String(e);
  return `${errorCode(e)}: ${msg}`;
}

/** One line from the final chunk's usage: TTFT, prefill and decode speed, POP keep, reuse. */
export function formatStats(u: CompletionUsage): string {
  const x = u.extra;
  return [
    `TTFT ${x.ttft_ms.toFixed(0)} ms`,
    `prefill ${x.prefill_tokens_per_s.toFixed(1)} tok/s`,
    `decode ${x.decode_tokens_per_s.toFixed(1)} tok/s`,
    `POP keep ${x.pop_keep}/${x.layers}`,
    `reused ${x.reused_prompt_tokens} tokens`,
    // usage.prompt_tokens counts the newly prefilled tokens (as WebLLM): the prompt is those plus the reused ones.
    `${u.prompt_tokens + x.reused_prompt_tokens} prompt + ${u.completion_tokens} new tokens`,
  ].join(' · ');
}

/** Parses the POP setting from a UI value: off | exact | auto | a keep count. */
export function parsePop(v: string | null | undefined): PopSetting | undefined {
  if (!v) return undefined;
  if (v === 'off' || v === 'exact' || v === 'auto') return v;
  const n = Number(v);
  if (Number.isInteger(n) && n >= 1) return n;
  if (n > 0 && n < 1) return { ratio: n };
  return undefined;
}
