// The request's sampling fields, run in the page (test/sample.spec.ts): the GPU sampler with
// logit adjustments, min-p, a grammar mask and logprobs against its CPU twin
// (src/reference/sample.ts), and the engine on stories260K against the independent reference
// model with the same processing written plainly.
import { acquireGpu } from '../src/gpu/device.ts';
import { GpuOps } from '../src/ops/gpu_ops.ts';
import { CpuOps } from '../src/reference/cpu_ops.ts';
import { createGpuEngine } from '../src/engine/create.ts';
import type { Engine, GenerateOptions } from '../src/engine/engine.ts';
import { GrammarCompiler, type GrammarSpec } from '../src/engine/grammar.ts';
import { loadCheckpoint, loadModelFiles } from '../src/model/loader.ts';
import { urlSource } from '../src/model/source.ts';
import { ReferenceModel } from '../src/reference/reference_model.ts';
import { adjustLogitsCpu, logprobsCpu, type TokenAdjustmentCpu } from '../src/reference/sample.ts';
import type { SampleOptions, TokenAdjustment } from '../src/ops/ops.ts';
import { TextTokenizer } from '../src/model/tokenizer.ts';
import { rng } from './kernel_cases.ts';
import { Template } from '@huggingface/jinja';
import { checkTools, parseToolCalls, templateMessage, toolGrammar, toolStyle } from '../src/api/tools.ts';
import { TOOL_TEMPLATE } from './fixtures/chat_templates.ts';

let gpuOps: GpuOps | null = null;
async function gpu(): Promise<GpuOps> {
  if (!gpuOps) gpuOps = new GpuOps(await acquireGpu(), { prefill: 'regblock', decode: 'matvec' }, 64);
  return gpuOps;
}

type Stories = { engine: Engine<GPUBuffer>; ref: ReferenceModel; grammar: GrammarCompiler; tokenizer: TextTokenizer };
const stories = new Map<number, Promise<Stories>>();
/**
 * stories260K (and its reference model, grammar compiler). `contextWindow` past its 512
 * trained positions (RoPE extends; the text gets worse, which tool tests do not mind) fits
 * a chat template with tools spelt in its byte-fallback vocabulary.
 */
function openStories(contextWindow = 512): Promise<Stories> {
  let s = stories.get(contextWindow);
  if (!s) stories.set(contextWindow, (s = openStoriesAt(contextWindow)));
  return s;
}
function openStoriesAt(contextWindow: number): Promise<Stories> {
  return (async () => {
    const source = urlSource('/models/stories260K');
    const engine = await createGpuEngine(source, { contextWindow });
    const files = await loadModelFiles(source);
    const ck = await loadCheckpoint(source);
    const ref = new ReferenceModel(files.config, (n) => ck.get(n), files.spec.normGainOffset);
    const grammar = await GrammarCompiler.create(files.tokenizerJson!, files.config.vocabSize, files.config.eosTokenIds);
    return { engine, ref, grammar, tokenizer: TextTokenizer.require(engine.tokenizer) };
  })();
}

export interface SamplerCase {
  vocab: number;
  draws: number;
  temperature: number;
  topK?: number;
  topP?: number;
  minP?: number;
  frequency?: number;
  presence?: number;
  repetition?: number;
  /** Tokens with adjustments (random counts, seen flags and biases). */
  adjusted?: number;
  /** Fraction of tokens the random grammar mask allows (absent: no mask). */
  allowed?: number;
  topLogprobs?: number;
  seed?: number;
}

export const sampleCases = {
  /**
   * GPU sampleToken vs CpuOps.sampleToken on the same random logits, draw by draw (fresh
   * logits each draw: the adjustments apply in place). Returns the fraction of differing ids,
   * the worst |adjusted logit| error, the worst logprob error and top-id mismatches.
   */
  async samplerVsCpu(c: SamplerCase): Promise<{ differ: number; adjustErr: number; logprobErr: number; topIdMismatch: number; maskedPicked: number; draws: number }> {
    const g = await gpu(), cpu = new CpuOps();
    const r = rng(c.seed ?? 1);
    let differ = 0, adjustErr = 0, logprobErr = 0, topIdMismatch = 0, maskedPicked = 0;
    for (let d = 0; d < c.draws; d++) {
      const logits = Float32Array.from({ length: c.vocab }, () => (r() * 2 - 1) * 4);
      const adjust: TokenAdjustment[] = [];
      const used = new Set<number>();
      for (let i = 0; i < (c.adjusted ?? 0); i++) {
        const id = Math.floor(r() * c.vocab);
        if (used.has(id)) continue;
        used.add(id);
        adjust.push({ id, count: Math.floor(r() * 4), seen: r() < 0.7, bias: r() < 0.3 ? (r() * 2 - 1) * 5 : 0 });
      }
      let mask: Int32Array | null = null;
      if (c.allowed !== undefined) {
        mask = new Int32Array(Math.ceil(c.vocab / 32));
        for (let i = 0; i < c.vocab; i++) if (r() < c.allowed) mask[i >> 5] |= 1 << (i & 31);
      }
      const o: SampleOptions = { adjust, frequencyPenalty: c.frequency, presencePenalty: c.presence, repetitionPenalty: c.repetition, mask, topLogprobs: c.topLogprobs };
      const p = { temperature: c.temperature, topK: c.topK ?? 0, topP: c.topP ?? 1, seed: 99 + d * 13, minP: c.minP };
      const buf = g.upload('logits', logits);
      const a = await g.sampleToken(buf, c.vocab, p, d, o);
      const gotAdjusted = await g.read(buf, c.vocab);
      g.free(buf);
      const cl = Float32Array.from(logits);
      const b = await cpu.sampleToken(cl, c.vocab, p, d, o);
      for (let i = 0; i < c.vocab; i++) adjustErr = Math.max(adjustErr, Math.abs(gotAdjusted[i] - cl[i]));
      if (a.id !== b.id) differ++;
      if (mask && ((mask[a.id >> 5] >>> (a.id & 31)) & 1) === 0) maskedPicked++;
      if (c.topLogprobs !== undefined) {
        // The CPU reference's log-softmax of the GPU's token (ids may differ in a rare draw).
        const row = adjustLogitsCpu(cl, [], { frequency: 0, presence: 0, repetition: 1 }, mask);
        const want = logprobsCpu(row, c.temperature > 0 ? c.temperature : 1, a.id, c.topLogprobs);
        logprobErr = Math.max(logprobErr, Math.abs(a.logprob! - want.logprob));
        if (a.top!.length !== want.top.length) topIdMismatch++;
        want.top.forEach((w, i) => {
          if (a.top![i]?.id !== w.id) topIdMismatch++;
          else logprobErr = Math.max(logprobErr, Math.abs(a.top![i].logprob - w.logprob));
        });
      }
    }
    return { differ: differ / c.draws, adjustErr, logprobErr, topIdMismatch, maskedPicked, draws: c.draws };
  },

  /**
   * Greedy generation on stories260K with the request's processing: the GPU engine vs the
   * reference model, whose logits get the same penalties written plainly (adjustLogitsCpu)
   * and an argmax. Returns both id lists.
   */
  async greedyVsReference(prompt: number[], maxTokens: number, o: Pick<GenerateOptions, 'frequencyPenalty' | 'presencePenalty' | 'repetitionPenalty' | 'logitBias' | 'minP'>): Promise<{ got: number[]; want: number[]; plain: number[] }> {
    const { engine, ref } = await openStories();
    const got = (await engine.generate(prompt, { maxTokens, ignoreEos: true, ...o })).ids;
    const plain = (await engine.generate(prompt, { maxTokens, ignoreEos: true })).ids;
    const rep = o.repetitionPenalty ?? 1;
    const counts = new Map<number, number>();
    const seen = new Set<number>(rep !== 1 ? prompt : []);
    ref.reset();
    let logits = ref.feed(prompt, 0);
    const want: number[] = [];
    for (let s = 0; s < maxTokens; s++) {
      const ids = new Set<number>([...counts.keys(), ...seen, ...Object.keys(o.logitBias ?? {}).map(Number)]);
      const adj: TokenAdjustmentCpu[] = [...ids].map((id) => ({ id, count: counts.get(id) ?? 0, seen: seen.has(id), bias: o.logitBias?.[id] ?? 0 }));
      const l = adjustLogitsCpu(logits, adj, { frequency: o.frequencyPenalty ?? 0, presence: o.presencePenalty ?? 0, repetition: rep });
      let best = 0;
      for (let i = 1; i < l.length; i++) if (l[i] > l[best]) best = i;
      want.push(best);
      counts.set(best, (counts.get(best) ?? 0) + 1);
      seen.add(best);
      logits = ref.feed([best], prompt.length + s);
    }
    return { got, want, plain };
  },

  /**
   * logprobs from the GPU engine vs the log-softmax of the reference model's logits (teacher
   * forced on the generated ids), at `temperature` (greedy: T = 1). Returns the worst error
   * over the sampled token's logprob and the top-k's, and top-id mismatches.
   */
  async logprobsVsReference(prompt: number[], maxTokens: number, temperature: number, topLogprobs: number, seed = 3): Promise<{ err: number; topIdMismatch: number; steps: number; sumTop1: number }> {
    const { engine, ref } = await openStories();
    const r = await engine.generate(prompt, { maxTokens, ignoreEos: true, temperature, seed, topLogprobs });
    ref.reset();
    let logits = ref.feed(prompt, 0);
    let err = 0, topIdMismatch = 0, sumTop1 = 0;
    const T = temperature > 0 ? temperature : 1;
    r.ids.forEach((id, s) => {
      const want = logprobsCpu(logits, T, id, topLogprobs);
      const got = r.logprobs![s];
      err = Math.max(err, Math.abs(got.logprob! - want.logprob));
      want.top.forEach((w, i) => {
        // Near-ties between model logits (GPU vs CPU rounding) may swap two neighbours.
        const g = got.top!.find((t) => t.id === w.id);
        if (got.top![i].id !== w.id) topIdMismatch++;
        if (g) err = Math.max(err, Math.abs(g.logprob - w.logprob));
      });
      sumTop1 += Math.exp(got.top![0]?.logprob ?? -Infinity);
      if (s + 1 < r.ids.length) logits = ref.feed([id], prompt.length + s);
    });
    return { err, topIdMismatch, steps: r.ids.length, sumTop1 };
  },

  /**
   * Seeded constrained samples on stories260K: each a fresh matcher for `spec`, the prompt
   * `prompt`, temperature `temperature`. Returns the decoded texts and finish reasons.
   */
  async constrained(spec: GrammarSpec, prompt: string, n: number, maxTokens: number, temperature = 1): Promise<{ texts: string[]; finish: string[]; ms: number }> {
    const { engine, grammar, tokenizer } = await openStories();
    const ids = tokenizer.encode(prompt, true);
    const texts: string[] = [], finish: string[] = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const constraint = await grammar.matcher(spec);
      try {
        const r = await engine.generate(ids, { maxTokens, temperature, seed: 1000 + i, constraint });
        texts.push(tokenizer.decode(r.ids.filter((t) => !engine.config.eosTokenIds.includes(t))));
        finish.push(r.stats.finishReason);
      } finally {
        constraint.dispose();
      }
    }
    return { texts, finish, ms: performance.now() - t0 };
  },

  /**
   * n choices from one prompt, twice (reproducible?), and each choice regenerated alone with
   * its seed stream (n = 1): equal ids prove the shared, copied-on-write KV pages hold what a
   * private prefill would. Returns ids, stats and the cache's copy count.
   */
  async nChoices(prompt: number[], n: number, maxTokens: number, seed: number, pageSize?: number): Promise<{ a: number[][]; b: number[][]; alone: number[][]; stats: Record<string, unknown>; copied: number; freePagesAfter: number; totalPages: number }> {
    const { engine } = await openStories();
    const o = { maxTokens, temperature: 1, seed, ignoreEos: true, n };
    const copied0 = engine.cache.copiedPages;
    const ra = await engine.generate(prompt, o);
    const copied = engine.cache.copiedPages - copied0;
    const stats = { ...ra.stats };
    const freePagesAfter = engine.cache.allocator.freePages;
    const rb = await engine.generate(prompt, o);
    const alone: number[][] = [];
    for (let i = 0; i < n; i++) alone.push((await engine.generate(prompt, { ...o, n: 1, seed: (seed + Math.imul(i, 0x9e3779b9)) >>> 0 })).ids);
    void pageSize;
    return { a: ra.choices!.map((c) => c.ids), b: rb.choices!.map((c) => c.ids), alone, stats, copied, freePagesAfter, totalPages: engine.cache.allocator.numPages };
  },

  /**
   * A tool-call round trip on stories260K through a Hermes-style template (test/fixtures/
   * chat_templates.ts): render with tools, a constrained call (tool_choice required / named),
   * parse it, then the assistant call + the tool's result continue the chat.
   */
  async toolRoundTrip(tools: unknown[], choice: unknown, seed: number): Promise<{ prompt1: string; reply: string; calls: ReturnType<typeof parseToolCalls>; prompt2: string; reply2: string }> {
    const { engine, grammar, tokenizer } = await openStories(1024);
    const style = toolStyle(TOOL_TEMPLATE, 'stories260K');
    const checked = checkTools(tools, choice);
    const tpl = new Template(TOOL_TEMPLATE);
    const names = new Map<string, string>();
    const messages: Record<string, unknown>[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const prompt1 = tpl.render({ messages: messages.map((m) => templateMessage(m, names)), tools: checked.tools, add_generation_prompt: true, bos_token: '<s>' });
    const spec = toolGrammar(checked.tools, checked.choice, style)!;
    const constraint = await grammar.matcher(spec);
    let reply: string;
    try {
      const r = await engine.generate(tokenizer.encode(prompt1, false), { maxTokens: 100, temperature: 1, seed, constraint, reusePrefix: true });
      reply = tokenizer.decode(r.ids);
    } finally {
      constraint.dispose();
    }
    const calls = parseToolCalls(reply, style);
    messages.push({ role: 'assistant', content: calls.content || null, tool_calls: calls.toolCalls });
    for (const c of calls.toolCalls) messages.push({ role: 'tool', tool_call_id: c.id, content: '{"t":21}' });
    const prompt2 = tpl.render({ messages: messages.map((m) => templateMessage(m, names)), tools: checked.tools, add_generation_prompt: true, bos_token: '<s>' });
    const r2 = await engine.generate(tokenizer.encode(prompt2, false), { maxTokens: 12, temperature: 0, reusePrefix: true });
    return { prompt1, reply, calls, prompt2, reply2: tokenizer.decode(r2.ids) };
  },

  /**
   * A grammar with POP (keep < L), multi-turn prefix reuse, and n = 2 choices (one matcher
   * each): the decoded texts of each, for the spec to validate.
   */
  async constrainedComposes(spec: GrammarSpec): Promise<{ pop: string; reuse: string; reused: number; choices: string[] }> {
    const { engine, grammar, tokenizer } = await openStories();
    const eos = engine.config.eosTokenIds;
    const text = (ids: number[]) => tokenizer.decode(ids.filter((t) => !eos.includes(t)));
    const prompt = tokenizer.encode('Once upon a time, a girl', true);
    let g = await grammar.matcher(spec);
    const a = await engine.generate(prompt, { maxTokens: 60, temperature: 1, seed: 9, constraint: g, pop: 3 });
    g.dispose();
    g = await grammar.matcher(spec);
    const b = await engine.generate([...prompt, ...a.ids, ...tokenizer.encode(' Then', false)], { maxTokens: 60, temperature: 1, seed: 10, constraint: g, reusePrefix: true });
    g.dispose();
    const gs = [await grammar.matcher(spec), await grammar.matcher(spec)];
    const c = await engine.generate(prompt, { maxTokens: 60, temperature: 1, seed: 11, constraints: gs, n: 2 });
    return { pop: text(a.ids), reuse: text(b.ids), reused: b.stats.reusedTokens, choices: c.choices!.map((x) => text(x.ids)) };
  },

  /** `code:argument` of the error each bad option gives (nothing generated). */
  async badFields(list: Partial<GenerateOptions>[]): Promise<string[]> {
    const { engine } = await openStories();
    const out: string[] = [];
    for (const o of list) {
      try {
        await engine.generate([1, 300], { maxTokens: 2, ...o });
        out.push('ok');
      } catch (e) {
        const x = e as { code?: string; fields?: { argument?: string } };
        out.push(`${x.code}:${x.fields?.argument}`);
      }
    }
    return out;
  },

  /** The typed error (code) a grammar spec compiles to, or 'ok'. */
  async grammarError(spec: GrammarSpec): Promise<string> {
    const { grammar } = await openStories();
    try {
      (await grammar.matcher(spec)).dispose();
      return 'ok';
    } catch (e) {
      return (e as { code?: string }).code ?? String(e);
    }
  },
};
