// VLM checks run in the page: a tiny-random Idefics3 (SmolVLM-256M's structure scaled down)
// on the WebGPU engine against the independent CPU reference of the whole pipeline
// (src/reference/vlm_reference.ts): preprocessing, vision tower, connector, first-token
// logits, POP; and the typed image errors.
import { createGpuEngine } from '../src/engine/create.ts';
import type { Engine } from '../src/engine/engine.ts';
import type { PopSetting } from '../src/engine/pop.ts';
import { loadCheckpoint, loadModelFiles } from '../src/model/loader.ts';
import { memorySource } from '../src/model/source.ts';
import { VlmReference } from '../src/reference/vlm_reference.ts';
import { randomVlmFiles, scaleIdefics3Config, type VlmScale } from '../src/vision/random_vlm.ts';
import { toRgba } from '../src/vision/image_input.ts';
import { preprocessRgba, type RgbaImage } from '../src/vision/preprocess.ts';
import { encodeTile } from '../src/vision/siglip.ts';
import { patchesPerSide } from '../src/vision/config.ts';

export interface VlmFixture { config: Record<string, any>; preprocessor: Record<string, any>; scale: VlmScale; prefillChunk?: number; pageSize?: number }

const opened = new Map<string, { engine: Engine<GPUBuffer>; ref: VlmReference }>();

async function open(f: VlmFixture) {
  const key = JSON.stringify(f);
  let e = opened.get(key);
  if (e) return e;
  const source = memorySource(randomVlmFiles(scaleIdefics3Config(f.config, f.scale), f.preprocessor, { seed: 11 }));
  const engine = await createGpuEngine(source, { prefillChunk: f.prefillChunk, pageSize: f.pageSize });
  const files = await loadModelFiles(source);
  const ck = await loadCheckpoint(source);
  e = { engine, ref: new VlmReference(files.config, (n) => ck.get(n)) };
  opened.set(key, e);
  return e;
}

/** A deterministic RGBA test pattern (gradients + checker), optionally with alpha. */
export function testImage(width: number, height: number, alpha = false): RgbaImage {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      data[i] = (x * 255) / width;
      data[i + 1] = (y * 255) / height;
      data[i + 2] = ((x >> 3) + (y >> 3)) % 2 ? 220 : 30;
      data[i + 3] = alpha ? 128 + ((x + y) % 128) : 255;
    }
  return { width, height, data };
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
    const rt = engine.vision!, v = rt.config, ops = engine.ops;
    const pre = preprocessRgba(testImage(w, h), rt.processor);
    const T = v.numChannels * v.imageSize ** 2, N = patchesPerSide(v) ** 2;
    let tower = 0, connector = 0;
    const out = ops.alloc('case.features', v.tokensPerTile * v.textHidden);
    for (let t = 0; t < pre.tiles; t++) {
      const tile = pre.pixels.subarray(t * T, (t + 1) * T);
      const px = ops.upload('case.tile', tile);
      encodeTile(ops, v, rt.weights, rt.state, px, out, 0);
      const gotTower = await ops.read(rt.state.xb, N * v.hiddenSize);
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
