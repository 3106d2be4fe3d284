// Gemma 3 multimodal (Gemma3ForConditionalGeneration). Node side: the real gemma-3-4b config
// normalizes with transformers' defaults (text: linear RoPE x8 on global layers; vision:
// SiglipVisionConfig, 256 tokens = 64 x 64 patches pooled 4 x 4), both checkpoint layouts,
// Gemma3ImageProcessor settings and PIL bilinear resampling, Gemma3Processor's prompt
// expansion through a Gemma-style chat template and tokenizer. WebGPU side: a tiny-random
// Gemma 3 built from that config (56 px, patch 14, 4 image tokens, 3 text layers: sliding,
// global, sliding) against the independent CPU reference: tower + projector, first-token
// logits with the bidirectional image mask (and POP keep 1), POP exact == off, the older
// layout, and one Worker chat with an image part.
import { readFileSync } from 'node:fs';
import { Template } from '@huggingface/jinja';
import { test, expect } from './fixtures.ts';
import { familyFor } from '../src/model/registry.ts';
import { aliasCheckpoint } from '../src/model/loader.ts';
import { normalizeImageProcessor, type SiglipVisionConfig, type VisionConfig } from '../src/model/vision_config.ts';
import { preprocessRgba, resizeRgba } from '../src/vision/preprocess.ts';
import { expandImages, gemma3ImageString, imagePlaceholder, imageTokenRuns } from '../src/vision/prompt.ts';
import { GEMMA3_CHAT_TEMPLATE, gemma3PreprocessorConfig, randomVlmFiles, scaleGemma3Config, withGemma3Tokens, type Gemma3Scale } from '../src/vision/random_vlm.ts';
import { TextTokenizer } from '../src/model/tokenizer.ts';
import { estimateFit, visionParamCount } from '../src/model/fit.ts';
import { keyEndRows } from '../src/vision/runtime.ts';

const GEMMA3_4B = JSON.parse(readFileSync(new URL('../configs/google__gemma-3-4b-it/config.json', import.meta.url), 'utf8'));
const STORIES = new URL('../public/models/stories260K/', import.meta.url);

// Token ids of the tiny model: the stories260K tokenizer (512 ids) plus Gemma 3's specials.
const IMG = 512, BOI = 513, EOI = 514, SOT = 515, EOT = 516, NL = 13;
const SCALE: Gemma3Scale = {
  text: { layers: 3, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, inter: 96, vocab: 520, maxPositions: 512 },
  layerTypes: ['sliding_attention', 'full_attention', 'sliding_attention'], slidingWindow: 6,
  vision: { hidden: 32, layers: 2, heads: 2, inter: 64, imageSize: 56, patch: 14 },
  tokensPerImage: 4, imageTokenId: IMG, boiTokenId: BOI, eoiTokenId: EOI,
};
// Chunks of 6 rows and pages of 4: image runs would straddle chunk and page boundaries.
const TINY = { family: 'gemma3' as const, config: GEMMA3_4B, preprocessor: gemma3PreprocessorConfig(56, 4), scale: SCALE, prefillChunk: 6, pageSize: 4 };

/**
 * Text ids, then per image "\n\n" <boi> 4 x <img> <eoi> "\n\n" (as Gemma3Processor writes it),
 * then text. The image runs sit at 5..8 and 16..19: across the 6-row chunk boundaries at 6 and
 * 18, so the engine must move those boundaries.
 */
function imagePrompt(images: number): number[] {
  const p = [2, 17];
  for (let i = 0; i < images; i++) p.push(NL, NL, BOI, IMG, IMG, IMG, IMG, EOI, NL, NL, 60 + i);
  p.push(71, 82, 93, 104, 115);
  return p;
}

const call = (page: any, fn: string, ...args: unknown[]) => page.evaluate(([f, a]: [string, unknown[]]) => (globalThis as any).pop.vlmCases[f](...a), [fn, args] as [string, unknown[]]);

test.describe('Gemma 3 config, checkpoint names, preprocessing and prompt (node)', () => {
  test('gemma-3-4b-it normalizes: text defaults + linear RoPE x8 on global layers, SigLIP 1152 x 27 at 896 / 14, 256 tokens pooled 4 x 4', () => {
    const c = familyFor('gemma3').normalize(GEMMA3_4B);
    expect(c).toMatchObject({ modelType: 'gemma3', numLayers: 34, hiddenSize: 2560, intermediateSize: 10240, numHeads: 8, numKvHeads: 4, headDim: 256, vocabSize: 262208, tieWordEmbeddings: true, qkNorm: true, postNorms: true, eosTokenIds: [1, 106], bosTokenId: 2 });
    expect(c.attnScale).toBeCloseTo(1 / 16, 12);
    c.slidingWindow.forEach((w, l) => {
      const global = (l + 1) % 6 === 0;
      expect(w).toBe(global ? 0 : 1024);
      expect(c.rope[l]).toEqual(global ? { theta: 1e6, scaling: { type: 'linear', factor: 8 } } : { theta: 1e4, scaling: null });
    });
    const v = c.vision as SiglipVisionConfig;
    expect(v).toMatchObject({ hiddenSize: 1152, intermediateSize: 4304, numLayers: 27, numHeads: 16, headDim: 72, imageSize: 896, patchSize: 14, numChannels: 3, layerNormEps: 1e-6, imageTokenId: 262144, textHidden: 2560, tokensPerTile: 256, prompt: 'gemma3', bidirectionalImages: true });
    expect(v.connector).toEqual({ kind: 'avg_pool', kernel: 4, norm: 'model.multi_modal_projector.mm_soft_emb_norm.weight', normEps: 1e-6, weight: 'model.multi_modal_projector.mm_input_projection_weight' });
    // Missing keys take SiglipVisionConfig's / Gemma3Config's defaults.
    const bare = familyFor('gemma3').normalize({ model_type: 'gemma3', text_config: {}, vision_config: { image_size: 448, patch_size: 14 } });
    expect(bare).toMatchObject({ numLayers: 26, hiddenSize: 2304, vocabSize: 262208, eosTokenIds: [1] });
    expect(bare.vision).toMatchObject({ hiddenSize: 768, intermediateSize: 3072, numLayers: 12, numHeads: 12, headDim: 64, layerNormEps: 1e-6, tokensPerTile: 256, imageTokenId: 262144 });
    expect((bare.vision as SiglipVisionConfig).connector).toMatchObject({ kernel: 2 });
    // SiglipVisionConfig's own 224 / 16 (14 patches per side) cannot be pooled to 16 x 16.
    expect(() => familyFor('gemma3').normalize({ model_type: 'gemma3', text_config: {}, vision_config: {} })).toThrow(/multiple of sqrt/);
  });

  test('the fit check counts the tower: SigLIP-so400m at 896 / 14 is 416.9M parameters (Gemma 3 report: 417M) + the projector', () => {
    const v = familyFor('gemma3').normalize(GEMMA3_4B);
    expect(visionParamCount(v)).toBe(416_866_032 + 1152 * 2560 + 1152);
    const limits = { maxBufferSize: 2 ** 40, maxStorageBufferBindingSize: 2 ** 40 };
    const text = estimateFit(GEMMA3_4B.text_config, 0, 1024, limits), all = estimateFit(GEMMA3_4B, 0, 1024, limits);
    expect(all.params - text.params).toBe(visionParamCount(v));
    expect(all.weightBytes - text.weightBytes).toBe(4 * visionParamCount(v));
  });

  test('unsupported Gemma 3 settings fail at normalize', () => {
    const n = (over: Record<string, any>) => () => familyFor('gemma3').normalize({ ...GEMMA3_4B, ...over });
    expect(n({ mm_tokens_per_image: 200 })).toThrow(/square/);
    expect(n({ mm_tokens_per_image: 9 })).toThrow(/multiple of sqrt/);
    expect(n({ vision_config: { ...GEMMA3_4B.vision_config, vision_use_head: true } })).toThrow(/vision_use_head/);
    expect(n({ text_config: { ...GEMMA3_4B.text_config, sliding_window: 100 } })).toThrow(/must not exceed sliding_window/);
    expect(n({ image_token_index: 262208 })).toThrow(/below the text vocab_size/);
  });

  test('tensor names: the newer layout is canonical, the older one is read through aliases; tied LM head', () => {
    const spec = familyFor('gemma3');
    const c = spec.normalize(GEMMA3_4B);
    expect(spec.globalTensors.embed).toBe('model.language_model.embed_tokens.weight');
    expect(spec.layerTensors.qNorm).toBe('model.language_model.layers.{layer}.self_attn.q_norm.weight');
    expect(spec.layerTensors.mlpOutNorm).toBe('model.language_model.layers.{layer}.post_feedforward_layernorm.weight');
    expect(spec.normGainOffset).toBe(1);
    const extra = new Map(spec.extraTensors!(c).map((t) => [t.name, t]));
    expect(extra.get('model.vision_tower.vision_model.embeddings.patch_embedding.weight')!.shape).toEqual([1152, 3, 14, 14]);
    expect(extra.get('model.vision_tower.vision_model.embeddings.position_embedding.weight')!.shape).toEqual([4096, 1152]);
    expect(extra.get('model.vision_tower.vision_model.encoder.layers.26.mlp.fc1.weight')!.shape).toEqual([4304, 1152]);
    expect(extra.get('model.multi_modal_projector.mm_input_projection_weight')!.shape).toEqual([1152, 2560]);
    expect(extra.get('model.multi_modal_projector.mm_soft_emb_norm.weight')).toMatchObject({ shape: [1152], kind: 'norm', normOffset: 1 });
    expect(extra.get('model.vision_tower.vision_model.post_layernorm.weight')!.normOffset ?? 0).toBe(0);
    // An older-layout checkpoint answers the canonical names.
    const old = new Map([['language_model.model.embed_tokens.weight', 1], ['vision_tower.vision_model.post_layernorm.bias', 2], ['multi_modal_projector.mm_input_projection_weight', 3], ['language_model.lm_head.weight', 4]]);
    const ck = aliasCheckpoint({ files: ['model.safetensors'], entry: (n) => (old.has(n) ? ({ name: n, shape: [old.get(n)!] } as any) : null), get: (n) => (old.has(n) ? new Float32Array([old.get(n)!]) : null) }, spec);
    expect(ck.entry('model.language_model.embed_tokens.weight')!.shape).toEqual([1]);
    expect(ck.get('model.vision_tower.vision_model.post_layernorm.bias')![0]).toBe(2);
    expect(ck.get('model.multi_modal_projector.mm_input_projection_weight')![0]).toBe(3);
    expect(ck.get('lm_head.weight')![0]).toBe(4);
    expect(ck.entry('model.language_model.norm.weight')).toBeNull();
  });

  test('Gemma3ImageProcessor: defaults at the tower size, bilinear, one 896 x 896 view; bad settings are refused', () => {
    const v = familyFor('gemma3').normalize(GEMMA3_4B).vision as SiglipVisionConfig;
    const defaults = normalizeImageProcessor(null, v);
    expect(defaults).toEqual({ doResize: true, longestEdge: 896, doSplit: false, tileSize: 896, resample: 'bilinear', doRescale: true, rescaleFactor: 1 / 255, doNormalize: true, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    expect(normalizeImageProcessor(gemma3PreprocessorConfig(896, 256), v)).toEqual(defaults);
    expect(() => normalizeImageProcessor({ size: { height: 448, width: 448 } }, v)).toThrow(/896 x 896/);
    expect(() => normalizeImageProcessor({ do_pan_and_scan: true }, v)).toThrow(/pan_and_scan/);
    expect(() => normalizeImageProcessor({ resample: 0 }, v)).toThrow(/resample/);
    // PIL BILINEAR: [0, 255] -> 4 px is [0, 64, 191, 255] (triangle filter, support 1 when enlarging).
    const row = resizeRgba({ width: 2, height: 1, data: new Uint8Array([0, 0, 0, 255, 255, 255, 255, 255]) }, 4, 1, 'bilinear');
    expect(Array.from(row.data.filter((_, i) => i % 4 === 0))).toEqual([0, 64, 191, 255]);
    // Shrinking is antialiased: a 4 x 4 checker of 0 / 200 becomes its mean.
    const checker = { width: 4, height: 4, data: Uint8Array.from({ length: 64 }, (_, i) => (i % 4 === 3 ? 255 : (((i >> 2) % 4) + ((i >> 4) % 4)) % 2 ? 200 : 0)) };
    expect(new Set(resizeRgba(checker, 1, 1, 'bilinear').data.subarray(0, 3))).toEqual(new Set([100]));
    // A 100 x 80 image -> one tile, aspect not kept, values in [-1, 1].
    const img = { width: 100, height: 80, data: Uint8Array.from({ length: 100 * 80 * 4 }, (_, i) => (i % 4 === 3 ? 255 : (i * 7) % 256)) };
    const small = { ...defaults, tileSize: 28, longestEdge: 28 };
    const out = preprocessRgba(img, small);
    expect(out).toMatchObject({ tiles: 1, rows: 0, cols: 0, tileSize: 28 });
    expect(out.pixels.length).toBe(3 * 28 * 28);
    expect(Math.max(...out.pixels)).toBeLessThanOrEqual(1);
    expect(Math.min(...out.pixels)).toBeGreaterThanOrEqual(-1);
    const resized = resizeRgba(img, 28, 28, 'bilinear');
    expect(out.pixels[28 * 5 + 3]).toBeCloseTo((resized.data[(5 * 28 + 3) * 4] / 255 - 0.5) / 0.5, 6);
  });

  test('prompt as Gemma3Processor: <start_of_image> -> "\\n\\n<start_of_image>" + N soft tokens + "<end_of_image>\\n\\n"; runs and key ends', () => {
    expect(imagePlaceholder({ prompt: 'gemma3' })).toBe('<start_of_image>');
    expect(gemma3ImageString(2)).toBe('\n\n<start_of_image><image_soft_token><image_soft_token><end_of_image>\n\n');
    const v = { prompt: 'gemma3' as const, tokensPerTile: 256 };
    const s = expandImages('A<start_of_image>B<start_of_image>', [{ rows: 0, cols: 0 }, { rows: 0, cols: 0 }], v);
    expect(s.split('<image_soft_token>').length - 1).toBe(512);
    expect(s.startsWith('A\n\n<start_of_image><image_soft_token>')).toBe(true);
    expect(s.endsWith('<end_of_image>\n\n')).toBe(true);
    expect(() => expandImages('no image', [{ rows: 0, cols: 0 }], v)).toThrow(/placeholders/);
    // Two images -> two runs; rows of a run see their whole run, the others themselves.
    expect(imageTokenRuns([3, 4, 5, 9, 10])).toEqual([[3, 6], [9, 11]]);
    expect(keyEndRows([[3, 6], [9, 11]], 2, 10)).toEqual([3, 6, 6, 6, 7, 8, 9, 11]);
    expect(keyEndRows([[3, 6]], 6, 9)).toBeUndefined();
  });

  test('a Gemma-style chat template and tokenizer put the image tokens where the processor does', () => {
    const tok = new TextTokenizer(JSON.parse(gemma3Tokenizer()), { bos_token: '<s>', eos_token: '</s>' });
    const text = new Template(GEMMA3_CHAT_TEMPLATE).render({ messages: [{ role: 'user', content: [{ type: 'text', text: 'Look: ' }, { type: 'image' }, { type: 'text', text: ' What is it?' }] }], add_generation_prompt: true, bos_token: '<s>' });
    expect(text).toBe('<s><start_of_turn>user\nLook:<start_of_image>What is it?<end_of_turn>\n<start_of_turn>model\n');
    const ids = tok.encode(expandImages(text, [{ rows: 0, cols: 0 }], { prompt: 'gemma3', tokensPerTile: 4 }), false);
    const at = ids.indexOf(BOI);
    expect(ids.slice(at, at + 6)).toEqual([BOI, IMG, IMG, IMG, IMG, EOI]);
    expect(ids.filter((i) => i === IMG).length).toBe(4);
    expect(ids[0]).toBe(1);
    expect(ids).toContain(SOT);
    expect(ids).toContain(EOT);
  });
});

test.describe('tiny-random Gemma 3 on WebGPU vs the CPU reference', () => {
  test('vision tower and projector (pool, (1+w) RMSNorm, transposed projection) match the reference (1e-4)', async ({ harness }) => {
    const r = await call(harness, 'towerVsReference', TINY, 100, 80);
    expect(r.tiles).toBe(1);
    expect(r.tower, JSON.stringify(r)).toBeLessThan(1e-4);
    expect(r.connector, JSON.stringify(r)).toBeLessThan(1e-4);
  });

  test('first-token logits with the bidirectional image mask match the reference, POP off and keep 1 (1e-4); chunks never split an image', async ({ harness }) => {
    expect(imageTokenRuns(imagePrompt(2).flatMap((t, i) => (t === IMG ? [i] : [])))).toEqual([[5, 9], [16, 20]]);
    for (const keep of [undefined, 1]) {
      const r = await call(harness, 'imagesLogitsVsReference', TINY, imagePrompt(2), [[100, 80], [40, 70]], keep);
      expect(r.err, `keep ${keep}: ${JSON.stringify(r)}`).toBeLessThan(1e-4);
      expect(r.sameArgmax).toBe(true);
      // The mask is applied and matters: a causal-only reference is far away.
      expect(r.causalGap, `keep ${keep}: ${JSON.stringify(r)}`).toBeGreaterThan(1e-3);
    }
  });

  test('POP exact gives the same greedy ids as off on an image prompt', async ({ harness }) => {
    const off = await call(harness, 'generateImages', TINY, imagePrompt(1), [[64, 64]], 6, 'off');
    const exact = await call(harness, 'generateImages', TINY, imagePrompt(1), [[64, 64]], 6, 'exact');
    expect(exact.keep).toBe(2);
    expect(exact.ids).toEqual(off.ids);
  });

  test('the older checkpoint layout and a missing preprocessor_config.json load the same model', async ({ harness }) => {
    const prompt = imagePrompt(1);
    const now = await call(harness, 'imagesLogitsVsReference', TINY, prompt, [[100, 80]]);
    const old = await call(harness, 'imagesLogitsVsReference', { ...TINY, oldLayout: true, noPreprocessor: true }, prompt, [[100, 80]]);
    expect(old.err).toBeLessThan(1e-4);
    expect(old.causalGap).toBe(now.causalGap);
    const a = await call(harness, 'processorOf', TINY, 50, 30);
    const b = await call(harness, 'processorOf', { ...TINY, oldLayout: true, noPreprocessor: true }, 50, 30);
    expect(b.processor).toEqual(a.processor);
    expect(b.pixels).toEqual(a.pixels);
  });

  test('typed errors: image token count mismatch, an image run longer than the prefill chunk, a chunk smaller than one image', async ({ harness }) => {
    expect(await call(harness, 'loadError', TINY, { prefillChunk: 3 })).toBe('INVALID_ARGUMENT');
    const short = imagePrompt(1).filter((_, i) => i !== 6);
    expect(await call(harness, 'refuses', TINY, short, 1)).toBe('INVALID_ARGUMENT');
    const merged = [2, 17, BOI, IMG, IMG, IMG, IMG, IMG, IMG, IMG, IMG, EOI, 33];
    expect(await call(harness, 'refuses', TINY, merged, 2)).toBe('INVALID_ARGUMENT');
  });

  test('Worker API: chat.completions.create with an image_url part streams an answer', async ({ harness }) => {
    const files = gemma3Files();
    await harness.route('**/fake-gemma3/**', (route) => {
      const name = new URL(route.request().url()).pathname.split('/fake-gemma3/')[1];
      const body = files.get(name);
      return body ? route.fulfill({ status: 200, body: Buffer.from(body), contentType: name.endsWith('.json') ? 'application/json' : 'application/octet-stream' }) : route.fulfill({ status: 404, body: 'Entry not found' });
    });
    try {
      const r = await harness.evaluate(async () => {
        const pop = (globalThis as any).pop;
        const c = new OffscreenCanvas(60, 40);
        const g = c.getContext('2d')!;
        g.fillStyle = '#c33';
        g.fillRect(0, 0, 60, 40);
        g.fillStyle = '#33c';
        g.fillRect(20, 10, 30, 20);
        const bytes = new Uint8Array(await (await c.convertToBlob({ type: 'image/png' })).arrayBuffer());
        let s = '';
        for (const v of bytes) s += String.fromCharCode(v);
        const url = `data:image/png;base64,${btoa(s)}`;
        const e = await pop.CreateWorkerEngine(`${location.origin}/fake-gemma3`);
        try {
          const chunks = await e.chat.completions.create({ stream: true, stream_options: { include_usage: true }, max_tokens: 5, temperature: 0, ignore_eos: true, messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in this picture?' }, { type: 'image_url', image_url: { url } }] }] });
          let text = '', n = 0, usage: any = null;
          for await (const ch of chunks) (text += ch.choices[0]?.delta.content ?? ''), n++, ch.usage && (usage = ch.usage);
          return { text, n, usage };
        } finally {
          e.terminate();
        }
      });
      expect(r.n).toBeGreaterThan(1);
      expect(r.usage.completion_tokens).toBe(5);
      // The template's text plus "\n\n<boi>" 4 soft tokens "<eoi>\n\n".
      expect(r.usage.prompt_tokens).toBeGreaterThan(10);
    } finally {
      await harness.unroute('**/fake-gemma3/**');
    }
  });
});

/** The stories260K tokenizer with Gemma 3's turn and image tokens at the tiny model's ids. */
function gemma3Tokenizer(): string {
  return withGemma3Tokens(readFileSync(new URL('tokenizer.json', STORIES), 'utf8'), { imageTokenId: IMG, boiTokenId: BOI, eoiTokenId: EOI, startOfTurnId: SOT, endOfTurnId: EOT });
}

/** Every file of the tiny Gemma 3 with a tokenizer and the Gemma-style chat template. */
function gemma3Files(): Map<string, Uint8Array> {
  const config = scaleGemma3Config(GEMMA3_4B, SCALE);
  config.text_config.bos_token_id = 1;
  config.eos_token_id = [2, EOT];
  const files = randomVlmFiles(config, gemma3PreprocessorConfig(56, 4), { seed: 5 });
  const enc = new TextEncoder();
  files.set('tokenizer.json', enc.encode(gemma3Tokenizer()));
  files.set('tokenizer_config.json', enc.encode(JSON.stringify({ bos_token: '<s>', eos_token: '</s>', add_bos_token: true, chat_template: GEMMA3_CHAT_TEMPLATE })));
  return files;
}
