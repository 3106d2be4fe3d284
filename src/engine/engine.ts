// The engine orchestrates: it owns the model, the ops (device), the paged KV cache and one
// run state; it tokenizes, chunks the prompt, picks POP's keep, runs the one forward, samples
// and streams tokens, and keeps stats. Kernels compute; the cache stores.
import { AbortError, ContextLengthExceededError, InvalidArgumentError, PopKeepTooShallowError } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import { kvDim, layerKvDim, layerShape, ropeInvFreq } from '../model/config.ts';
import type { FamilySpec } from '../model/family.ts';
import { loadModelFiles, streamWeights, weightTensors, type LoadProgress, type ModelFiles } from '../model/loader.ts';
import { tableStorage } from '../model/load_options.ts';
import { streamMlcWeights } from '../model/mlc.ts';
import type { LoadStats } from '../model/stream.ts';
import type { ModelSource } from '../model/source.ts';
import { TextTokenizer } from '../model/tokenizer.ts';
import type { Weights } from '../model/weights.ts';
import { MAX_TOP_LOGPROBS, type Ops, type SampledToken, type SampleOptions, type SampleParams, type SampleReadback, type TokenAdjustment } from '../ops/ops.ts';
import type { TokenConstraint } from './grammar.ts';
import { PagedKvCache } from '../kv/paged_kv_cache.ts';
import { createRunState, forward, freeRunState, type ForwardStep, type RunState } from './forward.ts';
import { losslessKeep, resolveKeepWithReason, type KeepChoice, type PopCalibration, type PopSetting } from './pop.ts';
import type { ImageInput } from '../vision/image_input.ts';
import type { PreprocessedImage } from '../vision/preprocess.ts';
import { imageTokenPositions, imageTokenRuns } from '../vision/prompt.ts';
import type { VisionTower } from '../vision/family.ts';
import { visionFamilyOf } from '../vision/pieces.ts';
import { encodeImages, freeImageFeatures, freeVisionRuntime, imagePlaceholder, imageTokenCount, keyEndRows, loadVisionRuntime, overrideRows, preprocessImages, type ImageFeatures, type VisionRuntime } from '../vision/runtime.ts';
import { ropePositionTable } from '../vision/mrope.ts';

export interface EngineOptions {
  /** Tokens per sequence (default: the model's max_position_embeddings, at most 4096). */
  contextWindow?: number;
  /** Tokens per KV page. */
  pageSize?: number;
  /** Prompt tokens per forward call. */
  prefillChunk?: number;
  /** Default POP setting for requests that do not give one. */
  pop?: PopSetting;
  /** Build POP's stacked deep K/V weights (default true). */
  popWeights?: boolean;
  /**
   * int4 weight-only quantization on load (group 32 along K, f32 scales; src/core/quant.ts) of
   * the projection weights: qkv, o, gate|up, down and POP's deep K/V. Default 'none'.
   */
  quantization?: 'none' | 'q4' | 'q4-asym';
  /**
   * The older LM-head switch (when lmHeadDtype is not given): true = int4 head, false = an
   * unquantized head (weightDtype). Unset: lmHeadDtype's default.
   */
  quantizeLmHead?: boolean;
  /**
   * How the embedding tables (the main one, Gemma 4's per-layer one) are stored: 'q4' (int4 in
   * the quantization's scheme, gathered dequantized as read), 'f16', 'f32', or 'auto' (default)
   * = 'q4' with quantization, else 'f32'.
   */
  embeddingDtype?: 'auto' | 'q4' | 'f16' | 'f32';
  /**
   * How the LM head is stored: 'q4', 'f16', 'f32', or 'auto' (default) = 'q4' with
   * quantization, else weightDtype. A tied head stored as the embedding is reads the embedding
   * itself (no copy); otherwise it gets its own copy.
   */
  lmHeadDtype?: 'auto' | 'q4' | 'f16' | 'f32';
  /**
   * Storage of the matmul weights not quantized (projections, POP's deep K/V, the LM head; a
   * tied head gets its own copy): 'f16' = packed halves read by f16 kernels (src/core/half.ts;
   * every adapter; f16 arithmetic where the adapter has shader-f16), 'f32', or 'auto' (default)
   * = f16 where the adapter has shader-f16, else f32. createGpuEngine resolves 'auto' (and
   * reports the result in engine.opts.weightDtype); an unresolved 'auto' loads f32.
   * Embeddings, norms and biases stay f32.
   */
  weightDtype?: 'auto' | 'f32' | 'f16';
  /**
   * Storage of the KV cache: 'f16' halves its bytes (K/V rounded to f16 as written, widened to
   * f32 as the attention kernels read them; every adapter), 'f32', or 'auto' (default) = f16
   * where the adapter has shader-f16, else f32. createGpuEngine resolves 'auto' (reported in
   * engine.opts.kvDtype); an unresolved 'auto' is f32.
   */
  kvDtype?: 'auto' | 'f32' | 'f16';
  /** VLMs: largest image accepted, in decoded pixels (default 8192 x 8192); larger: IMAGE_TOO_LARGE. */
  maxImagePixels?: number;
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
  /** Row ranges of about this many bytes while weights stream in (tests make it small; default 4 MiB). */
  loadChunkBytes?: number;
  /**
   * Scan every weight for NaN / Inf while it streams in (MALFORMED_WEIGHTS naming the tensor);
   * default true. false skips the scan for trusted sources (its cost: `npm run bench`).
   */
  checkWeights?: boolean;
}

export interface GenerateOptions {
  maxTokens: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  /** Keep tokens with p >= minP * p_max (0: off). */
  minP?: number;
  /** OpenAI's: l -= frequencyPenalty * count + presencePenalty for each generated token (-2..2). */
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** CTRL / transformers: logits of prompt and generated tokens l < 0 ? l * r : l / r (> 0; 1 = off). */
  repetitionPenalty?: number;
  /** Token id -> bias added to its logit (-100..100). */
  logitBias?: Record<number | string, number>;
  /** Return each token's logprob, with this many top alternatives (0..20); absent: none. */
  topLogprobs?: number;
  /** A grammar (src/engine/grammar.ts): its bitmask masks each step's logits on the GPU. */
  constraint?: TokenConstraint;
  /** n > 1 with a grammar: one matcher per choice (disposed when the request ends). */
  constraints?: TokenConstraint[];
  /**
   * Choices from one prompt (1..8): prefilled once; the choices share its KV pages (copied on
   * write) and decode one after another, choice i with its own seed stream. Multi-turn reuse
   * continues from choice 0.
   */
  n?: number;
  pop?: PopSetting;
  /** Stop at these ids (default: the model's EOS ids). */
  stopTokenIds?: number[];
  /** Keep generating past EOS (benchmarks, reference comparisons). */
  ignoreEos?: boolean;
  /** Reuse the KV of a shared prefix with the previous request (multi-turn). */
  reusePrefix?: boolean;
  /**
   * VLMs: one image per image placeholder, in order. The prompt must already hold the
   * expanded image tokens (src/vision/prompt.ts expandImages: tiles x tokensPerTile ids per image).
   */
  images?: readonly (ImageInput | PreprocessedImage)[];
  /** Called for each generated token (with its logprobs when asked, and its choice); returning true stops that choice (stop strings). */
  onToken?: (id: number, token: SampledToken, choice: number) => boolean | void;
  signal?: AbortSignal;
  /**
   * What an abort does: 'throw' (default) rejects with ABORTED; 'finish' ends the request with
   * finishReason 'abort' and the tokens so far (the API's interruptGenerate, as WebLLM's).
   */
  onAbort?: 'throw' | 'finish';
  /** A hook between the forward pass and sampling (WebLLM's LogitProcessor): logits on the CPU, changed, sampled from. */
  logitProcessor?: LogitHook;
}

export interface GenerateStats {
  promptTokens: number;
  /** Prompt tokens actually prefilled (the rest came from the reused prefix). */
  prefilledTokens: number;
  reusedTokens: number;
  completionTokens: number;
  keep: number;
  /** Why this keep ran (src/engine/pop.ts KeepChoice.reason). */
  keepReason: string;
  layers: number;
  prefillMs: number;
  decodeMs: number;
  ttftMs: number;
  prefillTokensPerS: number;
  decodeTokensPerS: number;
  finishReason: 'stop' | 'length' | 'abort';
  /** Choices generated (n), prompts prefilled (1), and KV bytes the choices shared instead of copying. */
  choices?: number;
  prefills?: number;
  sharedKvBytes?: number;
}

/** One choice of an n > 1 request. */
export interface GenerateChoice {
  ids: number[];
  logprobs?: SampledToken[];
  finishReason: 'stop' | 'length' | 'abort';
}

export interface GenerateResult {
  ids: number[];
  /** Per generated token when topLogprobs was given: its logprob and the top alternatives. */
  logprobs?: SampledToken[];
  /** n > 1: every choice (choices[0] is ids / logprobs above). */
  choices?: GenerateChoice[];
  stats: GenerateStats;
}

/**
 * A request's sampling state across steps: the logit adjustments (logit_bias, the counts for
 * frequency / presence penalties, the seen set for the repetition penalty) and the grammar.
 */
class StepSampler {
  private readonly entries = new Map<number, TokenAdjustment>();
  private readonly penalized: boolean;
  readonly opts: SampleOptions;

  constructor(prompt: readonly number[], o: GenerateOptions, vocab: number) {
    const num = (name: string, v: number | undefined, lo: number, hi: number, dflt: number) => {
      if (v === undefined || v === null) return dflt;
      if (typeof v !== 'number' || !(v >= lo && v <= hi)) throw new InvalidArgumentError(name, `must be a number in [${lo}, ${hi}] (got ${v})`);
      return v;
    };
    const frequency = num('frequency_penalty', o.frequencyPenalty, -2, 2, 0);
    const presence = num('presence_penalty', o.presencePenalty, -2, 2, 0);
    const repetition = num('repetition_penalty', o.repetitionPenalty, Number.MIN_VALUE, Infinity, 1);
    num('min_p', o.minP, 0, 1, 0);
    if (o.topLogprobs !== undefined && !(Number.isInteger(o.topLogprobs) && o.topLogprobs >= 0 && o.topLogprobs <= MAX_TOP_LOGPROBS)) throw new InvalidArgumentError('top_logprobs', `must be an integer in 0..${MAX_TOP_LOGPROBS} (got ${o.topLogprobs})`);
    for (const [key, bias] of Object.entries(o.logitBias ?? {})) {
      const id = Number(key);
      if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new InvalidArgumentError('logit_bias', `token id ${key} is outside the vocabulary 0..${vocab - 1}`);
      if (typeof bias !== 'number' || !(bias >= -100 && bias <= 100)) throw new InvalidArgumentError('logit_bias', `the bias of token ${key} must be a number in [-100, 100] (got ${bias})`);
      this.entry(id).bias = bias;
    }
    if (repetition !== 1) for (const id of prompt) this.entry(id).seen = true;
    this.penalized = frequency !== 0 || presence !== 0 || repetition !== 1;
    this.opts = { frequencyPenalty: frequency, presencePenalty: presence, repetitionPenalty: repetition, topLogprobs: o.topLogprobs, adjust: [...this.entries.values()] };
  }

  private entry(id: number): TokenAdjustment {
    let e = this.entries.get(id);
    if (!e) this.entries.set(id, (e = { id, count: 0, seen: false, bias: 0 }));
    return e;
  }

  /** Counts a generated token for the next step's penalties. */
  record(id: number): void {
    if (!this.penalized) return;
    const e = this.entry(id);
    e.count++;
    e.seen = true;
    this.opts.adjust = [...this.entries.values()];
  }
}

const now = () => performance.now();

/** WebLLM's LogitProcessor as the engine uses it. */
export interface LogitHook {
  processLogits(logits: Float32Array): Float32Array;
  processSampledToken(token: number): void;
}

/** Most choices (n) one request may ask for: sequences that may share the KV cache at once. */
export const MAX_CHOICES = 8;

/** The load options that choose a storage, and the values each accepts (Engine.load refuses others by name). */
const STORAGE_OPTIONS: [keyof EngineOptions & ('quantization' | 'weightDtype' | 'kvDtype' | 'embeddingDtype' | 'lmHeadDtype'), readonly string[]][] = [
  ['quantization', ['none', 'q4', 'q4-asym']],
  ['weightDtype', ['auto', 'f32', 'f16']],
  ['kvDtype', ['auto', 'f32', 'f16']],
  ['embeddingDtype', ['auto', 'q4', 'f16', 'f32']],
  ['lmHeadDtype', ['auto', 'q4', 'f16', 'f32']],
];

/** A request's image features on the device, the prompt rows they fill, and (Gemma 3) the bidirectional runs. */
interface ImageRows<T> extends ImageFeatures<T> {
  positions: number[];
  /** [start, end) of each run of image tokens that attend to each other (empty: causal). */
  runs: [number, number][];
  /**
   * M-RoPE families: the request's RoPE table by cache position (prompt rows from their 3-D
   * positions, then the rows decode will use); lives until the request ends.
   */
  ropeTable?: T;
}

function isPreprocessed(x: unknown): boolean {
  return typeof x === 'object' && x !== null && 'pixels' in x && 'tiles' in x && 'tileSize' in x;
}

/**
 * Lets other tasks run (an interrupt, an abort, a Comlink message) between kernel steps.
 * A MessageChannel round trip is not clamped the way nested setTimeout(0) is.
 */
export function yieldToEventLoop(): Promise<void> {
  const s = (globalThis as { scheduler?: { yield?: () => Promise<void> } }).scheduler;
  if (s?.yield) return s.yield();
  if (typeof MessageChannel === 'undefined') return new Promise((r) => setTimeout(r, 0));
  return new Promise((r) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      r();
    };
    ch.port2.postMessage(null);
  });
}

export class Engine<T> {
  readonly cache: PagedKvCache<T>;
  readonly state: RunState<T>;
  readonly contextWindow: number;
  calibration: PopCalibration | null = null;
  /** What the load read and held on the host (src/model/stream.ts), for benchmarks and tests. */
  loadStats: LoadStats | null = null;
  /** VLMs: vision tower, connector and image processor (null for text-only models). */
  vision: VisionRuntime<T> | null = null;
  /** Tokens whose K/V sequence 0 holds, for multi-turn prefix reuse. */
  private cachedTokens: number[] = [];
  lastStats: GenerateStats | null = null;
  /** n > 1: the prompt's last logits, restored before each further choice's first draw. */
  private choiceLogits: T | null = null;

  private constructor(
    readonly ops: Ops<T>,
    readonly files: ModelFiles,
    readonly weights: Weights<T>,
    readonly tokenizer: TextTokenizer | null,
    readonly opts: EngineOptions,
  ) {
    const c = files.config;
    this.contextWindow = opts.contextWindow ?? Math.min(c.maxPositionEmbeddings, 4096);
    this.contextWindow = Math.max(1, this.contextWindow);
    const chunk = opts.prefillChunk ?? 512;
    this.state = createRunState(ops, c, chunk, opts.popWeights !== false);
    // One reservation per distinct layer shape (Gemma 4's full layers are wider); they grow to the largest.
    const shapes = new Set(Array.from({ length: c.numLayers }, (_, l) => JSON.stringify([layerShape(c, l).numKvHeads, layerShape(c, l).headDim])));
    for (const key of shapes) {
      const [kvHeads, headDim] = JSON.parse(key) as [number, number];
      ops.reserveAttention(chunk, this.contextWindow, c.numHeads, kvHeads, headDim);
    }
    // One context window of pages, and one more: an n > 1 choice shares the prompt's pages and
    // copies the partial one it writes into (see generate).
    const pageSize = opts.pageSize ?? 16;
    this.cache = new PagedKvCache(ops, {
      numLayers: c.numLayers, kvDim: kvDim(c), pageSize, contextWindow: this.contextWindow, maxSequences: MAX_CHOICES, numPages: Math.ceil(this.contextWindow / pageSize) + 1,
      layerKvDims: c.layerShapes ? Array.from({ length: c.numLayers }, (_, l) => layerKvDim(c, l)) : undefined, kvSource: c.kvSource,
      dtype: opts.kvDtype === 'f16' ? 'f16' : 'f32',
    });
  }

  get config(): ModelConfig {
    return this.files.config;
  }
  get spec(): FamilySpec {
    return this.files.spec;
  }

  static async load<T>(ops: Ops<T>, source: ModelSource, opts: EngineOptions = {}): Promise<Engine<T>> {
    try {
      return await Engine.loadUnchecked(ops, source, opts);
    } catch (e) {
      // fetch() rejects with a DOMException when the caller aborts: make it the typed error.
      if ((e as Error)?.name === 'AbortError' && !(e instanceof AbortError)) throw new AbortError('load');
      throw e;
    }
  }

  private static async loadUnchecked<T>(ops: Ops<T>, source: ModelSource, opts: EngineOptions): Promise<Engine<T>> {
    const files = await loadModelFiles(source, opts.signal);
    if (opts.contextWindow !== undefined && !(Number.isInteger(opts.contextWindow) && opts.contextWindow > 0)) {
      throw new InvalidArgumentError('contextWindow', `must be a positive integer (got ${opts.contextWindow})`);
    }
    // An image whose tokens attend to each other (Gemma 3) is prefilled in one chunk.
    const v = files.config.vision;
    if (v?.kind === 'siglip' && v.bidirectionalImages && (opts.prefillChunk ?? 512) < v.tokensPerTile) {
      throw new InvalidArgumentError('prefillChunk', `must hold one image's ${v.tokensPerTile} tokens (got ${opts.prefillChunk})`);
    }
    const vf = v ? visionFamilyOf(v) : null;
    for (const [name, allowed] of STORAGE_OPTIONS) {
      const value = opts[name];
      if (value !== undefined && !allowed.includes(value)) throw new InvalidArgumentError(name, `must be ${allowed.map((a) => `'${a}'`).join(', ').replace(/, ([^,]*)$/, ' or $1')} (got ${value})`);
    }
    const quant = opts.quantization ?? 'none';
    const contextWindow = opts.contextWindow ?? Math.min(files.config.maxPositionEmbeddings, 4096);
    const tables = tableStorage(opts);
    const build = { pop: opts.popWeights !== false, positions: contextWindow, quant: quant === 'none' ? null : quant, quantLmHead: tables.head === 'q4', half: opts.weightDtype === 'f16', embedDtype: tables.embed, headDtype: tables.head, checkWeights: opts.checkWeights };
    // Weights stream in (src/model/stream.ts), a VLM's vision tower with them. MLC folders come
    // quantized (their q4 is kept as is); `quantization` applies to f32 weights.
    const stream = { onProgress: opts.onProgress, signal: opts.signal, chunkBytes: opts.loadChunkBytes };
    const loaded = files.mlc
      ? { ...(await streamMlcWeights(ops, files.config, files.spec, source, build, stream)), extra: null }
      : await streamWeights(ops, files.config, files.spec, source, build, { ...stream, extra: v && vf ? (p) => { const plan = vf.planTower(p, v, { quant: build.quant, half: build.half }); return () => plan; } : undefined });
    const weights = loaded.weights;
    let tower: VisionTower<T> | null = null;
    try {
      tower = loaded.extra ? loaded.extra(ops) : null;
    } catch (e) {
      for (const t of weightTensors(weights)) ops.free(t);
      throw e;
    }
    if (opts.signal?.aborted) {
      for (const t of weightTensors(weights)) ops.free(t);
      tower?.free();
      throw new AbortError('load');
    }
    let engine: Engine<T>;
    let vision: VisionRuntime<T> | null = null, ownTower = !!tower;
    try {
      const tokenizer = TextTokenizer.from(files.tokenizerJson, files.tokenizerConfig);
      ownTower = false; // loadVisionRuntime frees the tower if it fails
      vision = tower && vf ? await loadVisionRuntime(vf, files.config, tower, source, opts.signal) : null;
      engine = new Engine(ops, files, weights, tokenizer, opts);
      engine.vision = vision;
      engine.loadStats = loaded.stats;
    } catch (e) {
      for (const t of weightTensors(weights)) ops.free(t);
      if (vision) freeVisionRuntime(vision);
      else if (ownTower) tower!.free();
      throw e;
    }
    const calib = await source.fetchFile('pop.json', { optional: true }).catch(() => null);
    if (calib) {
      try {
        engine.calibration = JSON.parse(new TextDecoder().decode(calib));
      } catch {
        /* a broken pop.json is ignored: 'auto' falls back to exact */
      }
    }
    return engine;
  }

  resolveKeep(pop?: PopSetting): number {
    return this.resolveKeepWithReason(pop).keep;
  }

  /** The keep a setting runs with, and why (reported in GenerateStats.keepReason). */
  resolveKeepWithReason(pop?: PopSetting): KeepChoice {
    return resolveKeepWithReason(pop ?? this.opts.pop, this.config.numLayers, this.calibration, losslessKeep(this.config));
  }

  /**
   * Image features for a prompt: checks the images against the model and the prompt's
   * `<image>` ids, runs the vision tower + connector. Returns null without images.
   */
  private async imageFeatures(prompt: readonly number[], images: readonly (ImageInput | PreprocessedImage)[] | undefined, keep: number, extraRows: number): Promise<ImageRows<T> | null> {
    const rt = this.vision;
    if (images?.length && rt && keep < rt.config.deepstackLayers) {
      // DeepStack adds image features after decoder layers [0, n): under POP those layers must
      // run for every prompt row, so keep may not be below n.
      throw new PopKeepTooShallowError(keep, rt.config.deepstackLayers, `this model adds image features (DeepStack) after its first ${rt.config.deepstackLayers} decoder layers, which every prompt token must run`);
    }
    if (!images?.length) {
      if (rt && prompt.includes(rt.config.imageTokenId)) throw new InvalidArgumentError('images', `the prompt holds image tokens (id ${rt.config.imageTokenId}) but no images were given`);
      return null;
    }
    if (!rt) throw new InvalidArgumentError('images', `model type '${this.config.modelType}' is text-only: it does not accept images`);
    // Callers that expanded the prompt already preprocessed the images (the tile layout
    // decides the expansion): do not do it twice.
    const done = images.every(isPreprocessed);
    const pre = done ? (images as unknown as PreprocessedImage[]) : await preprocessImages(images as readonly ImageInput[], rt, this.opts.maxImagePixels);
    const positions = imageTokenPositions(prompt, rt.config.imageTokenId);
    const want = imageTokenCount(rt, pre);
    if (positions.length !== want) throw new InvalidArgumentError('images', `the prompt holds ${positions.length} image tokens but the ${images.length} image(s) give ${want}; expand each ${imagePlaceholder(rt)} with expandImages`);
    // M-RoPE: image tokens take their grid's 3-D positions, text continues after the largest.
    const rope = rt.family.ropePositions?.(prompt, pre, rt.config);
    // Gemma 3: each run of image tokens is one bidirectional block, prefilled within one chunk.
    const runs = rt.config.bidirectionalImages ? imageTokenRuns(positions) : [];
    const long = runs.find(([s, e]) => e - s > this.state.maxRows);
    if (long) throw new InvalidArgumentError('prompt', `a run of ${long[1] - long[0]} image tokens at position ${long[0]} is longer than the prefill chunk (${this.state.maxRows} rows); separate images with text tokens`);
    const section = 'mropeSection' in rt.config ? rt.config.mropeSection : null;
    const ropeTable = rope && section ? this.ops.upload('rope.request', ropePositionTable(rope, ropeInvFreq(this.config.rope[0], this.config.headDim), section, this.config.headDim, prompt.length + extraRows)) : undefined;
    try {
      return { ...encodeImages(this.ops, rt, pre), positions, runs, ropeTable };
    } catch (e) {
      if (ropeTable) this.ops.free(ropeTable);
      throw e;
    }
  }

  /** Forgets the conversation: frees every KV page. */
  resetChat(): void {
    this.cache.reset();
    this.cachedTokens = [];
  }

  /**
   * Feeds the prompt (POP prefill in chunks; the last token at full depth) and returns the
   * first token; then decodes at full depth until a stop token or maxTokens.
   */
  async generate(prompt: readonly number[], o: GenerateOptions): Promise<GenerateResult> {
    const c = this.config;
    if (prompt.length === 0) throw new InvalidArgumentError('prompt', 'must hold at least one token');
    for (const id of prompt) if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new InvalidArgumentError('prompt', `token id ${id} is outside the vocabulary 0..${c.vocabSize - 1}`);
    if (!(o.maxTokens >= 1)) throw new InvalidArgumentError('max_tokens', `must be at least 1 (got ${o.maxTokens})`);
    const { keep, reason: keepReason } = this.resolveKeepWithReason(o.pop);
    const total = prompt.length + o.maxTokens - 1;
    if (total > this.contextWindow) throw new ContextLengthExceededError(total, this.contextWindow);
    const n = o.n ?? 1;
    if (!(Number.isInteger(n) && n >= 1 && n <= MAX_CHOICES)) throw new InvalidArgumentError('n', `must be an integer in 1..${MAX_CHOICES} (got ${o.n})`);
    const constraints = o.constraints ?? (o.constraint ? [o.constraint] : []);
    if (constraints.length && constraints.length !== n) throw new InvalidArgumentError('response_format', `needs one grammar matcher per choice (${n}), got ${constraints.length}`);
    const baseSeed = (o.seed ?? 0) >>> 0;
    // Choice i draws from its own stream (choice 0 = the n = 1 stream): a fixed seed gives the same n choices.
    const choiceParams = (i: number): SampleParams => ({ temperature: o.temperature ?? 0, topK: o.topK ?? 0, topP: o.topP ?? 1, seed: (baseSeed + Math.imul(i, 0x9e3779b9)) >>> 0, minP: o.minP ?? 0 });
    const samplers = Array.from({ length: n }, () => new StepSampler(prompt, o, c.vocabSize));
    const choices: GenerateChoice[] = Array.from({ length: n }, () => ({ ids: [], finishReason: 'length' }));
    // One sampling step: the grammar's mask (host), adjustments + mask + draw (+ logprobs) on the GPU.
    // Each request reads its sampled tokens back through its own buffer (made at the first draw).
    let readback: SampleReadback | undefined;
    const sampleStep = async (choice: number, step: number): Promise<SampledToken> => {
      const g = constraints[choice];
      const mask = g ? await g.nextMask() : null;
      readback ??= this.ops.sampleReadback?.();
      const t = await this.sampleFrom(choiceParams(choice), step, { ...samplers[choice].opts, mask, readback }, o.logitProcessor);
      if (g && !g.isTerminated() && !g.accept(t.id)) throw new InvalidArgumentError('response_format', `the grammar rejected token ${t.id}`);
      samplers[choice].record(t.id);
      if (o.topLogprobs !== undefined) (choices[choice].logprobs ??= []).push(t);
      return t;
    };
    const stops = new Set(o.ignoreEos ? [] : (o.stopTokenIds ?? c.eosTokenIds));
    const img = await this.imageFeatures(prompt, o.images, keep, o.maxTokens);
    const ropeTable = img?.ropeTable;

    // Multi-turn: keep the K/V of the longest shared prefix (leave >= 1 token to feed).
    let reused = 0;
    if (o.reusePrefix && !img) {
      while (reused < this.cachedTokens.length && reused < prompt.length - 1 && this.cachedTokens[reused] === prompt[reused]) reused++;
    }
    if (reused === 0) this.cache.reset();
    else this.cache.truncate(0, reused);
    for (let i = 1; i < MAX_CHOICES; i++) this.cache.free(i);
    this.cachedTokens = prompt.slice(0, reused) as number[];

    // Any failure (abort, device loss) forgets the sequence: its pages are freed, and the next
    // request starts from a clean cache.
    const checkAbort = (stage: string) => {
      if (o.signal?.aborted) throw new AbortError(stage);
    };
    const t0 = now();
    let sharedPages = 0;
    try {
      await this.prefill(prompt, reused, keep, img, { checkAbort: () => checkAbort('prefill') });
      // n > 1: the later choices start from the prompt's last logits.
      if (n > 1) {
        this.choiceLogits ??= this.ops.alloc('prompt-logits', c.vocabSize);
        this.ops.copyRows(this.choiceLogits, 0, this.state.logits, 0, 1, c.vocabSize);
      }
    } catch (e) {
      this.resetChat();
      if (ropeTable) this.ops.free(ropeTable);
      if (e instanceof AbortError && o.onAbort === 'finish') {
        // Aborted in prefill: no token, nothing kept.
        const t = now();
        const stats: GenerateStats = {
          promptTokens: prompt.length, prefilledTokens: prompt.length - reused, reusedTokens: reused, completionTokens: 0, keep, keepReason, layers: c.numLayers,
          prefillMs: t - t0, decodeMs: 0, ttftMs: t - t0, prefillTokensPerS: 0, decodeTokensPerS: 0, finishReason: 'abort', choices: n, prefills: 1, sharedKvBytes: 0,
        };
        this.lastStats = stats;
        return { ids: [], stats };
      }
      throw e;
    } finally {
      if (img) freeImageFeatures(this.ops, img);
    }
    // Image rows are not their token ids: a later request must not reuse them as a prefix.
    this.cachedTokens.push(...(img ? prompt.slice(reused).map((t, i) => (img.positions.includes(reused + i) ? -1 : t)) : prompt.slice(reused)));
    let t1 = 0;
    let aborted = false;
    try {
      for (let ch = 0; ch < n; ch++) {
        const out = choices[ch];
        if (aborted) {
          out.finishReason = 'abort';
          continue;
        }
        if (ch > 0) {
          // Choices run one after another. Choice ch shares the prompt's pages with sequence 0
          // (copied on write) and gives its own back when it ends, so at most two sequences
          // hold pages. When the pool cannot hold this choice's longest run beside choice 0's
          // answer, that answer's K/V goes (a next turn prefills it again): a request within
          // the context window always fits, as it does in WebLLM, which runs the choices apart.
          const ownPages = Math.ceil((prompt.length + o.maxTokens - 1) / this.cache.pageSize) - Math.floor(prompt.length / this.cache.pageSize);
          if (this.cache.allocator.freePages < ownPages) {
            this.cache.truncate(0, prompt.length);
            this.cachedTokens.length = prompt.length;
          }
          sharedPages += this.cache.fork(0, ch, prompt.length);
          this.ops.copyRows(this.state.logits, 0, this.choiceLogits!, 0, 1, c.vocabSize);
        }
        let pos = prompt.length;
        let token = await sampleStep(ch, 0);
        if (ch === 0) t1 = now();
        for (let step = 1; ; step++) {
          out.ids.push(token.id);
          if (o.onToken?.(token.id, token, ch) === true || stops.has(token.id)) { out.finishReason = 'stop'; break; }
          if (out.ids.length >= o.maxTokens) break;
          // Let interrupts and other messages through between tokens.
          await yieldToEventLoop();
          if (o.signal?.aborted && o.onAbort === 'finish') {
            // The K/V of every token fed so far stays: the next round may reuse it.
            out.finishReason = 'abort';
            aborted = true;
            break;
          }
          checkAbort('decode');
          forward(this.ops, c, this.weights, this.state, this.cache, { seqId: ch, tokens: [token.id], startPos: pos, keep: c.numLayers, lastRowFullDepth: true, ropeTable });
          if (ch === 0) this.cachedTokens.push(token.id);
          pos++;
          token = await sampleStep(ch, step);
        }
        if (ch > 0) this.cache.free(ch);
      }
    } catch (e) {
      this.resetChat();
      throw e;
    } finally {
      for (const g of o.constraints ?? []) g.dispose();
      if (ropeTable) this.ops.free(ropeTable);
      readback?.destroy();
    }
    // Multi-turn goes on from choice 0 (sequence 0); the other choices' pages go back.
    for (let i = 1; i < n; i++) this.cache.free(i);
    // The M-RoPE positions of this request's rows are not 1-D: a later request must not reuse them.
    if (ropeTable) this.cachedTokens = [];
    const t2 = now();
    const prefilled = prompt.length - reused;
    const completion = choices.reduce((a, ch) => a + ch.ids.length, 0);
    const stats: GenerateStats = {
      promptTokens: prompt.length, prefilledTokens: prefilled, reusedTokens: reused, completionTokens: completion,
      keep, keepReason, layers: c.numLayers,
      prefillMs: t1 - t0, decodeMs: t2 - t1, ttftMs: t1 - t0,
      prefillTokensPerS: prefilled / ((t1 - t0) / 1000),
      decodeTokensPerS: completion > n ? (completion - n) / ((t2 - t1) / 1000) : 0,
      finishReason: choices[0].finishReason,
      choices: n,
      prefills: 1,
      sharedKvBytes: sharedPages * this.cache.pageSize * this.cache.tokenBytes(),
    };
    this.lastStats = stats;
    const first = choices[0];
    return { ids: first.ids, ...(first.logprobs ? { logprobs: first.logprobs } : {}), ...(n > 1 ? { choices } : {}), stats };
  }

  /** One draw from the run state's logits, through the logit processor when there is one (its logits are sampled on the device). */
  private async sampleFrom(params: SampleParams, step: number, so: SampleOptions, lp: LogitHook | undefined): Promise<SampledToken> {
    const vocab = this.config.vocabSize;
    if (!lp) return this.ops.sampleToken(this.state.logits, vocab, params, step, so);
    const processed = lp.processLogits(await this.ops.read(this.state.logits, vocab));
    if (!(processed instanceof Float32Array) || processed.length < vocab) throw new InvalidArgumentError('logitProcessor', `processLogits must return a Float32Array of ${vocab} logits`);
    const t = this.ops.upload('processed-logits', processed.length === vocab ? processed : processed.subarray(0, vocab));
    try {
      const token = await this.ops.sampleToken(t, vocab, params, step, so);
      lp.processSampledToken(token.id);
      return token;
    } finally {
      this.ops.free(t);
    }
  }

  /**
   * WebLLM's forwardTokensAndSample: feeds `ids` after what sequence 0 holds (a prefill runs
   * with POP's keep, the last row at full depth) and samples the next token. The caller feeds
   * that token back next time; resetChat starts over.
   */
  async forwardTokensAndSample(ids: readonly number[], o: { temperature?: number; topP?: number; topK?: number; seed?: number; pop?: PopSetting; logitProcessor?: LogitHook } = {}): Promise<number> {
    const c = this.config;
    if (ids.length === 0) throw new InvalidArgumentError('inputIds', 'must hold at least one token');
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new InvalidArgumentError('inputIds', `token id ${id} is outside the vocabulary 0..${c.vocabSize - 1}`);
    const start = this.cachedTokens.length;
    if (start + ids.length > this.contextWindow) throw new ContextLengthExceededError(start + ids.length, this.contextWindow);
    const all = [...this.cachedTokens, ...ids];
    const keep = ids.length > 1 ? this.resolveKeep(o.pop) : c.numLayers;
    const readback = this.ops.sampleReadback?.();
    try {
      await this.prefill(all, start, keep, null);
      this.cachedTokens.push(...ids);
      const params: SampleParams = { temperature: o.temperature ?? 0, topK: o.topK ?? 0, topP: o.topP ?? 1, seed: (o.seed ?? 0) >>> 0, minP: 0 };
      return (await this.sampleFrom(params, this.cachedTokens.length, { readback }, o.logitProcessor)).id;
    } catch (e) {
      this.resetChat();
      throw e;
    } finally {
      readback?.destroy();
    }
  }

  /**
   * Feeds prompt[start..] in chunks of the run state's rows: POP's keep for every row but the
   * prompt's last, which runs at full depth; image features spliced over their token rows.
   * `checkAbort` (generation) runs between chunks, after other tasks had a turn.
   */
  private async prefill(prompt: readonly number[], start: number, keep: number, img: ImageRows<T> | null, o: { gate?: ForwardStep['gate']; checkAbort?: () => void } = {}): Promise<void> {
    const c = this.config;
    for (let pos = start; pos < prompt.length; ) {
      if (o.checkAbort) {
        await yieldToEventLoop();
        o.checkAbort();
      }
      let end = Math.min(prompt.length, pos + this.state.maxRows);
      // Never split a bidirectional image run: its rows attend keys up to its end, which must
      // be in the cache (written by this same step) when they attend.
      const cut = img?.runs.find(([s, e]) => s < end && end < e);
      if (cut) end = cut[0];
      const embedOverride = img ? overrideRows(img, img.positions, pos, end) : undefined;
      const keyEnd = img?.runs.length ? keyEndRows(img.runs, pos, end) : undefined;
      forward(this.ops, c, this.weights, this.state, this.cache, { seqId: 0, tokens: prompt.slice(pos, end), startPos: pos, keep, lastRowFullDepth: end === prompt.length, gate: o.gate, embedOverride, keyEnd, ropeTable: img?.ropeTable });
      pos = end;
    }
  }

  /**
   * Teacher-forced logits: prefill `prompt` with POP, then feed `continuation` one token at a
   * time at full depth. Returns the logits after the prompt and after each fed token
   * (tests, calibration). Leaves the chat reset.
   */
  async teacherForced(prompt: readonly number[], continuation: readonly number[] = [], pop?: PopSetting, gate?: ForwardStep['gate'], images?: readonly ImageInput[]): Promise<Float32Array[]> {
    const c = this.config;
    const keep = this.resolveKeep(pop);
    if (prompt.length + continuation.length > this.contextWindow) throw new ContextLengthExceededError(prompt.length + continuation.length, this.contextWindow);
    this.resetChat();
    const out: Float32Array[] = [];
    const img = await this.imageFeatures(prompt, images, keep, continuation.length);
    const ropeTable = img?.ropeTable;
    try {
      try {
        await this.prefill(prompt, 0, keep, img, { gate });
      } finally {
        if (img) freeImageFeatures(this.ops, img);
      }
      out.push(await this.ops.read(this.state.logits, c.vocabSize));
      for (let i = 0; i < continuation.length; i++) {
        forward(this.ops, c, this.weights, this.state, this.cache, { seqId: 0, tokens: [continuation[i]], startPos: prompt.length + i, keep: c.numLayers, lastRowFullDepth: true, gate, ropeTable });
        out.push(await this.ops.read(this.state.logits, c.vocabSize));
      }
    } finally {
      if (ropeTable) this.ops.free(ropeTable);
      this.resetChat();
    }
    return out;
  }

  /** Logits of the last prompt token after a POP prefill. */
  async promptLogits(prompt: readonly number[], pop?: PopSetting, images?: readonly ImageInput[]): Promise<Float32Array> {
    return (await this.teacherForced(prompt, [], pop, undefined, images))[0];
  }

  /** Frees every device buffer the engine holds (cache, scratch, weights). */
  unload(): void {
    this.cache.destroy();
    freeRunState(this.ops, this.state);
    if (this.choiceLogits) this.ops.free(this.choiceLogits);
    this.choiceLogits = null;
    for (const t of weightTensors(this.weights)) this.ops.free(t);
    if (this.vision) freeVisionRuntime(this.vision);
    this.vision = null;
  }
}
