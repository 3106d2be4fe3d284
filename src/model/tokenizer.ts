// Text <-> token ids through @huggingface/tokenizers, applied as HF does: the post-processor
// in tokenizer.json adds BOS (or not) for the model.
import { Tokenizer } from '@huggingface/tokenizers';
import { MalformedFileError, ModelFileMissingError } from '../errors.ts';

export class TextTokenizer {
  private readonly tok: Tokenizer;
  /** Ids of the added tokens flagged special (what decoding skips). */
  private readonly specialIds = new Set<number>();

  /** A tokenizer.json the library cannot build (wrong schema, unknown model type) is MALFORMED_FILE tokenizer.json. */
  constructor(tokenizerJson: Record<string, any>, tokenizerConfig: Record<string, any> | null) {
    try {
      this.tok = new Tokenizer(tokenizerJson as any, (tokenizerConfig ?? {}) as any);
    } catch (e) {
      throw new MalformedFileError('tokenizer.json', `not a tokenizer @huggingface/tokenizers can build (${(e as Error)?.message ?? String(e)})`);
    }
    for (const a of (tokenizerJson.added_tokens ?? []) as { id: number; special?: boolean }[]) if (a.special) this.specialIds.add(a.id);
  }

  static from(json: Record<string, any> | null, config: Record<string, any> | null): TextTokenizer | null {
    return json ? new TextTokenizer(json, config) : null;
  }

  static require(t: TextTokenizer | null): TextTokenizer {
    if (!t) throw new ModelFileMissingError('tokenizer.json');
    return t;
  }

  encode(text: string, addSpecialTokens = true): number[] {
    return this.tok.encode(text, { add_special_tokens: addSpecialTokens } as any).ids;
  }

  decode(ids: readonly number[], skipSpecialTokens = true): string {
    return this.tok.decode(ids as number[], { skip_special_tokens: skipSpecialTokens } as any);
  }

  /** Decodes skipping special tokens except those in `keep` (markers a parser reads, e.g. Gemma 4's <|channel>). */
  decodeKeeping(ids: readonly number[], keep: ReadonlySet<number>): string {
    if (!keep.size) return this.decode(ids);
    return this.decode(ids.filter((id) => keep.has(id) || !this.specialIds.has(id)), false);
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token) ?? undefined;
  }
}

/**
 * Streams text from growing token ids: emits only text that is final (a UTF-8 sequence
 * split across byte-fallback tokens is held back until complete).
 */
export class TextStreamer {
  private ids: number[] = [];
  private emitted = '';
  /** `keep`: special tokens whose text is streamed anyway (the reasoning splitter's markers). */
  constructor(private readonly tok: TextTokenizer, private readonly keep: ReadonlySet<number> = new Set()) {}

  push(id: number): string {
    this.ids.push(id);
    const text = this.tok.decodeKeeping(this.ids, this.keep);
    if (text.endsWith('\uFFFD')) return '';
    const delta = text.slice(this.emitted.length);
    this.emitted = text;
    return delta;
  }
}
