// VLM checks run in the page: tiny-random Idefics3 (SmolVLM-256M's structure scaled down)
// and Gemma 3 (gemma-3-4b's) models on the WebGPU engine against the independent CPU
// reference of the whole pipeline (src/reference/vlm_reference.ts): preprocessing, vision
// tower, connector, first-token logits (Gemma 3: with its bidirectional image mask), POP;
// and the typed image errors.
import { createGpuEngine } from '../src/engine/create.ts';
import type { Engine } from '../src/engine/engine.ts';
import type { PopSetting } from '../src/engine/pop.ts';
import { aliasCheckpoint, loadCheckpoint, loadModelFiles } from '../src/model/loader.ts';
import { memorySource } from '../src/model/source.ts';
import { VlmReference } from '../src/reference/vlm_reference.ts';
import { patternImage, randomVlmFiles, scaleGemma3Config, scaleIdefics3Config, type Gemma3Scale, type VlmScale } from '../src/vision/random_vlm.ts';
import { toRgba } from '../src/vision/image_input.ts';
import { preprocessRgba, type RgbaImage } from '../src/vision/preprocess.ts';
import { encodeTile, type SiglipTower } from '../src/vision/siglip.ts';
import { patchesPerSide, type SiglipVisionConfig } from '../src/model/vision_config.ts';

export type VlmFixture = { preprocessor: Record<string, any>; prefillChunk?: number; pageSize?: number } & (
  | { config: Record<string, any>; scale: VlmScale; family?: 'idefics3' }
  | {
    config: Record<string, any>; scale: Gemma3Scale; family: 'gemma3';
    /** Store the older checkpoint layout (language_model.model.*, vision_tower.*, multi_modal_projector.*). */
    oldLayout?: boolean;
    /** Leave preprocessor_config.json out (Gemma3ImageProcessor's defaults at the tower size). */
    noPreprocessor?: boolean;
  }
);

/** Gemma 3's older tensor names (transformers' _checkpoint_conversion_mapping, reversed). */
export function gemma3OldName(n: string): string {
  for (const [now, old] of [['model.language_model.', 'language_model.model.'], ['model.vision_tower.', 'vision_tower.'], ['model.multi_modal_projector.', 'multi_modal_projector.']]) if (n.startsWith(now)) return old + n.slice(now.length);
  return n;
}

const opened = new Map<string, { engine: Engine<GPUBuffer>; ref: VlmReference }>();

/** The fixture's files (random weights at seed 11). */
export function fixtureFiles(f: VlmFixture): Map<string, Uint8Array> {
  if (f.family !== 'gemma3') return randomVlmFiles(scaleIdefics3Config(f.config, f.scale), f.preprocessor, { seed: 11 });
  const files = randomVlmFiles(scaleGemma3Config(f.config, f.scale), f.preprocessor, { seed: 11, rename: f.oldLayout ? gemma3OldName : undefined });
  if (f.noPreprocessor) files.delete('preprocessor_config.json');
  return files;
}

async function open(f: VlmFixture) {
  const key = JSON.stringify(f);
  let e = opened.get(key);
  if (e) return e;
  const source = memorySource(fixtureFiles(f));
  const engine = await createGpuEngine(source, { prefillChunk: f.prefillChunk, pageSize: f.pageSize });
  const files = await loadModelFiles(source);
  const ck = aliasCheckpoint(await loadCheckpoint(source), files.spec);
  e = { engine, ref: new VlmReference(files.config, (n) => ck.get(n)) };
  opened.set(key, e);
  return e;
}

/** A deterministic RGBA test pattern (gradients + checker), optionally with alpha. */
export function testImage(width: number, height: number, alpha = false): RgbaImage {
  return patternImage(width, height, { checker: 8, alpha });
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) (d = Math.max(d, Math.abs(a[i] - b[i]))), (m = Math.max(m, Math.abs(b[i])));
  if (a.length !== b.length || Array.from(a).some(Number.isNaN)) return Infinity;
  return d / Math.max(1, m);
}

const argmax = (x: Float32Array) => x.reduce((bi, v, i, a) => (v > a[bi] ? i : bi), 0);

async function errorCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

export const vlmCases = {
  /** The ImageBitmap / encoded-PNG paths give the same tiles as the raw RGBA path. */
  async preprocessPaths(f: VlmFixture, w: number, h: number): Promise<{ tiles: number; rows: number; cols: number; bitmap: number; png: number }> {
    const { engine } = await open(f);
    const p = engine.vision!.processor;
    const img = testImage(w, h);
    const want = preprocessRgba(img, p);
    const bmp = await createImageBitmap(new ImageData(new Uint8ClampedArray(img.data), w, h), { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
    const viaBitmap = preprocessRgba(await toRgba(bmp, 0), p);
    const c = new OffscreenCanvas(w, h);
    c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(img.data), w, h), 0, 0);
    const png = new Uint8Array(await (await c.convertToBlob({ type: 'image/png' })).arrayBuffer());
    const viaPng = preprocessRgba(await toRgba(png, 0), p);
    return { tiles: want.tiles, rows: want.rows, cols: want.cols, bitmap: maxDiff(viaBitmap.pixels, want.pixels), png: maxDiff(viaPng.pixels, want.pixels) };
  },

  /** Per tile: vision tower output (post-LN) and connector output, GPU vs reference. */
  async towerVsReference(f: VlmFixture, w: number, h: number): Promise<{ tiles: number; tower: number; connector: number }> {
    const { engine, ref } = await open(f);
    const rt = engine.vision!, v = rt.config as SiglipVisionConfig, ops = engine.ops, tw = rt.tower as SiglipTower<GPUBuffer>;
    const pre = preprocessRgba(testImage(w, h), rt.processor);
    const T = v.numChannels * v.imageSize ** 2, N = patchesPerSide(v) ** 2;
    let tower = 0, connector = 0;
    const out = ops.alloc('case.features', v.tokensPerTile * v.textHidden);
    for (let t = 0; t < pre.tiles; t++) {
      const tile = pre.pixels.subarray(t * T, (t + 1) * T);
      const px = ops.upload('case.tile', tile);
      encodeTile(ops, v, tw.weights, tw.state, px, out, 0);
      const gotTower = await ops.read(tw.state.xb, N * v.hiddenSize);
      const gotConn = await ops.read(out, v.tokensPerTile * v.textHidden);
      ops.free(px);
      const wantTower = ref.visionTower(tile);
      const wantConn = ref.connector(wantTower);
      wantTower.forEach((r, i) => (tower = Math.max(tower, maxDiff(gotTower.subarray(i * v.hiddenSize, (i + 1) * v.hiddenSize), r))));
      wantConn.forEach((r, i) => (connector = Math.max(connector, maxDiff(gotConn.subarray(i * v.textHidden, (i + 1) * v.textHidden), r))));
    }
    ops.free(out);
    return { tiles: pre.tiles, tower, connector };
  },

  /** First-token logits of an image prompt, engine vs reference, with POP keep (default off). */
  async logitsVsReference(f: VlmFixture, prompt: number[], w: number, h: number, keep?: number): Promise<{ err: number; sameArgmax: boolean }> {
    const { engine, ref } = await open(f);
    const L = engine.config.numLayers;
    const img = testImage(w, h);
    const got = await engine.promptLogits(prompt, keep ?? 'off', [img]);
    const pre = preprocessRgba(img, engine.vision!.processor);
    const want = ref.promptLogits(prompt, ref.imageFeatures(pre.pixels, pre.tiles), keep ?? L);
    return { err: maxDiff(got, want), sameArgmax: argmax(got) === argmax(want) };
  },

  /**
   * First-token logits of a prompt with several images (sizes [w, h] each), engine vs
   * reference with POP keep (default off); `causalGap`: how far the engine is from a reference
   * without the bidirectional image mask (large when the mask is applied and matters).
   */
  async imagesLogitsVsReference(f: VlmFixture, prompt: number[], sizes: [number, number][], keep?: number): Promise<{ err: number; sameArgmax: boolean; causalGap: number }> {
    const { engine, ref } = await open(f);
    const L = engine.config.numLayers;
    const imgs = sizes.map(([w, h]) => testImage(w, h));
    const got = await engine.promptLogits(prompt, keep ?? 'off', imgs);
    const features = imgs.flatMap((img) => {
      const pre = preprocessRgba(img, engine.vision!.processor);
      return ref.imageFeatures(pre.pixels, pre.tiles);
    });
    const want = ref.promptLogits(prompt, features, keep ?? L);
    const causal = ref.promptLogits(prompt, features, keep ?? L, true);
    return { err: maxDiff(got, want), sameArgmax: argmax(got) === argmax(want), causalGap: maxDiff(got, causal) };
  },

  /** Greedy ids with several images (sizes [w, h]) under a POP setting. */
  async generateImages(f: VlmFixture, prompt: number[], sizes: [number, number][], maxTokens: number, pop: PopSetting): Promise<{ ids: number[]; keep: number }> {
    const { engine } = await open(f);
    const r = await engine.generate(prompt, { maxTokens, pop, ignoreEos: true, images: sizes.map(([w, h]) => testImage(w, h)) });
    return { ids: r.ids, keep: r.stats.keep };
  },

  /** The engine's processor settings and the preprocessed pixels of one image (checks in Node). */
  async processorOf(f: VlmFixture, w: number, h: number): Promise<{ processor: Record<string, unknown>; tiles: number; pixels: number[] }> {
    const { engine } = await open(f);
    const pre = preprocessRgba(testImage(w, h), engine.vision!.processor);
    return { processor: { ...engine.vision!.processor }, tiles: pre.tiles, pixels: Array.from(pre.pixels) };
  },

  /** The error code of loading the fixture with other engine options (null: it loads). */
  async loadError(f: VlmFixture, opts: { prefillChunk?: number }): Promise<string | null> {
    try {
      (await createGpuEngine(memorySource(fixtureFiles(f)), opts)).unload();
      return null;
    } catch (e) {
      return (e as { code?: string }).code ?? String(e);
    }
  },

  /** An error code for a prompt that the engine must refuse. */
  async refuses(f: VlmFixture, prompt: number[], images: number): Promise<string> {
    const { engine } = await open(f);
    return errorCode(engine.generate(prompt, { maxTokens: 1, images: Array.from({ length: images }, () => testImage(30, 20)) }));
  },

  /** Greedy ids with images under a POP setting. */
  async generate(f: VlmFixture, prompt: number[], w: number, h: number, maxTokens: number, pop: PopSetting): Promise<{ ids: number[]; keep: number }> {
    const { engine } = await open(f);
    const r = await engine.generate(prompt, { maxTokens, pop, ignoreEos: true, images: [testImage(w, h)] });
    return { ids: r.ids, keep: r.stats.keep };
  },

  /** Error codes for bad image requests. */
  async imageErrors(f: VlmFixture, prompt: number[], textOnly: { config: Record<string, any> }): Promise<Record<string, string>> {
    const { engine } = await open(f);
    const img = testImage(100, 80);
    const out: Record<string, string> = {};
    out.undecodable = await errorCode(engine.generate(prompt, { maxTokens: 1, images: [new Uint8Array([1, 2, 3, 4, 5])] }));
    out.badRgba = await errorCode(engine.generate(prompt, { maxTokens: 1, images: [{ width: 10, height: 10, data: new Uint8Array(7) }] }));
    const saved = engine.opts.maxImagePixels;
    (engine.opts as { maxImagePixels?: number }).maxImagePixels = 1000;
    out.tooLarge = await errorCode(engine.generate(prompt, { maxTokens: 1, images: [img] }));
    (engine.opts as { maxImagePixels?: number }).maxImagePixels = saved;
    out.countMismatch = await errorCode(engine.generate(prompt.slice(0, -8), { maxTokens: 1, images: [img] }));
    out.noImages = await errorCode(engine.generate(prompt, { maxTokens: 1 }));
    const { randomModelFiles } = await import('../src/model/random_model.ts');
    const text = await createGpuEngine(memorySource(randomModelFiles(textOnly.config, { seed: 3 })), { prefillChunk: 16 });
    out.textOnly = await errorCode(text.generate([1, 2, 3], { maxTokens: 1, images: [img] }));
    text.unload();
    // The engine still answers after the failures.
    out.after = (await engine.generate(prompt, { maxTokens: 2, images: [img], ignoreEos: true })).ids.length === 2 ? 'ok' : 'bad';
    return out;
  },
};
