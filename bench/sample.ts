// Request-field costs on this adapter, run in the page by bench/sample.bench.ts
// (`npm run bench:sample`): reported as ratios from one run, never asserted (correctness is
// test/sample.spec.ts).
//   mask:    decode tok/s of stories260K with a JSON-schema mask (a string field the model
//            fills to max_tokens: the grammar never ends early) against unconstrained, same
//            prompt, seed and token count; runs interleaved, best of `rounds` each.
//   choices: n = 4 choices from one prompt (one prefill, shared KV pages) against four
//            separate n = 1 requests (four prefills), wall time.
import { createGpuEngine } from '../src/engine/create.ts';
import { GrammarCompiler } from '../src/engine/grammar.ts';
import { urlSource } from '../src/model/source.ts';
import { TextTokenizer } from '../src/model/tokenizer.ts';

const STORY_SCHEMA = JSON.stringify({ type: 'object', properties: { story: { type: 'string' } }, required: ['story'] });

export async function sampleCosts(o: { maxTokens: number; promptTokens: number; choiceTokens: number; rounds: number }): Promise<Record<string, number | string>> {
  const source = urlSource('/models/stories260K');
  const engine = await createGpuEngine(source, {});
  const tok = TextTokenizer.require(engine.tokenizer);
  const c = engine.config;
  const grammar = await GrammarCompiler.create(engine.files.tokenizerJson!, c.vocabSize, c.eosTokenIds);
  const prompt = tok.encode('Once upon a time, there was a little girl named Lily.', true);
  let masked = 0, plain = 0, maskedTokens = 0;
  for (let r = 0; r < o.rounds; r++) {
    const constraint = await grammar.matcher({ kind: 'json_schema', schema: STORY_SCHEMA });
    const a = await engine.generate(prompt, { maxTokens: o.maxTokens, temperature: 1, seed: r, constraint });
    constraint.dispose();
    maskedTokens = a.ids.length;
    masked = Math.max(masked, a.stats.decodeTokensPerS);
    const b = await engine.generate(prompt, { maxTokens: a.ids.length, temperature: 1, seed: r, ignoreEos: true });
    plain = Math.max(plain, b.stats.decodeTokensPerS);
  }
  // n = 4 vs 4 x n = 1 on a long prompt (ids drawn deterministically).
  const long = Array.from({ length: o.promptTokens }, (_, i) => (i === 0 ? 1 : 3 + ((i * 2654435761) >>> 0) % (c.vocabSize - 3)));
  let nTime = Infinity, sepTime = Infinity, shared = 0;
  for (let r = 0; r < o.rounds; r++) {
    let t = performance.now();
    const n4 = await engine.generate(long, { maxTokens: o.choiceTokens, temperature: 1, seed: 5, ignoreEos: true, n: 4 });
    nTime = Math.min(nTime, performance.now() - t);
    shared = n4.stats.sharedKvBytes ?? 0;
    t = performance.now();
    for (let i = 0; i < 4; i++) await engine.generate(long, { maxTokens: o.choiceTokens, temperature: 1, seed: 5 + i, ignoreEos: true });
    sepTime = Math.min(sepTime, performance.now() - t);
  }
  engine.unload();
  return {
    model: 'stories260K',
    mask_decode_tok_s: +masked.toFixed(1),
    plain_decode_tok_s: +plain.toFixed(1),
    masked_tokens: maskedTokens,
    mask_cost: +(1 - masked / plain).toFixed(3),
    n4_ms: +nTime.toFixed(0),
    four_separate_ms: +sepTime.toFixed(0),
    n4_over_separate: +(nTime / sepTime).toFixed(3),
    n4_shared_kv_bytes: shared,
    prompt_tokens: o.promptTokens,
    choice_tokens: o.choiceTokens,
  };
}
