// Thinking models (Qwen3): the reply's `<think> ... </think>` part is the reasoning, sent as
// `reasoning_content` (in messages and stream deltas), apart from the answer (`content`).
// The template may already have opened the block in the prompt (the reply then starts inside
// it), and Qwen3 with enable_thinking: false writes an empty block into the prompt itself.

const OPEN = '<think>';
const CLOSE = '</think>';

export interface ReasoningDelta {
  reasoning: string;
  content: string;
}

/** Whether a rendered prompt ends inside an open think block (the reply starts as reasoning). */
export function promptOpensThinking(prompt: string): boolean {
  const open = prompt.lastIndexOf(OPEN);
  return open >= 0 && prompt.indexOf(CLOSE, open) < 0 && prompt.slice(open + OPEN.length).trim() === '';
}

/**
 * Splits streamed text into reasoning and content. Holds back text that may be the start of
 * a tag (a tag can arrive split over tokens). `flush` returns what is held at the end.
 */
export class ReasoningSplitter {
  private state: 'start' | 'reasoning' | 'after' | 'content';
  private held = '';

  constructor(startsInReasoning = false) {
    this.state = startsInReasoning ? 'reasoning' : 'start';
  }

  push(delta: string): ReasoningDelta {
    const out: ReasoningDelta = { reasoning: '', content: '' };
    let text = this.held + delta;
    this.held = '';
    for (;;) {
      if (this.state === 'start') {
        // Leading whitespace, then either <think> (reasoning) or anything else (content).
        const t = text.trimStart();
        if (t === '' || (OPEN.startsWith(t) && t.length < OPEN.length)) {
          this.held = text;
          return out;
        }
        if (t.startsWith(OPEN)) {
          text = t.slice(OPEN.length);
          this.state = 'reasoning';
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
        // The whitespace between </think> and the answer belongs to neither.
        const t = text.replace(/^\s+/, '');
        if (t) {
          this.state = 'content';
          out.content += t;
        }
        return out;
      }
      const end = text.indexOf(CLOSE);
      if (end >= 0) {
        out.reasoning += text.slice(0, end);
        text = text.slice(end + CLOSE.length);
        this.state = 'after';
        continue;
      }
      const keep = partialSuffix(text, CLOSE);
      out.reasoning += text.slice(0, text.length - keep);
      this.held = text.slice(text.length - keep);
      return out;
    }
  }

  flush(): ReasoningDelta {
    const held = this.held;
    this.held = '';
    if (this.state === 'reasoning') return { reasoning: held, content: '' };
    return { reasoning: '', content: this.state === 'start' ? held.trimStart() : held };
  }
}

/** Length of the longest suffix of `text` that is a proper prefix of `tag`. */
function partialSuffix(text: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, text.length); n > 0; n--) if (tag.startsWith(text.slice(text.length - n))) return n;
  return 0;
}

/** The whole reply split at once. */
export function splitReasoning(text: string, startsInReasoning = false): ReasoningDelta {
  const s = new ReasoningSplitter(startsInReasoning);
  const a = s.push(text), b = s.flush();
  return { reasoning: (a.reasoning + b.reasoning).trim(), content: a.content + b.content };
}
