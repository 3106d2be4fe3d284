// Gemma 4 text (E2B / E4B / 31B structure). Node side: the real configs normalize to the
// published structure (per-layer head dims and K/V heads, KV sharing sources, double-wide MLPs,
// proportional RoPE, PLE, bf16 embedding scale), the MoE block is refused by name, and POP's
// `exact` is the smallest lossless keep. WebGPU side: the three new kernels against their CPU
// twins, and tiny-random fixtures scaled down from the real configs against the independent
// CPU reference at full depth, at `exact` and at a keep below the first shared layer.
import { readFileSync } from 'node:fs';
import { test, expect } from './fixtures.ts';
import { layerShape, ropeInvFreq, type ModelConfig } from '../src/model/config.ts';
import { familyFor } from '../src/model/registry.ts';
import { losslessKeep, resolveKeepWithReason } from '../src/engine/pop.ts';
import { randomModelFiles } from '../src/model/random_model.ts';
import { parseSafetensorsHeader } from '../src/model/safetensors.ts';
import { estimateFit } from '../src/model/fit.ts';
import { UnsupportedFeatureError } from '../src/errors.ts';
import { loadModelFiles } from '../src/model/loader.ts';
import { memorySource } from '../src/model/source.ts';
import { renderChatTemplate } from '../src/model/chat_template.ts';

const cfg = (dir: string) => JSON.parse(readFileSync(new URL(`../configs/${dir}/config.json`, import.meta.url), 'utf8'));
const E2B = cfg('google__gemma-4-E2B-it');
const E4B = cfg('google__gemma-4-E4B-it');
const G31B = cfg('google__gemma-4-31B-it');
const norm = (raw: Record<string, any>): ModelConfig => familyFor(raw.model_type).normalize(raw);

/**
 * E2B scaled down, keeping its structure (test/fixtures/gemma4_e2b_tiny, also the CLI's): 4
 * sliding : 1 full, the last 4 of 10 layers KV-shared (sliding ones read layer 5, full ones
 * layer 4), double-wide MLP on them, PLE, full layers with twice the head dim and proportional
 * RoPE, window 6, softcap 30. Stored as Gemma4ForConditionalGeneration (model.language_model.*).
 */
const E2B_TINY = JSON.parse(readFileSync(new URL('./fixtures/gemma4_e2b_tiny/config.json', import.meta.url), 'utf8'));
/** 31B's structure (attention_k_eq_v, 1 global K/V head vs 2, no PLE, no sharing), as Gemma4ForCausalLM (model.*). */
const G31B_TINY = {
  ...G31B.text_config,
  num_hidden_layers: 6, layer_types: G31B.text_config.layer_types.slice(0, 6),
  hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, num_global_key_value_heads: 1, head_dim: 16, global_head_dim: 32,
  intermediate_size: 48, vocab_size: 300, sliding_window: 5, max_position_embeddings: 256,
};

// ---------------------------------------------------------------- Node side (no browser)

test.describe('gemma 4 config (node)', () => {
  test('the E2B fixture is E2B scaled down: same structure keys', () => {
    for (const k of ['layer_types', 'rope_parameters', 'use_double_wide_mlp', 'final_logit_softcapping', 'attention_k_eq_v', 'enable_moe_block']) {
      const want = k === 'layer_types' ? E2B.text_config[k].slice(0, 10) : E2B.text_config[k];
      expect(E2B_TINY.text_config[k], k).toEqual(want);
    }
  });

  test('E2B: per-layer shapes, KV sharing sources, double-wide MLP, proportional RoPE, PLE, bf16 embedding scale', () => {
    const c = norm(E2B);
    expect(c).toMatchObject({ modelType: 'gemma4', numLayers: 35, hiddenSize: 1536, numHeads: 8, numKvHeads: 1, headDim: 256, attnScale: 1, finalLogitSoftcap: 30, valueNorm: true, layerScalar: true, qkNorm: true, postNorms: true, tieWordEmbeddings: true });
    expect(familyFor('gemma4').normGainOffset).toBe(0); // x·w, not x·(1+w)
    expect(c.embeddingScale).toBe(39.25); // bf16(sqrt(1536)) = bf16(39.19)
    expect(c.perLayerInput).toEqual({ dim: 256, vocab: 262144, tableScale: 16 });
    const full = c.slidingWindow.flatMap((w, l) => (w === 0 ? [l] : []));
    expect(full).toEqual([4, 9, 14, 19, 24, 29, 34]);
    for (let l = 0; l < 35; l++) {
      const s = layerShape(c, l);
      expect(s.headDim, `layer ${l}`).toBe(full.includes(l) ? 512 : 256);
      expect(s.numKvHeads).toBe(1);
      expect(s.intermediateSize, `layer ${l}`).toBe(l >= 15 ? 12288 : 6144);
      expect(s.kEqV).toBe(false);
      // Shared layers read the last earlier non-shared layer of their type: sliding -> 13, full -> 14.
      expect(c.kvSource![l], `layer ${l}`).toBe(l < 15 ? l : full.includes(l) ? 14 : 13);
    }
    // Sliding layers: default RoPE over all 128 pairs of 256; full layers: proportional, only the
    // first 64 of 256 pairs rotate, with exponent denominator 512 (the whole global head dim).
    const slide = ropeInvFreq(c.rope[0], 256), glob = ropeInvFreq(c.rope[4], 512);
    expect(slide.length).toBe(128);
    expect(slide[1]).toBeCloseTo(Math.pow(1e4, -2 / 256), 6); // stored in f32
    expect(glob.length).toBe(256);
    expect([...glob].filter((f) => f > 0).length).toBe(64);
    expect(glob[63]).toBeCloseTo(Math.pow(1e6, -126 / 512), 9);
    expect(glob[64]).toBe(0);
  });

  test('E4B and 31B: sharing sources, global K/V heads with attention_k_eq_v, no PLE on 31B', () => {
    const e4 = norm(E4B);
    expect(e4.numLayers).toBe(42);
    expect(e4.kvSource!.slice(24)).toEqual(e4.slidingWindow.slice(24).map((w) => (w ? 22 : 23)));
    expect(layerShape(e4, 30).intermediateSize).toBe(10240); // no double-wide MLP
    expect(e4.embeddingScale).toBe(50.5);
    const g = norm(G31B);
    expect(g.perLayerInput).toBeUndefined();
    expect(g.kvSource!.every((s, l) => s === l)).toBe(true);
    expect(layerShape(g, 5)).toEqual({ headDim: 512, numKvHeads: 4, intermediateSize: 21504, kEqV: true });
    expect(layerShape(g, 0)).toEqual({ headDim: 256, numKvHeads: 16, intermediateSize: 21504, kEqV: false });
    expect(g.slidingWindow[0]).toBe(1024);
    expect(g.embeddingScale).toBe(73.5);
  });

  test("POP exact is the smallest lossless keep: the last layer with its own K/V (E2B 14, E4B 23; 31B L-1); 'auto' without a calibration falls back to it", () => {
    expect(losslessKeep(norm(E2B)).keep).toBe(14);
    expect(losslessKeep(norm(E4B)).keep).toBe(23);
    expect(losslessKeep(norm(G31B)).keep).toBe(59);
    const r = resolveKeepWithReason('exact', 35, null, losslessKeep(norm(E2B)));
    expect(r.keep).toBe(14);
    expect(r.reason).toMatch(/KV-shared/);
    expect(resolveKeepWithReason('auto', 35, null, losslessKeep(norm(E2B))).keep).toBe(14);
    expect(resolveKeepWithReason('auto', 35, { keep: 9, layers: 35 }, losslessKeep(norm(E2B)))).toMatchObject({ keep: 9, reason: expect.stringMatching(/calibrated/) });
    expect(resolveKeepWithReason('off', 35, null).keep).toBe(35);
  });

  test('the MoE block (26B-A4B) is refused by name with UNSUPPORTED_FEATURE, also through the loader', async () => {
    const moe = { ...E2B, text_config: { ...E2B.text_config, enable_moe_block: true, num_experts: 128, top_k_experts: 8, moe_intermediate_size: 704 } };
    expect(() => norm(moe)).toThrow(UnsupportedFeatureError);
    expect(() => norm(moe)).toThrow(/enable_moe_block/);
    const files = new Map([['config.json', new TextEncoder().encode(JSON.stringify(moe))]]);
    const err = await loadModelFiles(memorySource(files)).catch((e) => e);
    expect(err).toBeInstanceOf(UnsupportedFeatureError);
    expect(err.code).toBe('UNSUPPORTED_FEATURE');
    expect(err.fields.feature).toBe('enable_moe_block');
  });

  // Gemma 4's chat template. configs/google__gemma-4-* hold no template (only config.json), so
  // the fixture is the one llama.cpp keeps as Google's (models/templates/gemma4.jinja, the
  // 12,133-character version); not checked against the Hub's file. It loads from the model
  // folder's chat_template.jinja and renders with the vars ModelSession.renderChat passes; the
  // expected strings are Python jinja2's (transformers' trim_blocks / lstrip_blocks) rendering.
  test("the Gemma 4 chat template from the model folder: system turn, empty thought channel after the generation prompt, enable_thinking's <|think|>, earlier thoughts stripped (= Python jinja2's text)", async () => {
    const template = readFileSync(new URL('./fixtures/gemma4_chat_template.jinja', import.meta.url), 'utf8');
    const files = randomModelFiles(E2B_TINY);
    files.set('chat_template.jinja', new TextEncoder().encode(template));
    const mf = await loadModelFiles(memorySource(files));
    expect(mf.chatTemplate).toBe(template);
    const chat = [{ role: 'system', content: ' Be brief. ' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: '<|channel>thought\nplan<channel|>Hello!' }, { role: 'user', content: 'Bye' }];
    const render = (vars: Record<string, unknown>) => renderChatTemplate(mf.chatTemplate!, { add_generation_prompt: true, bos_token: '<bos>', ...vars });
    expect(render({ messages: chat })).toBe('<bos><|turn>system\nBe brief.<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\nHello!<turn|>\n<|turn>user\nBye<turn|>\n<|turn>model\n<|channel>thought\n<channel|>');
    expect(render({ messages: chat.slice(1, 2), enable_thinking: true })).toBe('<bos><|turn>system\n<|think|><turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\n');
    const tools = [{ type: 'function', function: { name: 'w', description: 'weather', parameters: { type: 'object', properties: { city: { type: 'string', description: 'c' } }, required: ['city'] } } }];
    expect(render({ messages: chat.slice(1, 2), tools })).toBe('<bos><|turn>system\n<|tool>declaration:w{description:<|"|>weather<|"|>,parameters:{properties:{city:{description:<|"|>c<|"|>,type:<|"|>STRING<|"|>}},required:[<|"|>city<|"|>],type:<|"|>OBJECT<|"|>}}<tool|><turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>');
  });

  test('random fixtures: text tower names under model.language_model.*, no K/V weights on shared layers, no v_proj with k_eq_v', () => {
    const names = (raw: Record<string, any>) => {
      const st = randomModelFiles(raw).get('model.safetensors')!;
      return new Set(parseSafetensorsHeader('model.safetensors', st, st.byteLength).tensors.keys());
    };
    const e = names(E2B_TINY), p = 'model.language_model.';
    for (const n of ['embed_tokens_per_layer.weight', 'per_layer_model_projection.weight', 'per_layer_projection_norm.weight', 'layers.0.per_layer_input_gate.weight', 'layers.0.per_layer_projection.weight', 'layers.0.post_per_layer_input_norm.weight', 'layers.0.layer_scalar', 'layers.5.self_attn.k_proj.weight', 'layers.5.self_attn.v_proj.weight', 'layers.6.self_attn.q_proj.weight']) expect(e.has(p + n), n).toBe(true);
    for (const n of ['layers.6.self_attn.k_proj.weight', 'layers.6.self_attn.v_proj.weight', 'layers.9.self_attn.k_norm.weight']) expect(e.has(p + n), n).toBe(false);
    const g = names(G31B_TINY);
    expect(g.has('model.layers.5.self_attn.k_proj.weight') && !g.has('model.layers.5.self_attn.v_proj.weight')).toBe(true);
    expect(g.has('model.layers.0.self_attn.v_proj.weight')).toBe(true);
    expect(g.has('model.embed_tokens_per_layer.weight')).toBe(false);
  });

  test('fit check counts the PLE table and per-layer shapes; under q4 both embedding tables are q4 and E2B / E4B fit 8 GiB', () => {
    const limits = { maxBufferSize: 2 ** 31, maxStorageBufferBindingSize: 2 ** 31 };
    const q4Row = (cols: number) => (cols / 32) * (16 + 4); // 32 nibbles + one f32 scale per group
    const f32 = estimateFit(E2B, 0, 1024, limits, { quantization: 'q4', embeddingDtype: 'f32', lmHeadDtype: 'f32' });
    // f32 tables: the PLE table alone is 262144 x 35·256 x 4 = 9.4 GB; the main embedding 1.6 GB.
    expect(f32.weightBytes).toBeGreaterThan(262144 * 35 * 256 * 4 + 262144 * 1536 * 4);
    expect(f32.splits.map((s) => s.what)).toContain('per-layer embedding table');
    // KV: 15 non-shared layers (12 sliding x 256 + 3 full x 512, one K/V head), K and V, f32.
    expect(f32.kvBytes).toBe((12 * 256 + 3 * 512) * 2 * 4 * 1024);
    const budget = { ...limits, memoryBytes: 8 * 2 ** 30 };
    const refused = estimateFit(E2B, 0, 1024, budget, { quantization: 'q4', embeddingDtype: 'f32' });
    expect(refused.fits).toBe(false);
    expect(refused.problems[0]).toMatchObject({ what: 'weights + KV cache', limitName: 'device memory' });
    // The default under q4: both tables q4 (the tied head is the q4 embedding: no head bytes).
    const q4 = estimateFit(E2B, 0, 1024, budget, { quantization: 'q4' });
    const tables = 262144 * q4Row(1536) + 262144 * q4Row(35 * 256);
    expect(f32.weightBytes - q4.weightBytes).toBe(262144 * 1536 * 4 + 262144 * 35 * 256 * 4 - tables);
    expect(q4.fits).toBe(true);
    expect(q4.weightBytes).toBeLessThan(3.2e9);
    // The q4 per-layer table (1.47 GB) fits a 2 GiB binding; SwiftShader's 1 GiB takes 2 row parts.
    expect(q4.splits).toEqual([]);
    const gib = estimateFit(E2B, 0, 1024, { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30 }, { quantization: 'q4' });
    expect(gib.splits.map((s) => [s.what, s.parts])).toEqual([['per-layer embedding table', 2]]);
    // An f16 LM head is its own copy beside the q4 embedding.
    expect(estimateFit(E2B, 0, 1024, budget, { quantization: 'q4', lmHeadDtype: 'f16' }).weightBytes - q4.weightBytes).toBe(262144 * 1536 * 2);
    const e4 = estimateFit(E4B, 0, 1024, budget, { quantization: 'q4' });
    expect(e4.fits).toBe(true);
    expect(e4.weightBytes).toBeLessThan(5e9);
  });
});

// ---------------------------------------------------------------- WebGPU side

const FIX = { pageSize: 8, prefillChunk: 16 };
const E2B_SPEC = { config: E2B_TINY, ...FIX };
const G31B_SPEC = { config: G31B_TINY, ...FIX };
const prompt = (n: number, salt: number) => Array.from({ length: n }, (_, i) => (i * 37 + salt * 53 + 11) % 300);
const PROMPTS = [prompt(23, 1), prompt(37, 2)];
const call = (page: any, fn: string, ...args: unknown[]) => page.evaluate(([f, a]: [string, unknown[]]) => (globalThis as any).pop.engineCases[f](...a), [fn, args] as [string, unknown[]]);
const g4 = (page: any, fn: string, ...args: unknown[]) => page.evaluate(([f, a]: [string, unknown[]]) => (globalThis as any).pop.gemma4Cases[f](...a), [fn, args] as [string, unknown[]]);

test('gemma 4 kernels vs CPU twin: layer scalar, per-head norm (strided, with and without gain), per-layer input gate (1e-5)', async ({ harness }) => {
  const cases = [
    { op: 'scale', n: 1000, s: 0.37 },
    { op: 'head_norm', rows: 5, rowStride: 112, colOffset: 48, heads: 2, headDim: 32, withGain: false },
    { op: 'head_norm', rows: 3, rowStride: 80, colOffset: 16, heads: 4, headDim: 16, withGain: true },
    { op: 'gate_mul', rows: 4, dim: 8, otherStride: 80, otherOffset: 24, act: 'gelu_tanh' },
    { op: 'gate_mul', rows: 3, dim: 40, otherStride: 200, otherOffset: 160, act: 'silu' },
    // Gate values far out (the per-layer gate reads the un-normed hidden state): no NaN from tanh.
    { op: 'gate_mul', rows: 2, dim: 64, otherStride: 64, otherOffset: 0, act: 'gelu_tanh', gateScale: 400 },
  ];
  for (const c of cases) {
    const r = await g4(harness, 'kernel', c);
    expect(r.err, JSON.stringify(c)).toBeLessThan(1e-5);
    expect(r.changed, JSON.stringify(c)).toBe(true);
  }
});

test('attention with 512-dim heads (Gemma 4 global layers) on the GEMM path vs the CPU twin: decode and prefill rows, window (1e-4)', async ({ harness }) => {
  for (const c of [
    { rows: 1, past: 20, heads: 4, kvHeads: 1, headDim: 512, window: 0 },
    { rows: 9, past: 3, heads: 4, kvHeads: 2, headDim: 512, window: 0 },
    { rows: 5, past: 10, heads: 2, kvHeads: 1, headDim: 320, window: 6 },
  ]) {
    const e: number = await g4(harness, 'wideAttention', c);
    expect(e, JSON.stringify(c)).toBeLessThan(1e-4);
  }
});

for (const [name, spec, lossless, below] of [
  ['E2B-style (KV sharing, PLE, double-wide MLP, global head dim)', E2B_SPEC, 5, 3],
  ['31B-style (attention_k_eq_v, global K/V heads)', G31B_SPEC, 5, 2],
] as const) {
  test(`gemma 4 ${name}: logits vs the reference at full depth, exact = keep ${lossless} equals full depth, keep ${below} matches the reference's POP`, async ({ harness }) => {
    // (1) Teacher-forced logits across page (8) and chunk (16) boundaries and past the window.
    for (const n of [1, 9, 17, 37]) {
      const errs: number[] = await call(harness, 'logitsVsReference', spec, prompt(n, 3), [5, 17, 250, 3, 99, 1]);
      expect(Math.max(...errs), `prompt ${n}: ${errs}`).toBeLessThan(1e-4);
    }
    for (const p of PROMPTS) {
      // (2) exact: the automatic lossless keep; tokens identical to full depth, logits within 1e-4.
      const off = await call(harness, 'generate', spec, p, 12, 'off');
      const exact = await call(harness, 'generate', spec, p, 12, 'exact');
      expect(exact.keep).toBe(lossless);
      expect(exact.ids).toEqual(off.ids);
      const d = await call(harness, 'popVsOff', spec, p, 'exact');
      expect(d.diff).toBeLessThan(1e-4);
      expect(d.sameArgmax).toBe(true);
      // (3) A keep below it: against the reference implementation of POP.
      const got = await call(harness, 'generate', spec, p, 12, below);
      expect(got.keep).toBe(below);
      expect(got.ids, `keep ${below}`).toEqual(await call(harness, 'reference', spec, p, 12, below));
      const errs: number[] = await call(harness, 'logitsVsReference', spec, p, [7], below);
      expect(Math.max(...errs), `keep ${below} logits`).toBeLessThan(1e-4);
    }
  });
}

// Issue 19 / 18 §2: int4 vocabulary tables. Under q4 the main embedding and the per-layer
// table are quantized as they stream (row by row, group 32; the per-layer rows are 80 values:
// a partial group) and gathered by embed_q4; the tied LM head is the q4 embedding itself. With
// maxBindingBytes 8 KiB both tables are row parts (12 KB and 18 KB). Against the CpuOps engine
// loaded the same way (the same dequantized values), at full depth, exact and keep 3.
test('gemma 4 E2B-style q4: q4 embedding and q4 per-layer table (row parts), tied head reading the q4 embedding: logits vs the CPU twin at full depth, exact (keep 5, = full depth) and keep 3 (1e-4)', async ({ harness }) => {
  const o = { quantization: 'q4', maxBindingBytes: 8192 };
  for (const [pop, keep] of [['off', 10], ['exact', 5], [3, 3]] as const) {
    const r = await call(harness, 'tablesVsCpu', E2B_SPEC, o, PROMPTS[0], [5, 17, 250], pop);
    expect(Math.max(...r.errs), `pop ${pop}: ${r.errs}`).toBeLessThan(1e-4);
    expect(r.argmaxAgree, `pop ${pop}`).toBe(true);
    expect(r.keep).toBe(keep);
    if (pop === 'exact') expect([r.offDiff < 1e-4, r.sameArgmaxAsOff], 'exact vs full depth').toEqual([true, true]);
    if (pop === 3) expect(r.offDiff, 'keep 3 is lossy (the check can fail)').toBeGreaterThan(1e-3);
    expect([r.embed.kind, r.lmHead.kind, r.headIsEmbed, r.ple.kind]).toEqual(['q4', 'q4', true, 'q4']);
    expect(r.embed.parts).toBeGreaterThan(1);
    expect(r.ple.parts).toBeGreaterThan(1);
  }
});

test('gemma 4 E2B-style: keep = the first shared layer is lossless too, and a keep below the lossless one is not (the test can fail)', async ({ harness }) => {
  const p = PROMPTS[1];
  const first = await call(harness, 'popVsOff', E2B_SPEC, p, 6);
  expect(first.diff).toBeLessThan(1e-4);
  const lossy = await call(harness, 'popVsOff', E2B_SPEC, p, 4);
  expect(lossy.diff).toBeGreaterThan(1e-3);
});

test('gemma 4 E2B-style n: 3: sharedKvBytes counts each layer with its own K/V at its own width (full layers twice as wide, KV-shared layers nothing)', async ({ harness }) => {
  const s = await g4(harness, 'nChoicesStats', E2B_TINY, PROMPTS[0], 3);
  expect(s.choices).toBe(3);
  // 2 extra choices x 3 pages (23 tokens, 8 per page) x 8 tokens x K and V x 4 bytes x
  // (layers 0-3 and 5 sliding: 1 K/V head x 16, layer 4 full: 1 x 32; layers 6-9 read 5 and 4).
  expect(s.sharedKvBytes).toBe(2 * 3 * 8 * 2 * 4 * (5 * 16 + 32));
});

test('gemma 4: a checkpoint carrying unused K/V weights on its KV-shared layers loads and computes the same logits', async ({ harness }) => {
  const r = await g4(harness, 'unusedSharedKv', E2B_TINY, 7, 'model.language_model.', prompt(19, 4));
  expect(r.extra).toHaveLength(3); // they were not in the fixture before
  expect(r.diff).toBe(0);
});

test("gemma 4 E2B-style calibration ('auto'): shared layers' prefill importance and POP loss at keeps >= the lossless one are zero; the recommended keep is at most it", async ({ harness }) => {
  const r = await harness.evaluate(async ([config, ids]) => {
    const pop = (globalThis as any).pop;
    const engine = await pop.createGpuEngine(pop.memorySource(pop.randomModelFiles(config, { seed: 7 })), { prefillChunk: 16, pageSize: 8 });
    const report = await pop.calibrate(engine, ids, { context: 24, continuation: 6, budget: 1e-4 });
    engine.calibration = { keep: report.keep, layers: report.layers, budget: report.budget };
    const auto = await engine.generate(ids.slice(0, 20), { maxTokens: 2, pop: 'auto', ignoreEos: true });
    engine.unload();
    return { ...report, autoKeep: auto.stats.keep, autoReason: auto.stats.keepReason };
  }, [E2B_TINY, prompt(30, 5)] as const); // one sample: 24 context + 6 continuation tokens
  expect(r.layers).toBe(10);
  for (let l = 5; l < 10; l++) expect(Math.abs(r.prefillImportance[l]), `layer ${l}`).toBeLessThan(1e-4);
  for (const p of r.popLoss) if (p.keep >= 5) expect(Math.abs(p.delta), `keep ${p.keep}`).toBeLessThan(1e-4);
  expect(r.keep).toBeLessThanOrEqual(5);
  expect(r.autoKeep).toBe(r.keep);
  expect(r.autoReason).toMatch(/calibrated/);
});
