// Text <-> token ids through @huggingface/tokenizers, applied as HF does: the post-processor
// in tokenizer.json adds BOS (or not) for the model.
import { Tokenizer } from '@huggingface/tokenizers';
import { MalformedFileError, ModelFileMissingError } from '../errors.ts';

export class TextTokenizer {
  private readonly tok: Tokenizer;

  /** A tokenizer.json the library cannot build (wrong schema, unknown model type) is MALFORMED_FILE tokenizer.json. */
  constructor(tokenizerJson: Record<string, any>, tokenizerConfig: Record<string, any> | null) {
    try {
      this.tok = new Tokenizer(tokenizerJson as any, (tokenizerConfig ?? {}) as any);
    } catch (e) {
      throw new MalformedFileError('tokenizer.json', `not a tokenizer @huggingface/tokenizers can build (${(e as Error)?.message ?? String(e)})`);
    }
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
  constructor(private readonly tok: TextTokenizer) {}

  push(id: number): string {
    this.ids.push(id);
    const text = this.tok.decode(this.ids);
    if (text.endsWith('\uFFFD')) return '';
    const delta = text.slice(this.emitted.length);
    this.emitted = text;
    return delta;
  }
}
