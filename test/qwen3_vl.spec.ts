// Qwen3-VL. Node side: the real 4B config (and the 2B shapes) normalize; Qwen2VLImageProcessorFast's
// arithmetic (smart_resize with Python's round, token counts for several sizes, the patch
// flatten order); get_rope_index's M-RoPE positions for text + image + text, two images and a
// second turn, and decode. WebGPU side: a tiny-random Qwen3-VL scaled down from the 4B config
// (same structure: interleaved M-RoPE with mrope_section scaled to head_dim, 3 non-contiguous
// DeepStack taps, tied head) against the independent CPU reference on image prompts of two
// sizes that need resizing: tower, DeepStack features and logits at full depth, POP exact equal
// to full depth, a mid keep against the reference's POP, decode after the image; a keep below
// the DeepStack depth is refused with a typed error.
import { readFileSync } from 'node:fs';
import { test, expect } from './fixtures.ts';
import { familyFor } from '../src/model/registry.ts';
import { paramCount } from '../src/model/fit.ts';
import type { Qwen3VisionConfig } from '../src/model/vision_config.ts';
import { mropeAxis, mropePositions, ropePositionTable } from '../src/vision/mrope.ts';
import { normalizeQwen2VLProcessor, preprocessQwen2VL, qwenImageGrid, roundHalfEven, smartResize } from '../src/vision/qwen3_vl.ts';
import { qwen3VlPreprocessorConfig, scaleQwen3VlConfig } from '../src/vision/random_vlm.ts';
import { Qwen3VlReference } from '../src/reference/vlm_reference.ts';
import { ropeInvFreq } from '../src/model/config.ts';
import { expandImages, imageTokenCount } from '../src/vision/runtime.ts';
import { visionFamilyOf } from '../src/vision/pieces.ts';

const QWEN4B = JSON.parse(readFileSync(new URL('../configs/Qwen__Qwen3-VL-4B-Instruct/config.json', import.meta.url), 'utf8'));
const IMG = 290, VS = 291, VE = 292;

// 4B scaled down: text 5 layers x 64 (4 / 2 heads, head_dim 32: mrope_section [6, 5, 5]); a
// 5-block tower 32 wide (2 heads of 16), patch 8 (temporal 2), 6 x 6 learned positions,
// DeepStack taps at blocks 0, 2, 3. Images: multiples of 16 px within 32^2..64^2 pixels.
// Small chunks and pages so image rows cross both.
const TINY = {
  config: QWEN4B,
  scale: { text: { layers: 5, hidden: 64, heads: 4, kvHeads: 2, inter: 96, vocab: 300, maxPositions: 512, headDim: 32 }, vision: { hidden: 32, layers: 5, heads: 2, inter: 64, patch: 8, positions: 36, deepstack: [0, 2, 3] }, imageTokenId: IMG, visionStartId: VS, visionEndId: VE },
  preprocessor: { ...qwen3VlPreprocessorConfig(8, 2, 2), size: { shortest_edge: 1024, longest_edge: 4096 } },
  prefillChunk: 16, pageSize: 8,
};
const TINY_CONFIG = scaleQwen3VlConfig(TINY.config, TINY.scale);
/** Text around images: -1 is one image (<|vision_start|> + tokens + <|vision_end|>). */
const ONE = [1, 17, 33, -1, 44, 55, 66];
const TWO = [1, 17, -1, 44, 55, 3, 9, -1, 21, 66];

const call = (page: any, fn: string, ...args: unknown[]) => page.evaluate(([f, a]: [string, unknown[]]) => (globalThis as any).pop.qwenCases[f](...a), [fn, args] as [string, unknown[]]);

test.describe('Qwen3-VL config, preprocessing and positions (node)', () => {
  test('the real Qwen3-VL-4B config normalizes: Qwen3 text with M-RoPE [24, 20, 20], a 24-block tower, DeepStack taps 5 / 11 / 17', () => {
    const spec = familyFor('qwen3_vl');
    const c = spec.normalize(QWEN4B);
    expect(c).toMatchObject({ modelType: 'qwen3_vl', numLayers: 36, hiddenSize: 2560, numHeads: 32, numKvHeads: 8, headDim: 128, vocabSize: 151936, tieWordEmbeddings: true, qkNorm: true, attentionBias: false, rmsNormEps: 1e-6, eosTokenIds: [151645] });
    expect(c.rope[0]).toEqual({ theta: 5000000, scaling: null });
    expect(c.vision).toMatchObject({ kind: 'qwen3_vl', hiddenSize: 1024, intermediateSize: 4096, numLayers: 24, numHeads: 16, headDim: 64, patchSize: 16, temporalPatch: 2, mergeSize: 2, positionSide: 48, deepstackIndexes: [5, 11, 17], deepstackLayers: 3, imageTokenId: 151655, visionStartId: 151652, visionEndId: 151653, textHidden: 2560, mropeSection: [24, 20, 20] });
    expect(spec.globalTensors.embed).toBe('model.language_model.embed_tokens.weight');
    expect(spec.layerTensors.kNorm).toBe('model.language_model.layers.{layer}.self_attn.k_norm.weight');
    const t = new Map(spec.extraTensors!(c).map((x) => [x.name, x.shape]));
    expect(t.get('model.visual.patch_embed.proj.weight')).toEqual([1024, 3, 2, 16, 16]);
    expect(t.get('model.visual.pos_embed.weight')).toEqual([2304, 1024]);
    expect(t.get('model.visual.merger.norm.weight')).toEqual([1024]);
    expect(t.get('model.visual.deepstack_merger_list.2.norm.weight')).toEqual([4096]);
    expect(t.get('model.visual.deepstack_merger_list.0.linear_fc2.weight')).toEqual([2560, 4096]);
    // Qwen3-VL-2B (configs/README.md): text 28 x 2048, 16 / 8 heads of 128; the same tower into 2048.
    const two = structuredClone(QWEN4B);
    Object.assign(two.text_config, { num_hidden_layers: 28, hidden_size: 2048, num_attention_heads: 16, num_key_value_heads: 8, intermediate_size: 6144 });
    two.vision_config.out_hidden_size = 2048;
    const c2 = spec.normalize(two);
    expect([c2.numLayers, c2.hiddenSize, c2.numHeads, c2.numKvHeads, (c2.vision as Qwen3VisionConfig).textHidden]).toEqual([28, 2048, 16, 8, 2048]);
    expect(paramCount(c2)).toBeGreaterThan(paramCount(familyFor('qwen3').normalize({ ...two.text_config, model_type: 'qwen3' })) + 300e6);
  });

  test('unsupported or inconsistent settings fail at normalize', () => {
    const n = (f: (r: any) => void) => () => { const r = structuredClone(QWEN4B); f(r); familyFor('qwen3_vl').normalize(r); };
    expect(n((r) => (r.text_config.rope_scaling.mrope_section = [24, 20, 21]))).toThrow(/mrope_section/);
    expect(n((r) => (r.text_config.rope_scaling.mrope_interleaved = false))).toThrow(/interleaved/);
    expect(n((r) => (r.vision_config.out_hidden_size = 2048))).toThrow(/out_hidden_size/);
    expect(n((r) => (r.vision_config.deepstack_visual_indexes = [5, 24]))).toThrow(/deepstack_visual_indexes/);
    expect(n((r) => (r.vision_config.num_position_embeddings = 2300))).toThrow(/square/);
  });

  test("smart_resize as the processor: Python's round (ties to even), min / max pixels; token counts for several sizes", () => {
    expect([0.5, 1.5, 2.5, 10.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 10, 2, 3]);
    // Expected values from HF's smart_resize run in Python (factor 32, 256^2 .. 4096^2 pixels).
    const cases: [number, number, number, number, number][] = [
      [480, 640, 480, 640, 300], [1080, 1920, 1088, 1920, 2040], [100, 80, 288, 256, 72], [336, 504, 320, 512, 160],
      [48, 80, 224, 352, 77], [720, 1280, 704, 1280, 880], [4000, 6000, 3328, 4992, 16224], [80, 8000, 64, 8000, 500],
    ];
    const v = familyFor('qwen3_vl').normalize(QWEN4B).vision as Qwen3VisionConfig;
    const p = normalizeQwen2VLProcessor(qwen3VlPreprocessorConfig(16, 2, 2), v);
    expect(p).toMatchObject({ minPixels: 65536, maxPixels: 16777216, resample: 'bicubic', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], rescaleFactor: 1 / 255 });
    for (const [h, w, rh, rw, tokens] of cases) {
      expect(smartResize(h, w, 32, 65536, 16777216), `${h}x${w}`).toEqual([rh, rw]);
      expect(qwenImageGrid(h, w, p, v).tokens, `${h}x${w}`).toBe(tokens);
    }
    // The tiny fixture's processor (factor 16, 32^2 .. 64^2): 40 / 16 = 2.5 rounds to 2, 56 / 16 = 3.5 to 4.
    for (const [h, w, rh, rw] of [[30, 40, 32, 32], [50, 70, 48, 64], [100, 200, 32, 80], [40, 56, 32, 64], [17, 17, 32, 32]]) expect(smartResize(h, w, 16, 1024, 4096)).toEqual([rh, rw]);
    expect(() => smartResize(10, 40, 16, 1024, 4096)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => smartResize(16, 3300, 16, 16, 1e9)).toThrow(/aspect ratio/);
    // OPENAI_CLIP mean / std are the class defaults; a processor that is not Qwen2-VL's is refused.
    expect(normalizeQwen2VLProcessor(null, v).mean[0]).toBeCloseTo(0.48145466, 8);
    expect(() => normalizeQwen2VLProcessor({ image_processor_type: 'SiglipImageProcessor' }, v)).toThrow(/Qwen2VLImageProcessorFast/);
    expect(() => normalizeQwen2VLProcessor({ patch_size: 14 }, v)).toThrow(/patch_size/);
  });

  test("patches in the processor's order: merge blocks row-major, a block's 2 x 2 patches, each [C, T, p, p] with the frame repeated", () => {
    const v = { ...(familyFor('qwen3_vl').normalize(QWEN4B).vision as Qwen3VisionConfig), patchSize: 2 };
    const p = { ...normalizeQwen2VLProcessor(null, v), minPixels: 16, maxPixels: 1000, doRescale: false, doNormalize: false };
    // 8 x 4 pixels, R = 10 y + x, G = 100 + R, B = 200: no resize (multiples of 4), a 2 x 4 patch grid, 1 x 2 blocks.
    const data = new Uint8Array(8 * 4 * 4);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 8; x++) data.set([10 * y + x, 110 + 10 * y + x, 200, 255], (y * 8 + x) * 4);
    const out = preprocessQwen2VL({ width: 8, height: 4, data }, p, v);
    expect(out.grid).toEqual({ h: 2, w: 4 });
    const K = 3 * 2 * 2 * 2;
    const row = (r: number) => Array.from(out.pixels.subarray(r * K, (r + 1) * K));
    // Row 2 is patch (1, 0) (the first block's lower left), not (0, 2) as raster order would give.
    expect(row(0)).toEqual([0, 1, 10, 11, 0, 1, 10, 11, 110, 111, 120, 121, 110, 111, 120, 121, 200, 200, 200, 200, 200, 200, 200, 200]);
    expect(row(2).slice(0, 4)).toEqual([20, 21, 30, 31]);
    expect(row(4).slice(0, 4)).toEqual([4, 5, 14, 15]);
    expect(row(7).slice(0, 4)).toEqual([26, 27, 36, 37]);
  });

  test('prompt: the template\'s <|image_pad|> becomes gh gw / 4 of them between <|vision_start|> and <|vision_end|>', () => {
    const spec = familyFor('qwen3_vl'), c = spec.normalize(TINY_CONFIG), v = c.vision!;
    const family = visionFamilyOf(v), rt = { family, config: v, processor: family.processor(TINY.preprocessor, v) };
    const pre = [{ pixels: new Float32Array(0), tiles: 1, rows: 0, cols: 0, tileSize: 0, grid: { h: 4, w: 6 } }];
    expect(expandImages('a<|vision_start|><|image_pad|><|vision_end|>b', pre, rt)).toBe(`a<|vision_start|>${'<|image_pad|>'.repeat(6)}<|vision_end|>b`);
    expect(imageTokenCount(rt, pre)).toBe(6);
  });

  test('M-RoPE positions (get_rope_index): text, an image, text; two images and a second turn; decode continues at max + 1', () => {
    // 2 x 3 merged grid at index 3: t = 3, h = 3..4, w = 3..5; text resumes at 3 + max(2, 3) = 6.
    const prompt = [5, 6, VS, IMG, IMG, IMG, IMG, IMG, IMG, VE, 7, 8];
    const p = mropePositions(prompt, IMG, [{ h: 2, w: 3 }]);
    expect(Array.from(p.t)).toEqual([0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7, 8]);
    expect(Array.from(p.h)).toEqual([0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7, 8]);
    expect(Array.from(p.w)).toEqual([0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7, 8]);
    expect(p.next).toBe(9); // not the length, 12
    // Two images (3 x 1, then 1 x 1) and a second user turn after the first answer.
    const turns = [1, VS, IMG, IMG, IMG, VE, 9, 9, 4, VS, IMG, VE, 2, 3];
    const q = mropePositions(turns, IMG, [{ h: 3, w: 1 }, { h: 1, w: 1 }]);
    expect(Array.from(q.t)).toEqual([0, 1, 2, 2, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(Array.from(q.h)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(Array.from(q.w)).toEqual([0, 1, 2, 2, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(q.next).toBe(14);
    // The reference's own get_rope_index agrees on a longer prompt.
    const c = familyFor('qwen3_vl').normalize(TINY_CONFIG);
    const ref = new Qwen3VlReference(c, () => null);
    const long = [1, 2, VS, ...Array(12).fill(IMG), VE, 3, VS, ...Array(6).fill(IMG), VE, 4, 5];
    const grids = [{ h: 3, w: 4 }, { h: 2, w: 3 }];
    const mine = mropePositions(long, IMG, grids), theirs = ref.qwenPositions(long, grids);
    expect(theirs.pos).toEqual(Array.from(mine.t, (t, i) => [t, mine.h[i], mine.w[i]]));
    expect(theirs.next).toBe(mine.next);
    // Interleaved sections: pairs t h w t h w ..., then t only past 3 x 20 (head_dim 128).
    const axes = Array.from({ length: 64 }, (_, i) => mropeAxis(i, [24, 20, 20]));
    expect(axes.slice(0, 7)).toEqual([0, 1, 2, 0, 1, 2, 0]);
    expect(axes.slice(58, 64)).toEqual([1, 2, 0, 0, 0, 0]);
    expect(axes.filter((a) => a === 0).length).toBe(24);
    // The request table: decode rows (past the prompt) are text at next + k on every axis.
    const inv = ropeInvFreq(c.rope[0], c.headDim);
    const tab = ropePositionTable(p, inv, [6, 5, 5], 32, prompt.length + 2);
    for (let i = 0; i < 16; i++) {
      expect(tab[12 * 32 + i]).toBeCloseTo(Math.cos(Math.fround(9 * inv[i])), 6);
      expect(tab[13 * 32 + 16 + i]).toBeCloseTo(Math.sin(Math.fround(10 * inv[i])), 6);
    }
    // An image row: pair 1 (h) turns by h = 4 at prompt index 6, pair 2 (w) by w = 3.
    expect(tab[6 * 32 + 1]).toBeCloseTo(Math.cos(Math.fround(4 * inv[1])), 6);
    expect(tab[6 * 32 + 2]).toBeCloseTo(Math.cos(Math.fround(3 * inv[2])), 6);
  });
});

test.describe('tiny-random Qwen3-VL on WebGPU vs the CPU reference', () => {
  test('full depth: tower, DeepStack taps and logits on images of two sizes that need resizing (1e-4); positions and DeepStack both matter', async ({ harness }) => {
    for (const [sizes, text] of [[[[40, 30]], ONE], [[[70, 50], [40, 56]], TWO]] as const) {
      const r = await call(harness, 'logitsVsReference', TINY, sizes, text, 'off', [40, 41]);
      const m = JSON.stringify(r);
      expect(r.keep).toBe(5);
      expect(r.tower, m).toBeLessThan(1e-4);
      expect(r.deepstack, m).toBeLessThan(1e-4);
      expect(r.err, m).toBeLessThan(1e-4);
      expect(r.sameArgmax, m).toBe(true);
      expect(r.flatGap, m).toBeGreaterThan(1e-3);
      expect(r.deepstackGap, m).toBeGreaterThan(1e-3);
    }
    // (w x h) 40 x 30 -> 32 x 32 (4 tokens); 70 x 50 -> 64 x 48 (12); 40 x 56 -> 32 x 64 (8).
    const one = await call(harness, 'logitsVsReference', TINY, [[40, 30]], ONE, 'off');
    expect([one.imageTokens, one.grids]).toEqual([4, [{ h: 2, w: 2 }]]);
    const two = await call(harness, 'logitsVsReference', TINY, [[70, 50], [40, 56]], TWO, 'off');
    expect([two.imageTokens, two.grids]).toEqual([20, [{ h: 3, w: 4 }, { h: 4, w: 2 }]]);
  });

  test('q4: the tower\'s linear weights in int4 as the text projections are; GPU matches the reference on the same dequantized weights (1e-4); the tower keeps < 1/4 of its f32 bytes', async ({ harness }) => {
    const f32 = await call(harness, 'logitsVsReference', TINY, [[70, 50]], ONE, 'off', [40]);
    const q4 = await call(harness, 'logitsVsReference', { ...TINY, quant: 'q4' }, [[70, 50]], ONE, 'off', [40]);
    const m = JSON.stringify(q4);
    expect(q4.tower, m).toBeLessThan(1e-4);
    expect(q4.deepstack, m).toBeLessThan(1e-4);
    expect(q4.err, m).toBeLessThan(1e-4);
    expect(q4.sameArgmax, m).toBe(true);
    // Matmul weights are ~97% of this tower's parameters; q4 keeps 0.625 of 4 bytes of each.
    expect(q4.towerBytes / f32.towerBytes, `${q4.towerBytes} / ${f32.towerBytes}`).toBeLessThan(0.25);
  });

  test('POP: exact gives full depth\'s greedy ids; keep 3 (= the DeepStack depth, of 5) matches the reference\'s POP (1e-4), decode included', async ({ harness }) => {
    const off = await call(harness, 'generate', TINY, [[70, 50], [40, 56]], TWO, 6, 'off');
    const exact = await call(harness, 'generate', TINY, [[70, 50], [40, 56]], TWO, 6, 'exact');
    expect(exact.keep).toBe(4);
    expect(exact.ids).toEqual(off.ids);
    const mid = await call(harness, 'logitsVsReference', TINY, [[70, 50], [40, 56]], TWO, 3, [40, 41, 42]);
    expect(mid.keep).toBe(3);
    expect(mid.err, JSON.stringify(mid)).toBeLessThan(1e-4);
    expect(mid.deepstackGap, JSON.stringify(mid)).toBeGreaterThan(1e-3);
  });

  test('calibration with image samples measures keeps down to the DeepStack depth only; keep = L-1 is exact', async ({ harness }) => {
    const r = await call(harness, 'calibrateImages', TINY, [[40, 30], [70, 50]]);
    expect(r.keeps).toEqual([3, 4, 5]);
    expect(r.imageSamples).toBe(2);
    expect(Math.abs(r.exactDelta)).toBeLessThan(1e-4);
    expect(r.keep).toBeGreaterThanOrEqual(3);
  });

  test('a keep below the DeepStack depth is POP_KEEP_TOO_SHALLOW; a token count that does not match the grid is INVALID_ARGUMENT; the engine goes on', async ({ harness }) => {
    const shallow = await call(harness, 'refuses', TINY, [[40, 30]], ONE, 2);
    expect(shallow).toEqual({ err: 'POP_KEEP_TOO_SHALLOW', after: 'ok' });
    const short = await call(harness, 'refuses', TINY, [[40, 30]], ONE, 'off', 1);
    expect(short).toEqual({ err: 'INVALID_ARGUMENT', after: 'ok' });
  });
});
