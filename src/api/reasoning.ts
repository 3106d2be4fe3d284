// Thinking models: the reply's thinking part is the reasoning, sent as `reasoning_content`
// (in messages and stream deltas), apart from the answer (`content`). Qwen3 writes it as
// `<think> ... </think>`; Gemma 4 as `<|channel>thought ... <channel|>`. The markers are data,
// chosen from what the chat template uses. The template may already have opened the block in
// the prompt (the reply then starts inside it), and with thinking off both templates write an
// empty block into the prompt itself (the reply is then all content).

/** How a model's reply marks its thinking: `open` ... `close`, then the answer. */
export interface ThinkingMarkers {
  open: string;
  close: string;
  /**
   * The marker pieces that may be single tokens of the vocabulary. They must reach the
   * splitter even when the tokenizer flags them special (decoding skips special tokens).
   */
  tokens: readonly string[];
}

export const THINK_TAGS: ThinkingMarkers = { open: '<think>', close: '</think>', tokens: ['<think>', '</think>'] };
export const GEMMA4_THOUGHT_CHANNEL: ThinkingMarkers = { open: '<|channel>thought', close: '<channel|>', tokens: ['<|channel>', '<channel|>'] };

/** The markers of the model whose chat template this is (Gemma 4's channel when the template writes one, else <think>). */
export function thinkingMarkers(chatTemplate: string | null | undefined): ThinkingMarkers {
  return chatTemplate?.includes('<|channel>') ? GEMMA4_THOUGHT_CHANNEL : THINK_TAGS;
}

export interface ReasoningDelta {
  reasoning: string;
  content: string;
}

/** Whether a rendered prompt ends inside an open think block (the reply starts as reasoning). */
export function promptOpensThinking(prompt: string, m: ThinkingMarkers = THINK_TAGS): boolean {
  const open = prompt.lastIndexOf(m.open);
  return open >= 0 && prompt.indexOf(m.close, open) < 0 && prompt.slice(open + m.open.length).trim() === '';
}

/**
 * Splits streamed text into reasoning and content. Holds back text that may be the start of
 * a tag (a tag can arrive split over tokens). `flush` returns what is held at the end.
 */
export class ReasoningSplitter {
  private state: 'start' | 'opened' | 'reasoning' | 'after' | 'content';
  private held = '';

  constructor(startsInReasoning = false, private readonly m: ThinkingMarkers = THINK_TAGS) {
    this.state = startsInReasoning ? 'opened' : 'start';
  }

  push(delta: string): ReasoningDelta {
    const out: ReasoningDelta = { reasoning: '', content: '' };
    let text = this.held + delta;
    this.held = '';
    const { open, close } = this.m;
    for (;;) {
      if (this.state === 'start') {
        // Leading whitespace, then either <think> (reasoning) or anything else (content).
        const t = text.trimStart();
        if (t === '' || (open.startsWith(t) && t.length < open.length)) {
          this.held = text;
          return out;
        }
        if (t.startsWith(open)) {
          text = t.slice(open.length);
          this.state = 'opened';
          continue;
        }
        this.state = 'content';
        out.content += text;
        return out;
      }
      if (this.state === 'content') {
        out.content += text;
        return out;
      }
      if (this.state === 'after') {
        // The whitespace between the close marker and the answer belongs to neither.
        const t = text.replace(/^\s+/, '');
        if (t) {
          this.state = 'content';
          out.content += t;
        }
        return out;
      }
      if (this.state === 'opened') {
        // Nor does the whitespace right after the open marker.
        text = text.replace(/^\s+/, '');
        if (!text) return out;
        this.state = 'reasoning';
      }
      const end = text.indexOf(close);
      if (end >= 0) {
        out.reasoning += text.slice(0, end);
        text = text.slice(end + close.length);
        this.state = 'after';
        continue;
      }
      const keep = partialSuffix(text, close);
      out.reasoning += text.slice(0, text.length - keep);
      this.held = text.slice(text.length - keep);
      return out;
    }
  }

  flush(): ReasoningDelta {
    const held = this.held;
    this.held = '';
    if (this.state === 'reasoning' || this.state === 'opened') return { reasoning: held, content: '' };
    return { reasoning: '', content: this.state === 'start' ? held.trimStart() : held };
  }
}

/** Length of the longest suffix of `text` that is a proper prefix of `tag`. */
function partialSuffix(text: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, text.length); n > 0; n--) if (tag.startsWith(text.slice(text.length - n))) return n;
  return 0;
}

/** The whole reply split at once. */
export function splitReasoning(text: string, startsInReasoning = false, m: ThinkingMarkers = THINK_TAGS): ReasoningDelta {
  const s = new ReasoningSplitter(startsInReasoning, m);
  const a = s.push(text), b = s.flush();
  return { reasoning: (a.reasoning + b.reasoning).trim(), content: a.content + b.content };
}
