// One choice's reply as it streams: text through the tokenizer's streamer, stop strings cut,
// the reasoning (<think>) split off, tool-call text held back and parsed at the end, and the
// per-token logprobs in OpenAI's shape (token, logprob, bytes, top_logprobs).
import type { SampledToken } from '../ops/ops.ts';
import { TextStreamer, type TextTokenizer } from '../model/tokenizer.ts';
import { ReasoningSplitter, THINK_TAGS, type ThinkingMarkers } from './reasoning.ts';
import { parseToolCalls, type ToolCall, type ToolCallStyle } from './tools.ts';

export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
}
export interface TokenLogprob extends TopLogprob {
  top_logprobs: TopLogprob[];
}

/** What one token adds to a choice's stream. */
export interface ChoiceDelta {
  content: string;
  reasoning: string;
  logprobs: TokenLogprob[] | null;
}

export interface ChoiceResult {
  content: string;
  reasoning: string | null;
  toolCalls: ToolCall[];
  logprobs: TokenLogprob[] | null;
}

/**
 * Each token's bytes, from its vocabulary string: byte-fallback `<0xNN>` tokens are one byte
 * (SentencePiece's `▁` is a space), byte-level tokens map GPT-2's printable alphabet back to
 * bytes, others are their UTF-8. Built once per tokenizer.
 */
export class TokenBytes {
  private readonly vocab: string[] = [];
  private readonly special = new Set<number>();
  private readonly byteLevel: boolean;
  private static unicodeToByte: Map<string, number> | null = null;

  constructor(tokenizerJson: Record<string, any>) {
    for (const [tok, id] of Object.entries(tokenizerJson.model?.vocab ?? {})) this.vocab[id as number] = tok;
    for (const a of tokenizerJson.added_tokens ?? []) {
      this.vocab[a.id] = a.content;
      if (a.special) this.special.add(a.id);
    }
    const dec = JSON.stringify(tokenizerJson.decoder ?? {});
    this.byteLevel = dec.includes('"ByteLevel"');
  }

  bytes(id: number): number[] {
    const t = this.vocab[id] ?? '';
    if (this.special.has(id)) return [...new TextEncoder().encode(t)];
    const hex = /^<0x([0-9A-Fa-f]{2})>$/.exec(t);
    if (hex) return [parseInt(hex[1], 16)];
    if (this.byteLevel) {
      const map = TokenBytes.byteMap();
      return [...t].map((ch) => map.get(ch) ?? 0x3f);
    }
    return [...new TextEncoder().encode(t.replace(/▁/g, ' '))];
  }

  /** GPT-2's bytes-to-unicode table, inverted: printable bytes stand for themselves, the rest are shifted past 255. */
  private static byteMap(): Map<string, number> {
    if (TokenBytes.unicodeToByte) return TokenBytes.unicodeToByte;
    const m = new Map<string, number>();
    let shift = 0;
    for (let b = 0; b < 256; b++) {
      const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
      m.set(String.fromCodePoint(printable ? b : 256 + shift++), b);
    }
    return (TokenBytes.unicodeToByte = m);
  }
}

export interface ChoiceOptions {
  stops: string[];
  eosIds: number[];
  /** Split the thinking part (<think>, Gemma 4's thought channel) into reasoning_content. */
  reasoning: boolean;
  /** How this model marks its thinking (default <think> ... </think>). */
  markers?: ThinkingMarkers;
  /** The prompt left a think block open: the reply starts as reasoning. */
  startsInReasoning?: boolean;
  /** Tools given (and tool_choice not 'none'): hold back and parse calls in this style. */
  toolStyle: ToolCallStyle | null;
  logprobs: boolean;
}

export class ChoiceOutput {
  /** The content so far (stop strings cut), before reasoning and tool calls are split off. */
  text = '';
  stopped = false;
  private readonly streamer: TextStreamer;
  private readonly splitter: ReasoningSplitter | null;
  private readonly logprobs: TokenLogprob[] | null;
  private content = '';
  private reasoning = '';
  /** Content held back because it may be a tool call. */
  private held = '';

  constructor(private readonly tok: TextTokenizer, private readonly bytes: TokenBytes | null, private readonly o: ChoiceOptions) {
    const markers = o.markers ?? THINK_TAGS;
    // The markers reach the splitter even if the tokenizer flags them special; other special tokens stay skipped.
    const keep = new Set(o.reasoning ? markers.tokens.map((t) => tok.tokenToId(t)).filter((id): id is number => id !== undefined) : []);
    this.streamer = new TextStreamer(tok, keep);
    this.splitter = o.reasoning ? new ReasoningSplitter(o.startsInReasoning, markers) : null;
    this.logprobs = o.logprobs ? [] : null;
  }

  private entry(id: number, logprob: number): TopLogprob {
    const b = this.bytes?.bytes(id) ?? [...new TextEncoder().encode(this.tok.decode([id], false))];
    return { token: new TextDecoder().decode(new Uint8Array(b)), logprob, bytes: b };
  }

  /** Adds a token; `stopped` is set when a stop string was reached. */
  push(id: number, t: SampledToken): ChoiceDelta {
    let delta = this.streamer.push(id);
    if (this.o.eosIds.includes(id)) delta = '';
    const next = this.text + delta;
    const hit = this.o.stops.map((s) => next.indexOf(s, Math.max(0, this.text.length - s.length + 1))).filter((i) => i >= 0);
    if (hit.length) {
      delta = next.slice(this.text.length, Math.min(...hit));
      this.stopped = true;
    }
    this.text += delta;
    let lp: TokenLogprob[] | null = null;
    if (this.logprobs && t.logprob !== undefined) {
      const e: TokenLogprob = { ...this.entry(id, t.logprob), top_logprobs: (t.top ?? []).map((x) => this.entry(x.id, x.logprob)) };
      this.logprobs.push(e);
      lp = [e];
    }
    const split = this.splitter ? this.splitter.push(delta) : { reasoning: '', content: delta };
    this.reasoning += split.reasoning;
    return { content: this.release(split.content), reasoning: split.reasoning, logprobs: lp };
  }

  /** Content to stream now; text that may open a tool call waits for finish(). */
  private release(content: string): string {
    if (!this.o.toolStyle) return (this.content += content), content;
    this.held += content;
    const opener = this.o.toolStyle === 'hermes' ? '<tool_call>' : null;
    let out = '';
    if (opener) {
      const at = this.held.indexOf(opener);
      if (at >= 0) {
        out = this.held.slice(0, at);
        this.held = this.held.slice(at);
        this.heldCall = true;
      } else if (!this.heldCall) {
        // Keep a suffix that may be the start of the opener.
        let keep = 0;
        for (let n = Math.min(opener.length - 1, this.held.length); n > 0; n--) if (opener.startsWith(this.held.slice(-n))) { keep = n; break; }
        out = this.held.slice(0, this.held.length - keep);
        this.held = this.held.slice(this.held.length - keep);
      }
    } else if (!/^\s*(<\|python_tag\|>|\{)/.test(this.held) && this.held.trim() !== '' && !'<|python_tag|>'.startsWith(this.held.trim())) {
      // Llama 3: a call is the whole reply; anything else streams as it comes.
      out = this.held;
      this.held = '';
    }
    this.content += out;
    return out;
  }
  private heldCall = false;

  /** The choice's whole reply: content, reasoning, tool calls (parsed from what was held) and logprobs. */
  finish(): ChoiceResult & { tail: ChoiceDelta } {
    const f = this.splitter?.flush() ?? { reasoning: '', content: '' };
    this.reasoning += f.reasoning;
    const rest = this.held + f.content;
    this.held = '';
    let toolCalls: ToolCall[] = [];
    let tail = rest;
    if (this.o.toolStyle && rest) {
      const parsed = parseToolCalls(rest, this.o.toolStyle);
      toolCalls = parsed.toolCalls;
      tail = parsed.content;
    }
    this.content += tail;
    const reasoning = this.splitter ? this.reasoning.trim() : null;
    return { content: this.content, reasoning, toolCalls, logprobs: this.logprobs, tail: { content: tail, reasoning: f.reasoning, logprobs: null } };
  }
}
