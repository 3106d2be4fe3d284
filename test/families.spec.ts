// Model families beyond Llama: Qwen2/2.5 (q/k/v biases), Qwen3 (q/k norms, head_dim ≠
// hidden/heads), Llama 3.x (rope_scaling llama3, tied and untied heads) and Gemma 3 text
// ((1+w) norms, sandwich norms, GELU-tanh, scaled embeddings, local/global layers with their
// own RoPE and sliding window, softcap). Node side: every real config normalizes to the
// published structure. WebGPU side: tiny-random fixtures scaled from the real configs match
// the independent CPU reference (teacher-forced logits, POP exact, POP keep < L-1).
import { readdirSync, readFileSync } from 'node:fs';
import { test, expect } from './fixtures.ts';
import { ropeInvFreq, type ModelConfig } from '../src/model/config.ts';
import { familyFor } from '../src/model/registry.ts';
import { randomModelFiles, scaleConfig } from '../src/model/random_model.ts';
import { parseSafetensorsHeader } from '../src/model/safetensors.ts';

const CONFIGS = new URL('../configs/', import.meta.url);
const cfg = (dir: string) => JSON.parse(readFileSync(new URL(`${dir}/config.json`, CONFIGS), 'utf8'));
const norm = (raw: Record<string, any>): ModelConfig => familyFor(raw.model_type).normalize(raw);

const QWEN25 = cfg('Qwen__Qwen2.5-0.5B-Instruct');
const QWEN3 = cfg('Qwen__Qwen3-0.6B');
const LLAMA32 = cfg('meta-llama__Llama-3.2-1B-Instruct');
const GEMMA3_1B = cfg('google__gemma-3-1b-it');
const GEMMA3_4B = cfg('google__gemma-3-4b-it');

// ---------------------------------------------------------------- Node side (no browser)

test.describe('config normalization (node)', () => {
  test('every real config normalizes (text families, and the text side of idefics3 / gemma3 / gemma4 / qwen3_vl)', () => {
    const seen: string[] = [];
    for (const dir of readdirSync(CONFIGS, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)) {
      const raw = cfg(dir);
      const c = norm(raw);
      for (const k of ['hiddenSize', 'intermediateSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'vocabSize'] as const) {
        expect(Number.isInteger(c[k]) && c[k] > 0, `${dir} ${k}`).toBe(true);
      }
      expect(c.rope.length, dir).toBe(c.numLayers);
      expect(c.slidingWindow.length, dir).toBe(c.numLayers);
      expect(c.numHeads % c.numKvHeads, dir).toBe(0);
      seen.push(`${dir}: ${c.modelType}`);
    }
    expect(seen.length).toBeGreaterThanOrEqual(12);
  });

  test('qwen2: q/k/v biases, tied, head_dim = hidden/heads, no sliding window when use_sliding_window is false', () => {
    const c = norm(QWEN25);
    expect(c).toMatchObject({ attentionBias: true, qkNorm: false, postNorms: false, tieWordEmbeddings: true, headDim: 64, numHeads: 14, numKvHeads: 2, activation: 'silu', embeddingScale: 1 });
    expect(c.rope[0]).toEqual({ theta: 1e6, scaling: null });
    expect(new Set(c.slidingWindow)).toEqual(new Set([0]));
    // HF's rule when enabled: layers i >= max_window_layers slide.
    const sw = norm({ ...QWEN25, use_sliding_window: true, sliding_window: 64, max_window_layers: 20 });
    expect(sw.slidingWindow).toEqual(Array.from({ length: 24 }, (_, i) => (i >= 20 ? 64 : 0)));
  });

  test('qwen3: q/k norms, head_dim 128 ≠ hidden/heads, no biases; attention_bias=true is rejected', () => {
    const c = norm(QWEN3);
    expect(c).toMatchObject({ attentionBias: false, qkNorm: true, headDim: 128, tieWordEmbeddings: true, numHeads: 16, numKvHeads: 8 });
    expect(c.hiddenSize / c.numHeads).toBe(64);
    expect(c.attnScale).toBe(1 / Math.sqrt(128));
    expect(() => norm({ ...QWEN3, attention_bias: true })).toThrow(/attention_bias/);
    expect(familyFor('qwen3').layerTensors.qNorm).toBe('model.layers.{layer}.self_attn.q_norm.weight');
  });

  test('llama 3.2: rope_scaling llama3 gives the inverse frequencies of HF _compute_llama3_parameters', () => {
    const c = norm(LLAMA32);
    expect(c.rope[0].scaling).toEqual({ type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    const got = ropeInvFreq(c.rope[0], c.headDim);
    // Written out again from the HF formula: low-frequency bands / factor, high kept, medium smoothed.
    const d = 64, lowWl = 8192 / 1, highWl = 8192 / 4;
    let scaled = 0, smoothed = 0;
    for (let i = 0; i < d / 2; i++) {
      const f = 1 / Math.pow(500000, (2 * i) / d), wl = (2 * Math.PI) / f;
      let want = f;
      if (wl > lowWl) (want = f / 32), scaled++;
      else if (wl >= highWl) {
        const s = (8192 / wl - 1) / (4 - 1);
        (want = (1 - s) * (f / 32) + s * f), smoothed++;
      }
      expect(Math.abs(got[i] - want) / want, `band ${i}`).toBeLessThan(1e-6);
    }
    expect(scaled).toBeGreaterThan(0);
    expect(smoothed).toBeGreaterThan(0);
  });

  test('gemma-3-1b: (1+w) norms, sandwich + q/k norms, gelu-tanh, sqrt(hidden) embeddings, 5 local : 1 global', () => {
    const spec = familyFor('gemma3_text');
    const c = norm(GEMMA3_1B);
    expect(spec.normGainOffset).toBe(1);
    expect(c).toMatchObject({ qkNorm: true, postNorms: true, activation: 'gelu_tanh', tieWordEmbeddings: true, attentionBias: false, headDim: 256, numHeads: 4, numKvHeads: 1, finalLogitSoftcap: 0 });
    expect(c.embeddingScale).toBe(Math.fround(Math.sqrt(1152)));
    expect(c.attnScale).toBe(1 / 16); // query_pre_attn_scalar 256
    const globals = c.slidingWindow.flatMap((w, l) => (w === 0 ? [l] : []));
    expect(globals).toEqual([5, 11, 17, 23]);
    for (let l = 0; l < 26; l++) {
      expect(c.slidingWindow[l]).toBe(globals.includes(l) ? 0 : 512);
      expect(c.rope[l]).toEqual(globals.includes(l) ? { theta: 1e6, scaling: null } : { theta: 1e4, scaling: null });
    }
    expect(c.eosTokenIds).toEqual([1, 106]);
    expect(spec.layerTensors).toMatchObject({
      inputNorm: 'model.layers.{layer}.input_layernorm.weight',
      attnOutNorm: 'model.layers.{layer}.post_attention_layernorm.weight',
      mlpNorm: 'model.layers.{layer}.pre_feedforward_layernorm.weight',
      mlpOutNorm: 'model.layers.{layer}.post_feedforward_layernorm.weight',
      qNorm: 'model.layers.{layer}.self_attn.q_norm.weight',
      kNorm: 'model.layers.{layer}.self_attn.k_norm.weight',
    });
  });

  test('gemma-3-4b text_config: transformers defaults fill the gaps; linear rope scaling on global layers only', () => {
    const c = norm(GEMMA3_4B.text_config);
    expect(c).toMatchObject({ numLayers: 34, hiddenSize: 2560, numHeads: 8, numKvHeads: 4, headDim: 256, vocabSize: 262208 });
    c.slidingWindow.forEach((w, l) => {
      const global = (l + 1) % 6 === 0;
      expect(w).toBe(global ? 0 : 1024);
      expect(c.rope[l]).toEqual(global ? { theta: 1e6, scaling: { type: 'linear', factor: 8 } } : { theta: 1e4, scaling: null });
    });
    // transformers 5's rope_parameters and explicit layer_types read the same.
    const v5 = norm({ ...GEMMA3_4B.text_config, rope_scaling: undefined, layer_types: c.slidingWindow.map((w) => (w ? 'sliding_attention' : 'full_attention')), rope_parameters: { sliding_attention: { rope_type: 'default', rope_theta: 1e4 }, full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1e6 } } });
    expect(v5.rope).toEqual(c.rope);
    expect(v5.slidingWindow).toEqual(c.slidingWindow);
  });

  test('gemma 3: unsupported options fail clearly at normalize', () => {
    expect(() => norm({ ...GEMMA3_1B, attn_logit_softcapping: 50 })).toThrow(/attn_logit_softcapping=50 is not supported/);
    expect(() => norm({ ...GEMMA3_1B, use_bidirectional_attention: true })).toThrow(/bidirectional/);
    expect(() => norm({ ...GEMMA3_1B, hidden_activation: 'relu' })).toThrow(/hidden_activation/);
    expect(norm({ ...GEMMA3_1B, final_logit_softcapping: 30 }).finalLogitSoftcap).toBe(30);
  });

  test('random fixtures carry the HF tensor names of each family', () => {
    const names = (raw: Record<string, any>) => {
      const st = randomModelFiles(raw).get('model.safetensors')!;
      return new Set(parseSafetensorsHeader('model.safetensors', st, st.byteLength).tensors.keys());
    };
    const small = { layers: 1, hidden: 32, heads: 2, kvHeads: 1, inter: 48, vocab: 64 };
    const q2 = names(scaleConfig(QWEN25, small));
    for (const n of ['q_proj.bias', 'k_proj.bias', 'v_proj.bias']) expect(q2.has(`model.layers.0.self_attn.${n}`)).toBe(true);
    expect(q2.has('model.layers.0.self_attn.o_proj.bias') || q2.has('lm_head.weight')).toBe(false);
    const q3 = names(scaleConfig(QWEN3, { ...small, headDim: 32 }));
    expect(q3.has('model.layers.0.self_attn.q_norm.weight') && q3.has('model.layers.0.self_attn.k_norm.weight')).toBe(true);
    expect(q3.has('model.layers.0.self_attn.q_proj.bias')).toBe(false);
    const g = names(scaleConfig(GEMMA3_1B, { ...small, headDim: 16 }));
    for (const n of ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm']) expect(g.has(`model.layers.0.${n}.weight`), n).toBe(true);
    expect(g.has('lm_head.weight')).toBe(false);
    expect(names(scaleConfig({ ...LLAMA32, tie_word_embeddings: false }, small)).has('lm_head.weight')).toBe(true);
  });
});

// ---------------------------------------------------------------- WebGPU side

const TINY = { hidden: 64, heads: 4, inter: 96, vocab: 300, maxPositions: 256 };
const FIX = { pageSize: 8, prefillChunk: 16 };
const FIXTURES: [string, Record<string, any>][] = [
  ['qwen2.5 (q/k/v biases, tied)', { config: QWEN25, scale: { ...TINY, layers: 4, kvHeads: 1 }, ...FIX }],
  ['qwen3 (q/k norms, head_dim 32 ≠ 64/4)', { config: QWEN3, scale: { ...TINY, layers: 4, kvHeads: 2, headDim: 32 }, ...FIX }],
  ['llama 3.2 (rope llama3, tied)', { config: LLAMA32, scale: { ...TINY, layers: 3, kvHeads: 2 }, ...FIX }],
  ['llama 3.2 (rope llama3, untied)', { config: { ...LLAMA32, tie_word_embeddings: false }, scale: { ...TINY, layers: 3, kvHeads: 2 }, ...FIX }],
  // gemma-3-1b as published (pattern 6: layers 0-4 and 6-7 local, 5 global), window 6.
  ['gemma-3-1b (5 local : 1 global, window 6)', { config: { ...GEMMA3_1B, sliding_window: 6 }, scale: { ...TINY, layers: 8, kvHeads: 1, headDim: 32 }, ...FIX }],
  // 4b-like: explicit layer_types, linear rope ×8 on global layers, final softcap, window 5.
  ['gemma-3 (layer_types, linear rope on global, softcap 30, window 5)', {
    config: { ...GEMMA3_1B, sliding_window: 5, final_logit_softcapping: 30, rope_scaling: { rope_type: 'linear', factor: 8 }, layer_types: ['sliding_attention', 'full_attention', 'sliding_attention', 'sliding_attention', 'full_attention', 'sliding_attention'] },
    scale: { ...TINY, layers: 6, kvHeads: 2, headDim: 16 }, ...FIX,
  }],
];
const prompt = (n: number, salt: number) => Array.from({ length: n }, (_, i) => (i * 37 + salt * 53 + 11) % 300);
const PROMPTS = [prompt(23, 1), prompt(37, 2)];
const call = (page: any, fn: string, ...args: unknown[]) => page.evaluate(([f, a]: [string, unknown[]]) => (globalThis as any).pop.engineCases[f](...a), [fn, args] as [string, unknown[]]);

for (const [name, spec] of FIXTURES) {
  test(`${name}: prefill + decode logits, POP exact, POP keep < L-1 vs the reference`, async ({ harness }) => {
    // (1) Teacher-forced logits across page (8) and chunk (16) boundaries and past the window.
    for (const n of [1, 9, 17, 37]) {
      const errs: number[] = await call(harness, 'logitsVsReference', spec, prompt(n, 3), [5, 17, 250, 3, 99, 1]);
      expect(Math.max(...errs), `prompt ${n}: ${errs}`).toBeLessThan(1e-4);
    }
    const L: number = await call(harness, 'layers', spec);
    for (const p of PROMPTS) {
      // (2) POP exact: identical greedy tokens, first-token logits within 1e-4.
      const off = await call(harness, 'generate', spec, p, 12, 'off');
      const exact = await call(harness, 'generate', spec, p, 12, 'exact');
      expect(exact.keep).toBe(L - 1);
      expect(exact.ids).toEqual(off.ids);
      const d = await call(harness, 'popVsOff', spec, p, 'exact');
      expect(d.diff).toBeLessThan(1e-4);
      expect(d.sameArgmax).toBe(true);
      // (3) POP keep < L-1 against the reference implementation of POP.
      const keep = Math.max(1, Math.floor(L / 2) - 1);
      const got = await call(harness, 'generate', spec, p, 12, keep);
      expect(got.keep).toBe(keep);
      expect(got.ids, `keep ${keep}`).toEqual(await call(harness, 'reference', spec, p, 12, keep));
      const errs: number[] = await call(harness, 'logitsVsReference', spec, p, [7], keep);
      expect(Math.max(...errs), `keep ${keep} logits`).toBeLessThan(1e-4);
    }
  });
}
