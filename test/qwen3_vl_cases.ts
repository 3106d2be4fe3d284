// Page-side cases for the tiny-random Qwen3-VL (test/qwen3_vl.spec.ts): the engine on WebGPU
// against the independent CPU reference (src/reference/vlm_reference.ts Qwen3VlReference) on
// image prompts, POP, decode and errors.
import { calibrate } from '../src/engine/calibrate.ts';
import { createGpuEngine } from '../src/engine/create.ts';
import type { Engine } from '../src/engine/engine.ts';
import type { PopSetting } from '../src/engine/pop.ts';
import { loadCheckpoint, loadModelFiles } from '../src/model/loader.ts';
import { memorySource } from '../src/model/source.ts';
import { Qwen3VlReference } from '../src/reference/vlm_reference.ts';
import type { Qwen3VisionConfig } from '../src/model/vision_config.ts';
import { patternImage, randomVlmFiles, scaleQwen3VlConfig, type Qwen3VlScale } from '../src/vision/random_vlm.ts';
import { preprocessImages } from '../src/vision/runtime.ts';
import type { PreprocessedImage } from '../src/vision/preprocess.ts';
import { dequantizeQ4, quantizeQ4, type QuantScheme } from '../src/core/quant.ts';
import { qwen3VisionTensors } from '../src/model/families/qwen3_vl.ts';

export interface QwenFixture {
  config: Record<string, any>;
  scale: Qwen3VlScale;
  preprocessor: Record<string, any>;
  prefillChunk?: number;
  pageSize?: number;
  /** Load the engine int4 (text projections and the tower's linear weights); the reference reads the same dequantized values. */
  quant?: QuantScheme;
}

const opened = new Map<string, { engine: Engine<GPUBuffer>; ref: Qwen3VlReference }>();

async function open(f: QwenFixture) {
  const key = JSON.stringify(f);
  let e = opened.get(key);
  if (e) return e;
  const source = memorySource(randomVlmFiles(scaleQwen3VlConfig(f.config, f.scale), f.preprocessor, { seed: 13 }));
  const engine = await createGpuEngine(source, { prefillChunk: f.prefillChunk, pageSize: f.pageSize, quantization: f.quant });
  const files = await loadModelFiles(source);
  const ck = await loadCheckpoint(source);
  // Under q4 the reference computes with what int4 keeps of each matmul weight: the text
  // projections (*_proj), the tower's linear weights (ExtraTensor.matmul) and the vocabulary
  // tables (the embedding, which the tied LM head reads: q4 by default under quantization), each
  // quantized per row in groups of 32 along K and dequantized (src/core/quant.ts), on its own.
  const towerMatmuls = new Set(qwen3VisionTensors(files.config.vision as Qwen3VisionConfig).filter((t) => t.matmul).map((t) => t.name));
  const get = (n: string): Float32Array | null => {
    const t = ck.get(n), shape = ck.entry(n)?.shape;
    if (!f.quant || !t || !shape || !(towerMatmuls.has(n) || /^model\.language_model\.(layers\.\d+\..*_proj\.weight|embed_tokens\.weight)$/.test(n) || n === 'lm_head.weight')) return t;
    const q = quantizeQ4(t, { scheme: f.quant, cols: t.length / shape[0] });
    return dequantizeQ4(q.packed, q.info);
  };
  e = { engine, ref: new Qwen3VlReference(files.config, get) };
  opened.set(key, e);
  return e;
}

const image = (w: number, h: number) => patternImage(w, h, { checker: 4 });

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) (d = Math.max(d, Math.abs(a[i] - b[i]))), (m = Math.max(m, Math.abs(b[i])));
  if (a.length !== b.length || Array.from(a).some(Number.isNaN)) return Infinity;
  return d / Math.max(1, m);
}

const argmax = (x: ArrayLike<number>) => Array.from(x).reduce((bi, v, i, a) => (v > a[bi] ? i : bi), 0);

/** `text` with `@` standing for one image: <|vision_start|> + its tokens + <|vision_end|>. */
function promptFor(v: Qwen3VisionConfig, pre: readonly PreprocessedImage[], text: number[]): number[] {
  const out: number[] = [];
  let k = 0;
  for (const t of text) {
    if (t !== -1) out.push(t);
    else {
      const g = pre[k++].grid!;
      out.push(v.visionStartId, ...Array((g.h * g.w) / v.mergeSize ** 2).fill(v.imageTokenId), v.visionEndId);
    }
  }
  return out;
}

async function errorCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

export const qwenCases = {
  /**
   * Tower (merged features and every DeepStack tap) vs the reference on each image, and the
   * logits of a prompt with those images (-1 in `text`) and then `continuation` (decode
   * positions after the image), at the given POP setting, vs the reference's own POP.
   */
  async logitsVsReference(f: QwenFixture, sizes: [number, number][], text: number[], pop: PopSetting | undefined, continuation: number[] = []) {
    const { engine, ref } = await open(f);
    const rt = engine.vision!, v = rt.config as Qwen3VisionConfig, ops = engine.ops;
    const pre = await preprocessImages(sizes.map(([w, h]) => image(w, h)), rt);
    let tower = 0, deep = 0;
    const features: Float32Array[] = [], deepstack: Float32Array[][] = v.deepstackIndexes.map(() => []);
    for (const im of pre) {
      const rows = (im.grid!.h * im.grid!.w) / 4;
      const out = ops.alloc('case.out', rows * v.textHidden), ds = v.deepstackIndexes.map(() => ops.alloc('case.ds', rows * v.textHidden));
      rt.tower.encode(im, out, 0, ds);
      const want = ref.qwenTower(im.pixels, im.grid!.h, im.grid!.w);
      const got = await ops.read(out, rows * v.textHidden);
      want.features.forEach((r, i) => (tower = Math.max(tower, maxDiff(got.subarray(i * v.textHidden, (i + 1) * v.textHidden), r))));
      for (let j = 0; j < ds.length; j++) {
        const g = await ops.read(ds[j], rows * v.textHidden);
        want.deepstack[j].forEach((r, i) => (deep = Math.max(deep, maxDiff(g.subarray(i * v.textHidden, (i + 1) * v.textHidden), r))));
        deepstack[j].push(...want.deepstack[j]);
      }
      features.push(...want.features);
      ops.free(out);
      for (const d of ds) ops.free(d);
    }
    const prompt = promptFor(v, pre, text);
    const keep = engine.resolveKeep(pop);
    const got = await engine.teacherForced(prompt, continuation, pop, undefined, pre as never);
    const grids = pre.map((im) => ({ h: im.grid!.h / 2, w: im.grid!.w / 2 }));
    const want = ref.qwenLogits(prompt, grids, features, deepstack, keep, continuation);
    // Both matter: 1-D positions, or no DeepStack adds, on the same rows are far away.
    const flat = ref.qwenLogits(prompt, grids, features, deepstack, keep, continuation, true);
    const noDeep = ref.qwenLogits(prompt, grids, features, [], keep, continuation);
    const towerBytes = rt.tower.tensors().reduce((a, t) => a + ((ops as { bytesOf?: (t: GPUBuffer) => number }).bytesOf?.(t) ?? t.size), 0);
    return {
      keep, promptTokens: prompt.length, towerBytes, imageTokens: prompt.filter((t) => t === v.imageTokenId).length, grids,
      tower, deepstack: deep,
      err: Math.max(...want.map((w, i) => maxDiff(got[i], w))), sameArgmax: want.every((w, i) => argmax(w) === argmax(got[i])),
      flatGap: Math.max(...flat.map((w, i) => maxDiff(got[i], w))), deepstackGap: Math.max(...noDeep.map((w, i) => maxDiff(got[i], w))),
    };
  },

  /** Greedy ids of a prompt with images at a POP setting (and the keep it ran at). */
  async generate(f: QwenFixture, sizes: [number, number][], text: number[], maxTokens: number, pop: PopSetting) {
    const { engine } = await open(f);
    const rt = engine.vision!, v = rt.config as Qwen3VisionConfig;
    const pre = await preprocessImages(sizes.map(([w, h]) => image(w, h)), rt);
    const r = await engine.generate(promptFor(v, pre, text), { maxTokens, temperature: 0, ignoreEos: true, pop, images: pre });
    return { ids: r.ids, keep: r.stats.keep };
  },

  /** calibrate() with image samples: the keeps it measures (none below the DeepStack depth) and its pick. */
  async calibrateImages(f: QwenFixture, sizes: [number, number][]) {
    const { engine } = await open(f);
    const rt = engine.vision!, v = rt.config as Qwen3VisionConfig;
    const pre = await preprocessImages(sizes.map(([w, h]) => image(w, h)), rt);
    const samples = pre.map((im) => ({ context: promptFor(v, [im], [1, -1, 17, 33]), continuation: [44, 55, 66], images: [im] }));
    const r = await calibrate(engine, samples as never, { budget: 0.05 });
    return { keeps: r.popLoss.map((p) => p.keep), keep: r.keep, imageSamples: r.imageSamples, exactDelta: r.popLoss.find((p) => p.keep === 4)!.delta };
  },

  /** The error code of a request (a keep below the DeepStack depth, a token count that does not match). */
  async refuses(f: QwenFixture, sizes: [number, number][], text: number[], pop: PopSetting, drop = 0) {
    const { engine } = await open(f);
    const rt = engine.vision!, v = rt.config as Qwen3VisionConfig;
    const pre = await preprocessImages(sizes.map(([w, h]) => image(w, h)), rt);
    const prompt = promptFor(v, pre, text);
    if (drop) prompt.splice(prompt.indexOf(v.imageTokenId), drop);
    const err = await errorCode(engine.generate(prompt, { maxTokens: 2, pop, images: pre }));
    const after = await engine.generate(promptFor(v, pre, text), { maxTokens: 1, pop: 'off', images: pre }).then(() => 'ok', (e) => String(e));
    return { err, after };
  },
};
