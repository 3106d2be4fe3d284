// Vision-language models, first family Idefics3 / SmolVLM. Node side: the real config and
// processor normalize (64 image tokens per 512 px tile), preprocessing math (HF sizes, tile
// grid, rescale/normalize, Lanczos), prompt expansion (processing_idefics3). WebGPU side: a
// tiny-random Idefics3 against the independent CPU reference of the whole pipeline at the
// preprocessing, vision tower, connector and first-token logits; POP with image tokens;
// typed errors for bad images.
import { readFileSync } from 'node:fs';
import { test, expect } from './fixtures.ts';
import { familyFor } from '../src/model/registry.ts';
import { normalizeImageProcessor, type SiglipVisionConfig } from '../src/model/vision_config.ts';
import { preprocessRgba, resizeForLongestEdge, resizeRgba, tileLayout } from '../src/vision/preprocess.ts';
import { expandImageTokens, imagePromptString } from '../src/vision/prompt.ts';

const DIR = new URL('../configs/HuggingFaceTB__SmolVLM-256M-Instruct/', import.meta.url);
const SMOLVLM = JSON.parse(readFileSync(new URL('config.json', DIR), 'utf8'));
const PRE = JSON.parse(readFileSync(new URL('preprocessor_config.json', DIR), 'utf8'));
const SMOL135 = JSON.parse(readFileSync(new URL('../HuggingFaceTB__SmolLM2-135M-Instruct/config.json', DIR), 'utf8'));

// SmolVLM-256M scaled down: text 2 layers x 64, vision 2 layers x 64 (4 heads, hd 16), 64 px
// tiles of 16 px patches (16 patches), scale factor 2 -> 4 image tokens per tile; images are
// resized to longest edge 128 -> up to 2 x 2 tiles + global. Small chunks and pages so image
// runs cross chunk and page boundaries.
const TINY = {
  config: SMOLVLM, preprocessor: PRE, prefillChunk: 16, pageSize: 8,
  scale: { text: { layers: 2, hidden: 64, heads: 4, kvHeads: 2, inter: 96, vocab: 300, maxPositions: 512 }, vision: { hidden: 64, layers: 2, heads: 4, inter: 128, imageSize: 64, patch: 16 }, scaleFactor: 2, imageTokenId: 290, longestEdge: 128 },
};
const IMG = 290, FAKE = 281;
/** A prompt with `tiles` runs of 4 image tokens, fake/row markers around them (ids < 300). */
function imagePrompt(tiles: number): number[] {
  const p = [1, 17, 33];
  for (let t = 0; t < tiles; t++) p.push(FAKE, 282 + t, IMG, IMG, IMG, IMG);
  p.push(FAKE, 44, 55, 66, 77);
  return p;
}

const call = (page: any, fn: string, ...args: unknown[]) => page.evaluate(([f, a]: [string, unknown[]]) => (globalThis as any).pop.vlmCases[f](...a), [fn, args] as [string, unknown[]]);

test.describe('SmolVLM config, preprocessing and prompt (node)', () => {
  test('the real SmolVLM-256M config normalizes: SmolLM2 text, SigLIP 768 x 12, 64 tokens per tile', () => {
    const c = familyFor('idefics3').normalize(SMOLVLM);
    expect(c).toMatchObject({ modelType: 'idefics3', hiddenSize: 576, numLayers: 30, numHeads: 9, numKvHeads: 3, vocabSize: 49280, tieWordEmbeddings: false });
    expect(c.vision).toMatchObject({ hiddenSize: 768, numLayers: 12, numHeads: 12, headDim: 64, imageSize: 512, patchSize: 16, imageTokenId: 49190, tokensPerTile: 64, textHidden: 576, prompt: 'idefics3', bidirectionalImages: false, towerPrefix: 'model.vision_model.' });
    expect((c.vision as SiglipVisionConfig).connector).toEqual({ kind: 'pixel_shuffle', scaleFactor: 4, weight: 'model.connector.modality_projection.proj.weight' });
    expect(familyFor('idefics3').globalTensors.embed).toBe('model.text_model.embed_tokens.weight');
  });

  test('HF sizes: 100x80 -> 2048 longest edge -> 4 x 4 tiles + global = 17 tiles (1088 tokens)', () => {
    const p = normalizeImageProcessor(PRE, familyFor('idefics3').normalize(SMOLVLM).vision as SiglipVisionConfig);
    expect(p).toMatchObject({ longestEdge: 2048, tileSize: 512, doSplit: true, resample: 'lanczos', rescaleFactor: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    expect(resizeForLongestEdge(80, 100, 2048)).toEqual([1638, 2048]);
    expect(tileLayout(80, 100, p)).toMatchObject({ rows: 4, cols: 4, tiles: 17, resized: [2048, 2048] });
    expect(tileLayout(1000, 300, p)).toMatchObject({ rows: 4, cols: 2, tiles: 9 }); // 2048 x 614 -> 2048 x 1024
    expect(tileLayout(512, 512, { ...p, longestEdge: 512 })).toMatchObject({ rows: 0, cols: 0, tiles: 1 });
  });

  test('tiles: row-major crops then the global view; rescale and normalize to [-1, 1]', () => {
    const p = { ...normalizeImageProcessor(PRE, familyFor('idefics3').normalize(SMOLVLM).vision as SiglipVisionConfig), longestEdge: 8, tileSize: 4 };
    // 8 x 8 image, pixel value = 10 * (quadrant index); no resize needed (already 8 x 8).
    const data = new Uint8Array(8 * 8 * 4);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) data.set([10 * (2 * (y >> 2) + (x >> 2)), 255, 0, 255], (y * 8 + x) * 4);
    const out = preprocessRgba({ width: 8, height: 8, data }, p);
    expect(out).toMatchObject({ tiles: 5, rows: 2, cols: 2, tileSize: 4 });
    const T = 3 * 16;
    for (let t = 0; t < 4; t++) expect(out.pixels[t * T]).toBeCloseTo(((10 * t) / 255 - 0.5) / 0.5, 6); // R of tile t
    expect(out.pixels[16]).toBeCloseTo(1, 6); // G = 255 -> 1
    expect(out.pixels[32]).toBeCloseTo(-1, 6); // B = 0 -> -1
    // Global view = the image downsized to 4 x 4 (antialiased Lanczos keeps the mean).
    const g = Array.from(out.pixels.subarray(4 * T, 4 * T + 16)).map((v) => Math.round(((v * 0.5 + 0.5) * 255)));
    expect(g.reduce((a, b) => a + b, 0) / 16).toBeCloseTo(15, 0);
  });

  test('Lanczos resize: identity at the same size, constant images stay constant, alpha goes over white', () => {
    const img = { width: 7, height: 5, data: Uint8Array.from({ length: 140 }, (_, i) => (i * 37) % 256) };
    expect(resizeRgba(img, 7, 5).data).toEqual(img.data);
    const flat = { width: 9, height: 6, data: new Uint8Array(9 * 6 * 4).fill(77) };
    for (const [w, h] of [[20, 13], [3, 2], [9, 17]]) expect(new Set(resizeRgba(flat, w, h).data)).toEqual(new Set([77]));
    const p = { ...normalizeImageProcessor(PRE, familyFor('idefics3').normalize(SMOLVLM).vision as SiglipVisionConfig), tileSize: 2, longestEdge: 2 };
    const transparent = preprocessRgba({ width: 2, height: 2, data: new Uint8Array(16) }, p);
    expect(Array.from(transparent.pixels)).toEqual(new Array(12).fill(1)); // white
  });

  test('prompt expansion as processing_idefics3: row/col markers, newlines, global view', () => {
    expect(imagePromptString(0, 0, 2)).toBe('<fake_token_around_image><global-img><image><image><fake_token_around_image>');
    expect(imagePromptString(1, 2, 1)).toBe('<fake_token_around_image><row_1_col_1><image><fake_token_around_image><row_1_col_2><image>\n\n<fake_token_around_image><global-img><image><fake_token_around_image>');
    const s = expandImageTokens('User:<image>What is this?', [{ rows: 4, cols: 4 }], 64);
    expect(s.split('<image>').length - 1).toBe(17 * 64);
    expect(s).toContain('<row_4_col_4>');
    expect(() => expandImageTokens('no image', [{ rows: 0, cols: 0 }], 64)).toThrow(/placeholders/);
  });
});

test.describe('tiny-random Idefics3 on WebGPU vs the CPU reference', () => {
  test('preprocessing: ImageBitmap and PNG bytes give the RGBA path tiles exactly (100x80 -> 2x2 + global)', async ({ harness }) => {
    const r = await call(harness, 'preprocessPaths', TINY, 100, 80);
    expect(r).toMatchObject({ tiles: 5, rows: 2, cols: 2 });
    expect(r.bitmap).toBe(0);
    expect(r.png).toBe(0);
  });

  test('vision tower and connector outputs match the reference per tile (1e-4)', async ({ harness }) => {
    const r = await call(harness, 'towerVsReference', TINY, 100, 80);
    expect(r.tiles).toBe(5);
    expect(r.tower, JSON.stringify(r)).toBeLessThan(1e-4);
    expect(r.connector, JSON.stringify(r)).toBeLessThan(1e-4);
  });

  test('first-token logits of an image prompt match the reference, POP off and keep 1 (1e-4)', async ({ harness }) => {
    const prompt = imagePrompt(5);
    for (const keep of [undefined, 1]) {
      const r = await call(harness, 'logitsVsReference', TINY, prompt, 100, 80, keep);
      expect(r.err, `keep ${keep}: ${JSON.stringify(r)}`).toBeLessThan(1e-4);
      expect(r.sameArgmax).toBe(true);
    }
    // A wide image: 1 x 2 tiles + global.
    const r = await call(harness, 'logitsVsReference', TINY, imagePrompt(3), 200, 50);
    expect(r.err).toBeLessThan(1e-4);
  });

  test('POP exact gives the same first token (and greedy ids) as off on an image prompt', async ({ harness }) => {
    const off = await call(harness, 'generate', TINY, imagePrompt(5), 100, 80, 8, 'off');
    const exact = await call(harness, 'generate', TINY, imagePrompt(5), 100, 80, 8, 'exact');
    expect(exact.keep).toBe(1);
    expect(exact.ids[0]).toBe(off.ids[0]);
    expect(exact.ids).toEqual(off.ids);
  });

  test('typed errors: undecodable image, bad RGBA, too large, token count mismatch, no images, text-only model', async ({ harness }) => {
    const textOnly = { config: { ...SMOL135, num_hidden_layers: 1, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 96, vocab_size: 300, head_dim: 16 } };
    const r = await call(harness, 'imageErrors', TINY, imagePrompt(5), textOnly);
    expect(r).toEqual({ undecodable: 'IMAGE_DECODE_FAILED', badRgba: 'IMAGE_DECODE_FAILED', tooLarge: 'IMAGE_TOO_LARGE', countMismatch: 'INVALID_ARGUMENT', noImages: 'INVALID_ARGUMENT', textOnly: 'INVALID_ARGUMENT', after: 'ok' });
  });
});
