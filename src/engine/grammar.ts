// Structured output: a grammar (JSON, a JSON schema, EBNF) compiled against the tokenizer's
// vocabulary by @mlc-ai/web-xgrammar (the engine WebLLM uses; its wasm is inlined in the
// package, so it loads in a worker and offline). Per decode step the matcher yields a token
// bitmask (one bit per token, ceil(vocab / 32) words): only that crosses to the GPU, where the
// sampling kernel reads it (shaders/sample.wgsl, MASKED); logits never come back.
import * as xgr from '@mlc-ai/web-xgrammar';
import { InvalidResponseFormatError } from '../errors.ts';

/** What the engine needs from a constraint, per step: the allowed tokens, then the chosen one. */
export interface TokenConstraint {
  /** Bitmask of allowed tokens (bit i of word i >> 5): null when anything may follow. */
  nextMask(): Promise<Int32Array | null>;
  /** Advances past the sampled token; false when the grammar rejects it. */
  accept(id: number): boolean;
  /** The grammar is complete and has accepted a stop token. */
  isTerminated(): boolean;
  dispose(): void;
}

export type GrammarSpec =
  | { kind: 'json' }
  /** `wrap`: the JSON between fixed text (a tool call's `<tool_call>` tags). */
  | { kind: 'json_schema'; schema: string; strict?: boolean; wrap?: { begin: string; end: string } }
  | { kind: 'ebnf'; grammar: string; root?: string };

/**
 * How tokenizer.json spells bytes in its vocabulary, in xgrammar's terms: 'byte_fallback'
 * (SentencePiece-style `<0x41>` byte tokens and `▁` for space: Llama 2, stories260K),
 * 'byte_level' (GPT-2's byte-to-unicode alphabet: Qwen, SmolLM2, Llama 3) or 'raw'.
 */
export function vocabType(tokenizerJson: Record<string, any>): { type: 'byte_fallback' | 'byte_level' | 'raw'; prependSpace: boolean } {
  const parts = (x: any): any[] => (!x ? [] : x.type === 'Sequence' ? (x.decoders ?? x.pretokenizers ?? x.normalizers ?? []).flatMap(parts) : [x]);
  const decoders = parts(tokenizerJson.decoder);
  const type = decoders.some((d) => d.type === 'ByteLevel') ? 'byte_level' : decoders.some((d) => d.type === 'ByteFallback') || tokenizerJson.model?.byte_fallback ? 'byte_fallback' : 'raw';
  const norm = parts(tokenizerJson.normalizer);
  const pre = parts(tokenizerJson.pre_tokenizer);
  const prependSpace = norm.some((n) => n.type === 'Prepend' && n.prepend === '▁') || pre.some((p) => p.type === 'Metaspace' && (p.prepend_scheme ?? (p.add_prefix_space ? 'always' : 'never')) !== 'never');
  return { type, prependSpace };
}

/**
 * The vocabulary as xgrammar wants it: the token strings by id, padded to the model's vocab
 * size. Special added tokens become '' (xgrammar never allows a token that spells nothing),
 * so a chat-control token can never appear inside constrained text.
 */
export function encodedVocab(tokenizerJson: Record<string, any>, vocabSize: number): string[] {
  const out = new Array<string>(vocabSize).fill('');
  for (const [tok, id] of Object.entries(tokenizerJson.model?.vocab ?? {})) if ((id as number) < vocabSize) out[id as number] = tok;
  for (const a of tokenizerJson.added_tokens ?? []) if (a.id < vocabSize) out[a.id] = a.special ? '' : a.content;
  return out;
}

/** One per loaded model: the tokenizer's info and a compiler whose cache lives with it. */
export class GrammarCompiler {
  private readonly cache = new Map<string, Promise<xgr.CompiledGrammar>>();
  private constructor(private readonly compiler: xgr.GrammarCompiler, readonly vocabSize: number, private readonly stopIds: number[]) {}

  static async create(tokenizerJson: Record<string, any>, vocabSize: number, stopIds: number[]): Promise<GrammarCompiler> {
    const { type, prependSpace } = vocabType(tokenizerJson);
    const info = await xgr.TokenizerInfo.createTokenizerInfo(encodedVocab(tokenizerJson, vocabSize), type, prependSpace, vocabSize, stopIds);
    return new GrammarCompiler(await xgr.GrammarCompiler.createGrammarCompiler(info, true), vocabSize, stopIds);
  }

  /** Compiles (cached by spec) and returns a fresh matcher; a bad schema or grammar is INVALID_RESPONSE_FORMAT. */
  async matcher(spec: GrammarSpec): Promise<TokenConstraint> {
    const key = JSON.stringify(spec);
    let cg = this.cache.get(key);
    if (!cg) {
      cg = this.compile(spec);
      this.cache.set(key, cg);
      cg.catch(() => this.cache.delete(key));
    }
    const compiled = await cg;
    const m = await xgr.GrammarMatcher.createGrammarMatcher(compiled, this.stopIds);
    return new XgrammarConstraint(m);
  }

  private async compile(spec: GrammarSpec): Promise<xgr.CompiledGrammar> {
    try {
      // OpenAI's json_object is "a JSON object": the schema {type: object}. Compact JSON (no
      // indent, ',' and ':' separators, no free whitespace) spends no tokens on layout;
      // strict: no properties beyond the schema's. (indent -1 = none, in the package's terms.)
      if (spec.kind === 'json') return await this.compiler.compileJSONSchema('{"type":"object"}', false, -1, [',', ':'], false);
      if (spec.kind === 'json_schema') {
        JSON.parse(spec.schema);
        if (!spec.wrap) return await this.compiler.compileJSONSchema(spec.schema, false, -1, [',', ':'], spec.strict ?? true);
        // The schema's EBNF with its root renamed, between the fixed texts.
        const g = await xgr.Grammar.fromJSONSchema(spec.schema, false, -1, [',', ':'], spec.strict ?? true);
        const ebnf = g.toString();
        g.dispose();
        const lit = (t: string) => JSON.stringify(t);
        return await this.compiler.compileGrammar(`root ::= ${lit(spec.wrap.begin)} wrapped_json ${lit(spec.wrap.end)}\n${ebnf.replace(/^root ::=/m, 'wrapped_json ::=')}`, 'root');
      }
      return await this.compiler.compileGrammar(spec.grammar, spec.root ?? 'root');
    } catch (e) {
      throw new InvalidResponseFormatError(spec.kind, errorText(e));
    }
  }
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  // Emscripten throws C++ exceptions as numbers or objects without a message.
  return String((e as { message?: string })?.message ?? e);
}

class XgrammarConstraint implements TokenConstraint {
  constructor(private readonly m: xgr.GrammarMatcher) {}
  async nextMask(): Promise<Int32Array | null> {
    return this.m.isTerminated() ? null : await this.m.getNextTokenBitmask();
  }
  accept(id: number): boolean {
    return this.m.acceptToken(id);
  }
  isTerminated(): boolean {
    return this.m.isTerminated();
  }
  dispose(): void {
    this.m.dispose();
  }
}
