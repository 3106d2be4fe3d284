// The CLI's page (cli.html): the Node CLI drives it through Playwright, so the CLI runs
// exactly the code a tab runs. It holds one engine and answers load / generate / gemm calls
// with plain JSON: {ok} or {error: {code, message, fields}}.
import { Template } from '@huggingface/jinja';
import { createGpuEngine, describeGpuEngine } from '../../src/engine/create.ts';
import { calibrate, type CalibrationSample } from '../../src/engine/calibrate.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { InvalidArgumentError } from '../../src/errors.ts';
import { matmul } from '../../src/kernels/matmul.ts';
import { randomModelSource } from '../../src/model/random_model.ts';
import { urlSource, type ModelSource } from '../../src/model/source.ts';
import type { TextTokenizer } from '../../src/model/tokenizer.ts';
import type { GpuOps } from '../../src/ops/gpu_ops.ts';
import { HeapSampler, loadMemory } from './memory.ts';
import type { ImageInput } from '../../src/vision/image_input.ts';
import type { PreprocessedImage } from '../../src/vision/preprocess.ts';
import { IMAGE_TOKEN } from '../../src/vision/prompt.ts';
import { patternImage, randomVlmPreprocessor } from '../../src/vision/random_vlm.ts';
import { encodeImages, expandImages, freeImageFeatures, imagePlaceholder, imageTokenCount, preprocessImages } from '../../src/vision/runtime.ts';
import type { PopQualityRequest, PopQualityRow, CalibrateReply, CalibrateRequest, CliErrorInfo, GemmReply, GemmShape, GenerateReply, GenerateRequest, ImagePayload, ImagePromptReply, ImagePromptRequest, LoadRequest, ModelInfo, Reply } from './protocol.ts';

let engine: Engine<GPUBuffer> | null = null;

function toErrorInfo(e: unknown): CliErrorInfo {
  const err = e as { code?: unknown; message?: unknown; fields?: Record<string, unknown>; name?: string };
  const code = typeof err?.code === 'string' ? err.code : 'INTERNAL_ERROR';
  const message = typeof err?.message === 'string' ? err.message : String(e);
  return { code, message, fields: err?.fields ?? {} };
}

async function wrap<T>(fn: () => Promise<T>): Promise<Reply<T>> {
  try {
    return { ok: await fn() };
  } catch (e) {
    return { error: toErrorInfo(e) };
  }
}

let folderSource: ((dir: string) => ModelSource) | null = null;
/** Where this code runs in Node (tools/node/dawn_engine.ts): how a `folder` model is read from disk. */
export function useFolderSource(open: (dir: string) => ModelSource): void {
  folderSource = open;
}

function sourceFor(req: LoadRequest): ModelSource {
  const m = req.model;
  if (m.kind === 'url') return { ...urlSource(m.url), id: m.id };
  if (m.kind === 'folder') {
    if (!folderSource) throw new InvalidArgumentError('model', `a local folder (${m.path}) is read only by a host with a file system`);
    return { ...folderSource(m.path), id: m.id };
  }
  // Big random models are written as bf16 (half the bytes); the loader converts. The weight
  // file is drawn while the loader reads it (randomModelSource), so the page never holds it.
  const text = (m.config.text_config ?? m.config) as Record<string, unknown>;
  const big = Number(text.hidden_size) * Number(text.num_hidden_layers) > 20000;
  const o = { seed: m.seed, dtype: big ? 'BF16' as const : 'F32' as const };
  const enc = new TextEncoder();
  const extra = new Map<string, Uint8Array>();
  if (m.tokenizerJson) extra.set('tokenizer.json', enc.encode(m.tokenizerJson));
  if (m.tokenizerConfigJson) extra.set('tokenizer_config.json', enc.encode(m.tokenizerConfigJson));
  // VLMs (Idefics3 / SmolVLM, Gemma 3): vision tower + connector too (the family's extra tensors), and the real image processor settings.
  if (m.config.vision_config) extra.set('preprocessor_config.json', randomVlmPreprocessor(m.config, m.preprocessorConfig ?? {}));
  return randomModelSource(m.config, o, extra, m.id);
}

/**
 * Streams the continuation's text, decoded after the last few prompt tokens so that a
 * leading space is kept; text ending in a partial UTF-8 sequence is held back.
 */
class ContextStreamer {
  private readonly context: number[];
  private readonly contextLen: number;
  private readonly ids: number[] = [];
  private emitted = 0;
  constructor(private readonly tok: TextTokenizer, prompt: readonly number[]) {
    this.context = prompt.slice(-8);
    this.contextLen = tok.decode(this.context).length;
  }
  push(id: number): string {
    this.ids.push(id);
    return this.take(false);
  }
  /** Whatever is still held back, at the end. */
  flush(): string {
    return this.take(true);
  }
  private take(final: boolean): string {
    const text = this.tok.decode([...this.context, ...this.ids]).slice(this.contextLen);
    if (!final && text.endsWith('\uFFFD')) return '';
    const delta = text.slice(this.emitted);
    this.emitted = Math.max(this.emitted, text.length);
    return delta;
  }
}

function requireEngine(): Engine<GPUBuffer> {
  if (!engine) throw Object.assign(new Error('No model is loaded.'), { code: 'ENGINE_NOT_LOADED' });
  return engine;
}

async function load(req: LoadRequest): Promise<Reply<ModelInfo>> {
  return wrap(async () => {
    engine?.unload();
    engine = null;
    let source: ModelSource | null = sourceFor(req);
    // The JS heap during the load (tools/cli/memory.ts); a random model's files are in the baseline.
    const heap = new HeapSampler();
    await heap.start();
    try {
      engine = await createGpuEngine(source, { contextWindow: req.contextWindow, prefillChunk: req.prefillChunk, quantization: req.quantization, kvDtype: req.kvDtype, onProgress: heap.sample, probePrefill: req.probePrefill });
    } finally {
      heap.stop();
      source = null; // unreachable before the after-load heap figure
    }
    if (req.calibration) engine.calibration = req.calibration;
    const c = engine.config;
    const d = describeGpuEngine(engine);
    return {
      layers: c.numLayers, vocabSize: c.vocabSize, hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize,
      numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, bosTokenId: c.bosTokenId,
      contextWindow: engine.contextWindow, hasTokenizer: engine.tokenizer !== null,
      variants: d.variants as Record<string, string>, adapter: d.adapter, kernels: d.kernels as ModelInfo['kernels'],
      weightDtype: d.weightDtype as string, f16Arithmetic: !!d.f16Arithmetic, features: d.features as Record<string, boolean>,
      vision: engine.vision ? {
        layers: engine.vision.config.numLayers, hiddenSize: engine.vision.config.hiddenSize, imageSize: engine.vision.config.kind === 'siglip' ? engine.vision.config.imageSize : 0,
        patchSize: engine.vision.config.patchSize, tokensPerTile: engine.vision.config.kind === 'siglip' ? engine.vision.config.tokensPerTile : 0, imageTokenId: engine.vision.config.imageTokenId,
        longestEdge: engine.vision.processor.longestEdge,
      } : null,
      memory: await loadMemory(engine, heap),
    };
  });
}

async function generate(req: GenerateRequest): Promise<Reply<GenerateReply>> {
  return wrap(async () => {
    const e = requireEngine();
    let promptIds = req.promptIds;
    let images: PreprocessedImage[] | undefined;
    if (req.images?.length) {
      // A user turn of the images then the text, as the model's processor lays it out.
      images = (await prepareImages(e, req.images)).pre;
      const { text, addSpecial } = userTurn(e, images.length, req.prompt ?? '');
      promptIds = imagePromptIds(e, text, images, addSpecial);
    } else if (!promptIds) {
      if (!e.tokenizer) throw Object.assign(new Error("Model file 'tokenizer.json' is missing: give --ids instead of --prompt."), { code: 'MODEL_FILE_MISSING', fields: { file: 'tokenizer.json' } });
      promptIds = e.tokenizer.encode(req.prompt ?? '');
    }
    const streamer = req.stream && e.tokenizer ? new ContextStreamer(e.tokenizer, promptIds) : null;
    const sink = (globalThis as any).__popCliToken as ((id: number, text: string) => void) | undefined;
    const { ids, stats } = await e.generate(promptIds, {
      maxTokens: req.maxTokens, temperature: req.temperature, topP: req.topP, topK: req.topK, seed: req.seed,
      pop: req.pop, ignoreEos: req.ignoreEos, images,
      onToken: req.stream && sink ? (id) => void sink(id, streamer ? streamer.push(id) : '') : undefined,
    });
    return {
      promptIds: [...promptIds], ids, text: e.tokenizer ? e.tokenizer.decode(ids) : null, streamTail: streamer ? streamer.flush() : null,
      prefillMs: stats.prefillMs, decodeMs: stats.decodeMs, ttftMs: stats.ttftMs,
      prefillTokensPerS: stats.prefillTokensPerS, decodeTokensPerS: stats.decodeTokensPerS,
      keep: stats.keep, keepReason: stats.keepReason, layers: stats.layers, finishReason: stats.finishReason,
    };
  });
}

/**
 * Times the chosen prefill matmul variant alone on each shape: `batch` dispatches in one
 * submission (as a prefill records one per layer), best of `reps`, as the probe times.
 */
async function gemm(shapes: GemmShape[], o: { reps?: number; batch?: number } = {}): Promise<Reply<GemmReply>> {
  const reps = o.reps ?? 3, batch = Math.max(1, o.batch ?? 1);
  return wrap(async () => {
    const ops = requireEngine().ops as GpuOps;
    const ctx = ops.ctx;
    const dev = ctx.gpu.device;
    const variant = ops.matmulVariants.prefill;
    const results: GemmReply['results'] = [];
    for (const { m, n, k } of shapes) {
      const mk = (bytes: number) => dev.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      const bx = mk(m * k * 4), bw = mk(n * k * 4), by = mk(m * n * 4);
      const run = () => {
        for (let i = 0; i < batch; i++) matmul(ctx, ops.matmulVariants, { out: by, x: bx, w: bw, bias: null, m, n, k, accumulate: false, xOffset: 0, yOffset: 0 }, variant);
      };
      try {
        run();
        ctx.rec.submit();
        await dev.queue.onSubmittedWorkDone();
        let best = Infinity;
        for (let i = 0; i < reps; i++) {
          const t = performance.now();
          run();
          ctx.rec.submit();
          await dev.queue.onSubmittedWorkDone();
          best = Math.min(best, performance.now() - t);
        }
        results.push({ m, n, k, ms: best / batch, gflops: (2 * m * n * k * batch) / (best / 1000) / 1e9 });
      } finally {
        bx.destroy(), bw.destroy(), by.destroy();
      }
    }
    return { variant, results };
  });
}

function base64Bytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Decodes and preprocesses images for the loaded VLM (typed errors for bad ones and for text-only models). */
async function prepareImages(e: Engine<GPUBuffer>, payloads: readonly ImagePayload[], longestEdge?: number): Promise<{ pre: PreprocessedImage[]; ms: number }> {
  const rt = e.vision;
  if (!rt) throw new InvalidArgumentError('images', `model type '${e.config.modelType}' is text-only: it does not accept images`);
  const processor = longestEdge ? { ...rt.processor, longestEdge } : rt.processor;
  const t0 = performance.now();
  const inputs: ImageInput[] = payloads.map((p) => (p.kind === 'pattern' ? patternImage(p.width, p.height) : base64Bytes(p.base64)));
  const pre = await preprocessImages(inputs, rt, undefined, processor);
  return { pre, ms: performance.now() - t0 };
}

/** Token ids of text whose image placeholders are expanded for the images (tile layouts). */
function imagePromptIds(e: Engine<GPUBuffer>, text: string, pre: readonly PreprocessedImage[], addSpecial = true): number[] {
  const rt = e.vision!;
  const tok = requireTokenizer(e);
  const ids = tok.encode(expandImages(text, pre, rt), addSpecial);
  const want = imageTokenCount(rt, pre);
  const got = ids.filter((id) => id === rt.config.imageTokenId).length;
  if (got !== want) throw Object.assign(new Error(`The tokenizer turned ${want} image token markers into ${got} image tokens (id ${rt.config.imageTokenId}): it lacks the model's image special tokens.`), { code: 'MALFORMED_FILE', fields: { file: 'tokenizer.json' } });
  return ids;
}

/** One user turn of `images` images then `prompt`: the chat template's rendering, else the placeholders inline. */
function userTurn(e: Engine<GPUBuffer>, images: number, prompt: string): { text: string; addSpecial: boolean } {
  const tpl = e.files.chatTemplate;
  if (!tpl) return { text: imagePlaceholder(e.vision!).repeat(images) + prompt, addSpecial: true };
  const tc = e.files.tokenizerConfig ?? {};
  const tokenText = (t: unknown) => (typeof t === 'string' ? t : (t as { content?: string } | null)?.content ?? '');
  const content = [...Array.from({ length: images }, () => ({ type: 'image' })), { type: 'text', text: prompt }];
  return { text: new Template(tpl).render({ messages: [{ role: 'user', content }], add_generation_prompt: true, bos_token: tokenText(tc.bos_token), eos_token: tokenText(tc.eos_token) }), addSpecial: false };
}

function requireTokenizer(e: Engine<GPUBuffer>): TextTokenizer {
  if (!e.tokenizer) throw Object.assign(new Error("Model file 'tokenizer.json' is missing: this call reads text."), { code: 'MODEL_FILE_MISSING', fields: { file: 'tokenizer.json' } });
  return e.tokenizer;
}

/** Times one image+text prompt (or its text part, or its vision part) to the first token. */
async function imagePrompt(req: ImagePromptRequest): Promise<Reply<ImagePromptReply>> {
  return wrap(async () => {
    const e = requireEngine();
    const rt = e.vision;
    const { pre, ms } = await prepareImages(e, req.images, req.longestEdge);
    // The request marks images with `<image>`; the model may use another placeholder (Gemma 3).
    const ids = imagePromptIds(e, req.text.split(IMAGE_TOKEN).join(imagePlaceholder(rt!)), pre);
    const tiles = pre.reduce((a, p) => a + p.tiles, 0);
    const imageTokens = imageTokenCount(rt!, pre);
    const part = req.part ?? 'full';
    const base = { promptTokens: ids.length, imageTokens, tiles, preprocessMs: ms, layers: e.config.numLayers };
    if (part === 'vision') {
      const t0 = performance.now();
      const f = encodeImages(e.ops, rt!, pre);
      await e.ops.read(f.data, 1);
      const t = performance.now() - t0;
      freeImageFeatures(e.ops, f);
      return { ...base, ttftMs: t, prefillMs: 0, keep: e.config.numLayers, ids: [] };
    }
    // 'text': the image rows become a text id (same prompt length, no tower).
    const swap = ids.find((id) => id !== rt!.config.imageTokenId && id > 2) ?? 3;
    const prompt = part === 'text' ? ids.map((id) => (id === rt!.config.imageTokenId ? swap : id)) : ids;
    let first = 0;
    const t0 = performance.now();
    const r = await e.generate(prompt, {
      maxTokens: req.maxTokens, temperature: 0, ignoreEos: true, pop: req.pop, images: part === 'full' ? pre : undefined,
      onToken: () => void (first ||= performance.now()),
    });
    return { ...base, ttftMs: first - t0, prefillMs: r.stats.prefillMs, keep: r.stats.keep, ids: r.ids };
  });
}

/**
 * Calibration samples from text and images: image i goes with the i-th part of the text
 * (its i-th paragraph when there are as many paragraphs as images, else an even split by
 * tokens). Each sample's context is the image's tokens plus the first 3/4 of its text (at
 * most `context` tokens); the rest (at most `continuation`) is predicted.
 */
async function imageSamples(e: Engine<GPUBuffer>, req: CalibrateRequest): Promise<CalibrationSample[]> {
  const tok = requireTokenizer(e);
  const images = req.images!;
  const { pre } = await prepareImages(e, images);
  const paras = req.text.split(/\n\s*\n/).map((p) => p.trim()).filter(Boolean);
  let parts: number[][];
  if (paras.length === images.length) parts = paras.map((p) => tok.encode(' ' + p, false));
  else {
    const all = tok.encode(req.text, false);
    const n = Math.floor(all.length / images.length);
    parts = images.map((_, i) => all.slice(i * n, (i + 1) * n));
  }
  return pre.map((img, i) => {
    const part = parts[i];
    if (part.length < 2) throw new InvalidArgumentError('--text', `the text paired with image ${i + 1} (${images[i].kind === 'file' ? images[i].name : 'pattern'}) needs at least 2 tokens (got ${part.length})`);
    const c = Math.max(1, Math.min(req.context ?? Infinity, Math.floor(part.length * 0.75), part.length - 1));
    const n = Math.min(req.continuation ?? 16, part.length - c);
    return { context: [...imagePromptIds(e, imagePlaceholder(e.vision!), [img]), ...part.slice(0, c)], continuation: part.slice(c, c + n), images: [img] };
  });
}

async function calibrateModel(req: CalibrateRequest): Promise<Reply<CalibrateReply>> {
  return wrap(async () => {
    const e = requireEngine();
    const tok = requireTokenizer(e);
    const input = req.images?.length ? await imageSamples(e, req) : tok.encode(req.text);
    return calibrate(e, input, { budget: req.budget, context: req.context, continuation: req.continuation });
  });
}

/** First-token KL and greedy agreement of POP settings against full depth, on given prompts. */
async function popQuality(req: PopQualityRequest): Promise<Reply<PopQualityRow[]>> {
  return wrap(async () => {
    const e = requireEngine();
    const softmax = (x: Float32Array) => {
      let m = -Infinity;
      for (const v of x) m = Math.max(m, v);
      const p = Float64Array.from(x, (v) => Math.exp(v - m));
      const z = p.reduce((a, b) => a + b, 0);
      return p.map((v) => v / z);
    };
    const argmax = (x: Float32Array) => x.reduce((bi, v, i, a) => (v > a[bi] ? i : bi), 0);
    const base: { probs: Float64Array; top: number; ids: number[] }[] = [];
    for (const p of req.prompts) {
      const logits = await e.promptLogits(p, 'off');
      const { ids } = await e.generate(p, { maxTokens: req.maxTokens, pop: 'off', ignoreEos: true });
      base.push({ probs: softmax(logits), top: argmax(logits), ids });
    }
    const rows: PopQualityRow[] = [];
    for (const pop of req.pops) {
      let klSum = 0, klMax = 0, firstSame = 0, same = 0, total = 0, keep = 0;
      for (let i = 0; i < req.prompts.length; i++) {
        const logits = await e.promptLogits(req.prompts[i], pop.setting);
        const q = softmax(logits), p = base[i].probs;
        let kl = 0;
        for (let j = 0; j < p.length; j++) if (p[j] > 0) kl += p[j] * Math.log(p[j] / Math.max(q[j], 1e-300));
        klSum += kl, (klMax = Math.max(klMax, kl));
        if (argmax(logits) === base[i].top) firstSame++;
        const r = await e.generate(req.prompts[i], { maxTokens: req.maxTokens, pop: pop.setting, ignoreEos: true });
        keep = r.stats.keep;
        r.ids.forEach((t, j) => ((same += Number(t === base[i].ids[j])), total++));
      }
      rows.push({ pop: pop.label, keep, layers: e.config.numLayers, firstTokenKlMean: klSum / req.prompts.length, firstTokenKlMax: klMax, firstTokenAgreement: firstSame / req.prompts.length, greedyAgreement: same / total });
    }
    return rows;
  });
}

function unload(): void {
  engine?.unload();
  engine = null;
}

(globalThis as any).popCli = { load, generate, gemm, calibrate: calibrateModel, imagePrompt, popQuality, unload };
(globalThis as any).__popReady = true;
