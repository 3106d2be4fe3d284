// One loaded model behind the API, in whichever host owns the GPU (the page or a worker):
// fit check and cached download at load, the chat template, images, stop strings, the
// message so far (getMessage), multi-round KV reuse. It runs one request at a time when
// asked: MLCEngine (engine.ts) queues requests and builds the OpenAI-shaped objects.
// Generation itself is engine/engine.ts.
import { EngineNotLoadedError, ImageDecodeError, InvalidArgumentError, NoWebGPUError, UnsupportedFeatureError, type PopError } from '../errors.ts';
import type { ImageInput } from '../vision/image_input.ts';
import { fetchImage } from '../vision/image_fetch.ts';
import { renderChatTemplate } from '../model/chat_template.ts';
import { expandImages, imagePlaceholder, preprocessImages } from '../vision/runtime.ts';
import type { PreprocessedImage } from '../vision/preprocess.ts';
import { assertFits, downloadSize, estimateFit, type FitLimits, type FitReport } from '../model/fit.ts';
import { cacheAvailable, cachedModelInfo, cachedSource } from '../model/model_cache.ts';
import { readJsonObject, resolveModelUrl, urlSource } from '../model/source.ts';
import { embeddedModelSource, isEmbeddedModelUrl } from '../model/embedded.ts';
import { createGpuEngine, resolveAutoDtype } from '../engine/create.ts';
import type { Engine, GenerateStats } from '../engine/engine.ts';
import type { PopSetting } from '../engine/pop.ts';
import { TextTokenizer } from '../model/tokenizer.ts';
import type { ModelSource } from '../model/source.ts';
import type { GpuOps } from '../ops/gpu_ops.ts';
import { runtimeStats, type RuntimeStats } from '../engine/stats.ts';
import { log } from './log.ts';
import { GrammarCompiler, type GrammarSpec, type TokenConstraint } from '../engine/grammar.ts';
import { ChoiceOutput, TokenBytes, type ChoiceDelta, type ChoiceResult } from './choice_output.ts';
import { promptOpensThinking, thinkingMarkers } from './reasoning.ts';
import { checkTools, templateMessage, toolGrammar, toolStyle, type Tool, type ToolCallStyle, type ToolChoice } from './tools.ts';
import type { ChatCompletionMessageParam, ChatOptions, InitProgressReport, LogitProcessor, ModelInfo, ModelRecord, PopLoadOptions } from './protocol.ts';

export interface LoadOptions extends PopLoadOptions {
  chatOptions: ChatOptions;
  record?: ModelRecord;
  onProgress?: (r: InitProgressReport) => void;
  signal?: AbortSignal;
}

/** A prompt ready to run: token ids (images expanded and preprocessed). */
export interface PreparedPrompt {
  ids: number[];
  /** Tools rendered into the prompt (tool_choice not 'none'): how the model writes calls, and the forced-call grammar. */
  tools?: { style: ToolCallStyle; grammar: GrammarSpec | null };
  /** The template left a think block open: the reply starts as reasoning. */
  startsInReasoning?: boolean;
  images?: PreprocessedImage[];
  /** Chat requests reuse the K/V of the previous round's shared prefix. */
  reusePrefix: boolean;
}

export interface RunParams {
  maxTokens?: number | null;
  temperature?: number | null;
  topP?: number | null;
  topK?: number;
  seed: number;
  pop?: PopSetting;
  ignoreEos?: boolean;
  stop?: string | string[] | null;
  signal: AbortSignal;
  logitProcessor?: LogitProcessor;
  frequencyPenalty?: number | null;
  presencePenalty?: number | null;
  repetitionPenalty?: number | null;
  logitBias?: Record<string, number> | null;
  minP?: number | null;
  /** logprobs: true: this many top alternatives (0..20). */
  topLogprobs?: number;
  n?: number | null;
  /** A grammar for the reply (response_format); tool calls bring their own through the prompt. */
  grammar?: GrammarSpec | null;
  /** Split <think> reasoning into reasoning_content (chat requests). */
  reasoning?: boolean;
}

/** One choice's reply. */
export interface RunChoice extends ChoiceResult {
  finishReason: GenerateStats['finishReason'] | 'tool_calls';
}

export interface RunResult {
  text: string;
  /** Every choice (choices[0].content is `text` without reasoning and tool calls). */
  choices: RunChoice[];
  stats: GenerateStats;
  /** `pop: 'auto'` found no calibration and ran 'exact'. */
  popFallback: boolean;
}

type FitOptions = { contextWindow?: number; hubBase?: string; useCache?: boolean; weightDtype?: 'auto' | 'f32' | 'f16'; kvDtype?: 'auto' | 'f32' | 'f16'; quantization?: 'none' | 'q4' | 'q4-asym'; quantizeLmHead?: boolean; embeddingDtype?: 'auto' | 'q4' | 'f16' | 'f32'; lmHeadDtype?: 'auto' | 'q4' | 'f16' | 'f32'; memoryBytes?: number };

export class ModelSession {
  /** The reply of the request running now, or of the last one (WebLLM's getMessage). */
  message = '';
  /** Set when the model has no chat template (chat falls back to raw completion). */
  readonly templateNote: string | null;

  /** What a UI needs to know about the loaded model (fixed at load: a device recovery loads the same model). */
  readonly info: ModelInfo;
  /** A device recovery began and has not finished (it failed or was aborted): the next call tries again. */
  private recovering = false;

  private constructor(
    private engine: Engine<GPUBuffer> | null,
    readonly modelId: string,
    readonly chatOptions: ChatOptions,
    /** How this model was loaded, so that a lost device's model loads again on a new one (no signal, no progress). */
    private readonly recipe: { model: string | ModelSource; options: LoadOptions },
  ) {
    const e = engine!;
    this.templateNote = e.files.chatTemplate ? null : 'This model has no chat template: chat messages are sent as raw completion text.';
    this.info = { layers: e.config.numLayers, contextWindow: e.contextWindow, quantization: e.opts.quantization ?? 'none' };
  }

  /**
   * Loads a model. A URL or Hub id is first checked to fit (weights, KV cache at the context,
   * largest binding, free storage: refused before any shard is fetched), then served from the
   * browser cache where possible and downloaded, file by file, where not; then the kernels a
   * request uses are compiled (a warm-up), so the first request's TTFT is not compile time.
   */
  static async load(modelId: string, model: string | ModelSource, o: LoadOptions): Promise<ModelSession> {
    // pop-llm:stories260K: the model inside the package (src/model/embedded.ts).
    if (typeof model === 'string' && isEmbeddedModelUrl(model)) model = await embeddedModelSource();
    const engine = await ModelSession.loadEngine(modelId, model, o);
    return new ModelSession(engine, modelId, o.chatOptions, { model, options: { ...o, signal: undefined, onProgress: undefined } });
  }

  /** The engine for a model (fit check, cached download, weights, warm-up); nothing of it stays behind when it fails. */
  private static async loadEngine(modelId: string, model: string | ModelSource, o: LoadOptions): Promise<Engine<GPUBuffer>> {
    const t0 = performance.now();
    const report = (progress: number, text: string) => o.onProgress?.({ progress, timeElapsed: (performance.now() - t0) / 1000, text });
    report(0, 'Starting WebGPU');
    const contextWindow = o.chatOptions.context_window_size ?? o.contextWindow;
    if (o.record?.required_features?.length) {
      const adapter = await navigator.gpu?.requestAdapter();
      if (!adapter) throw new NoWebGPUError('no suitable GPU adapter');
      for (const f of o.record.required_features) if (!adapter.features.has(f as GPUFeatureName)) throw new UnsupportedFeatureError(f, `model '${modelId}' requires the WebGPU feature '${f}', which this adapter lacks`);
    }
    let source: ModelSource | string = model;
    let cached: ReturnType<typeof cachedSource> | null = null;
    let engine: Engine<GPUBuffer> | null = null;
    try {
      if (typeof model === 'string') {
        const fit = await checkModelFit(model, { ...o, contextWindow });
        assertFits(fit);
        if (o.useCache !== false && cacheAvailable()) {
          cached = cachedSource(model, {
            hubBase: o.hubBase,
            totalBytes: fit.downloadBytes,
            onProgress: (p) => report(p.totalBytes ? Math.min(0.99, p.loadedBytes / p.totalBytes) : 0.5,
              `${p.fromCache ? 'From cache' : 'Downloaded'} ${p.file}: ${(p.loadedBytes / 1e6).toFixed(1)}${p.totalBytes ? ` / ${(p.totalBytes / 1e6).toFixed(1)}` : ''} MB` + (p.etaSeconds !== null && !p.fromCache ? `, ${Math.ceil(p.etaSeconds)} s left` : '')),
          });
          source = cached;
        }
      }
      engine = await createGpuEngine(source, {
        pop: o.pop,
        contextWindow,
        hubBase: o.hubBase,
        weightDtype: o.weightDtype,
        kvDtype: o.kvDtype,
        quantization: o.quantization,
        quantizeLmHead: o.quantizeLmHead,
        embeddingDtype: o.embeddingDtype,
        lmHeadDtype: o.lmHeadDtype,
        checkWeights: o.checkWeights,
        maxImagePixels: o.maxImagePixels,
        signal: o.signal,
        onProgress: cached ? undefined : (p) => report(p.loadedFiles / p.totalFiles, `Loaded ${p.file} (${p.loadedFiles}/${p.totalFiles} files, ${(p.loadedBytes / 1e6).toFixed(1)} MB)`),
      });
      await cached?.markComplete();
      // Compile the pipelines a request uses now (prefill GEMM, attention, POP's deep K/V,
      // GEMV, sampler), so the first message's TTFT is not a shader-compilation time.
      report(0.99, 'Compiling GPU kernels');
      const warm = [engine.config.bosTokenId ?? 0, engine.config.bosTokenId ?? 0];
      await engine.generate(warm, { maxTokens: 2, ignoreEos: true, pop: engine.config.numLayers > 1 ? engine.config.numLayers - 1 : 'off', signal: o.signal });
      engine.resetChat();
    } catch (e) {
      // Nothing half-loaded stays behind (a failed warm-up would otherwise leave an engine
      // that looks loaded and holds its buffers; the device is the engine's own).
      engine?.unload();
      (engine?.ops as GpuOps | undefined)?.gpu?.destroy();
      // A corrupt file must not stay cached: the next load fetches it again.
      const file = (e as PopError)?.fields?.file;
      if (cached && typeof file === 'string' && ((e as PopError).code === 'TRUNCATED_FILE' || (e as PopError).code === 'MALFORMED_FILE')) await cached.forget(file);
      throw e;
    }
    const gpu = (engine.ops as GpuOps).gpu;
    report(1, `Finish loading on WebGPU - ${gpu?.identity?.description || gpu?.identity?.vendor || 'adapter'}`);
    return engine;
  }

  /** The device is lost (its requests failed with DEVICE_LOST), or an earlier recovery did not finish. */
  get needsRecovery(): boolean {
    return this.recovering || !!(this.engine?.ops as GpuOps | undefined)?.gpu?.lostError;
  }

  /**
   * After a device loss: frees what the lost engine held and loads the same model on a new
   * device. A URL model is read back from the Cache API (the first load stored it), so nothing
   * is downloaded again; a local folder or an in-memory source is read again. Chat state (the
   * previous round's K/V) is gone with the device: the next chat request prefills its whole
   * prompt. An abort (`signal`) or a failure leaves the session to try again on the next call.
   */
  async recover(o: { signal?: AbortSignal; onProgress?: (r: InitProgressReport) => void } = {}): Promise<void> {
    this.recovering = true;
    this.dropEngine();
    log.warn(`The GPU device of ${this.modelId} was lost: loading the model again on a new device`);
    this.engine = await ModelSession.loadEngine(this.modelId, this.recipe.model, { ...this.recipe.options, signal: o.signal, onProgress: o.onProgress });
    this.recovering = false;
    this.message = '';
  }

  /**
   * Fault injection (tests and debugging only): destroys this model's GPU device, as a driver
   * reset or a lost adapter would. What runs on it fails with DEVICE_LOST; the next call
   * recovers (recover()).
   */
  destroyDeviceForTesting(): void {
    (this.e.ops as GpuOps).gpu?.device.destroy();
  }

  private get e(): Engine<GPUBuffer> {
    if (!this.engine) throw new EngineNotLoadedError();
    return this.engine;
  }

  private get tokenizer(): TextTokenizer {
    return TextTokenizer.require(this.e.tokenizer);
  }

  get isVlm(): boolean {
    return this.e.vision !== null;
  }

  /**
   * Renders messages with the model's chat template (raw text when it has none). `tools`
   * (tool_choice not 'none') and `enable_thinking` go to the template as transformers'
   * apply_chat_template passes them; earlier calls and tool results as the template takes them.
   */
  renderChat(messages: ChatCompletionMessageParam[], o: { tools?: Tool[]; enableThinking?: boolean | null } = {}): { text: string; addSpecial: boolean } {
    const placeholder = this.e.vision ? imagePlaceholder(this.e.vision) : null;
    const tpl = this.e.files.chatTemplate;
    // Image parts become the template's {type: 'image'} items (as HF processors pass them),
    // or an inline placeholder (<image>, Gemma 3's <start_of_image>) when there is no template.
    const names = new Map<string, string>();
    const plain = messages.map((m) => templateMessage({ ...(m as unknown as Record<string, unknown>), content: contentOf(m, placeholder, !!tpl) }, names));
    if (!tpl) return { text: plain.map((m) => m.content).join('\n'), addSpecial: true };
    const tc = this.e.files.tokenizerConfig ?? {};
    const tokenText = (t: unknown) => (typeof t === 'string' ? t : (t as { content?: string } | null)?.content ?? '');
    const vars: Record<string, unknown> = { messages: plain, add_generation_prompt: true, bos_token: tokenText(tc.bos_token), eos_token: tokenText(tc.eos_token) };
    if (o.tools) vars.tools = o.tools;
    if (o.enableThinking !== undefined && o.enableThinking !== null) vars.enable_thinking = o.enableThinking;
    const text = renderChatTemplate(tpl, vars);
    // A template writes its own special tokens (BOS included): do not add them again.
    return { text, addSpecial: false };
  }

  async prepareChat(messages: ChatCompletionMessageParam[], o: { tools?: unknown; toolChoice?: unknown; enableThinking?: boolean | null } = {}): Promise<PreparedPrompt> {
    let tools: PreparedPrompt['tools'];
    let rendered: Tool[] | undefined;
    if (o.tools !== undefined && o.tools !== null && !(Array.isArray(o.tools) && o.tools.length === 0)) {
      const checked = checkTools(o.tools, o.toolChoice);
      if (checked.choice !== 'none') {
        const style = toolStyle(this.e.files.chatTemplate, this.modelId);
        tools = { style, grammar: toolGrammar(checked.tools, checked.choice as ToolChoice, style) };
        rendered = checked.tools;
      }
    }
    const { text, addSpecial } = this.renderChat(messages, { tools: rendered, enableThinking: o.enableThinking });
    const startsInReasoning = promptOpensThinking(text, thinkingMarkers(this.e.files.chatTemplate));
    const images = imageSources(messages);
    if (!images.length) return { ids: this.tokenizer.encode(text, addSpecial), reusePrefix: true, tools, startsInReasoning };
    // Images: fetch and decode (typed errors), preprocess once, expand each placeholder as the model's processor does.
    const rt = this.e.vision!;
    const inputs = await Promise.all(images.map((u, i) => imageInput(u, i)));
    const pre = await preprocessImages(inputs, rt, this.e.opts.maxImagePixels);
    const marker = imagePlaceholder(rt);
    const placeholders = text.split(marker).length - 1;
    if (placeholders !== pre.length) throw new InvalidArgumentError('messages', `the chat template placed ${placeholders} ${marker} markers for ${pre.length} images`);
    return { ids: this.tokenizer.encode(expandImages(text, pre, rt), addSpecial), images: pre, reusePrefix: false, tools, startsInReasoning };
  }

  /** The grammar compiler for this model's vocabulary (made on first use: structured output, forced tool calls). */
  private grammarCompiler: Promise<GrammarCompiler> | null = null;
  private grammar(): Promise<GrammarCompiler> {
    const e = this.e;
    this.grammarCompiler ??= GrammarCompiler.create(e.files.tokenizerJson ?? {}, e.config.vocabSize, e.config.eosTokenIds);
    return this.grammarCompiler;
  }
  private tokenBytes: TokenBytes | null = null;

  prepareCompletion(prompt: string): PreparedPrompt {
    return { ids: this.tokenizer.encode(prompt, true), reusePrefix: false };
  }

  /**
   * Runs one prepared prompt; `onDelta` gets each piece of each choice (stop strings cut,
   * reasoning apart, tool-call text held back until the choice ends, logprobs when asked).
   * A grammar (response_format, or a forced tool call) compiles before any token: a bad one
   * is INVALID_RESPONSE_FORMAT.
   */
  async run(p: PreparedPrompt, r: RunParams, onDelta: (choice: number, d: ChoiceDelta) => void): Promise<RunResult> {
    const e = this.e;
    const stops = r.stop === undefined || r.stop === null ? [] : Array.isArray(r.stop) ? r.stop : [r.stop];
    const pop = r.pop ?? e.opts.pop;
    const popFallback = pop === 'auto' && !(e.calibration && e.calibration.layers === e.config.numLayers);
    if (popFallback) log.warn(`pop: 'auto' has no calibration (pop.json) for ${this.modelId}: running 'exact' (lossless, keep = L-1). Calibrate with \`pop-llm calibrate\`.`);
    this.message = '';
    const n = r.n ?? 1;
    const spec = p.tools?.grammar ?? r.grammar ?? null;
    let constraints: TokenConstraint[] | undefined;
    if (spec) {
      const g = await this.grammar();
      constraints = [];
      try {
        for (let i = 0; i < n; i++) constraints.push(await g.matcher(spec));
      } catch (err) {
        for (const c of constraints) c.dispose();
        throw err;
      }
    }
    if (r.topLogprobs !== undefined && e.files.tokenizerJson) this.tokenBytes ??= new TokenBytes(e.files.tokenizerJson);
    const outs = Array.from({ length: n }, () => new ChoiceOutput(this.tokenizer, this.tokenBytes, {
      stops, eosIds: e.config.eosTokenIds, reasoning: !!r.reasoning, markers: thinkingMarkers(e.files.chatTemplate), startsInReasoning: p.startsInReasoning, toolStyle: p.tools?.style ?? null, logprobs: r.topLogprobs !== undefined,
    }));
    const result = await e.generate(p.ids, {
      maxTokens: r.maxTokens ?? Math.max(1, Math.min(256, e.contextWindow - p.ids.length)),
      temperature: r.temperature ?? this.chatOptions.temperature ?? 0,
      topP: r.topP ?? this.chatOptions.top_p,
      topK: r.topK,
      seed: r.seed,
      pop: r.pop,
      ignoreEos: r.ignoreEos,
      reusePrefix: p.reusePrefix,
      images: p.images,
      signal: r.signal,
      onAbort: 'finish',
      logitProcessor: r.logitProcessor,
      frequencyPenalty: r.frequencyPenalty ?? this.chatOptions.frequency_penalty ?? undefined,
      presencePenalty: r.presencePenalty ?? this.chatOptions.presence_penalty ?? undefined,
      repetitionPenalty: r.repetitionPenalty ?? this.chatOptions.repetition_penalty ?? undefined,
      logitBias: r.logitBias ?? undefined,
      minP: r.minP ?? undefined,
      topLogprobs: r.topLogprobs,
      n,
      constraints,
      onToken: (id, token, choice) => {
        const out = outs[choice];
        const d = out.push(id, token);
        if (choice === 0) this.message = out.text;
        if (d.content || d.reasoning || d.logprobs) onDelta(choice, d);
        return out.stopped;
      },
    });
    const gen = result.choices ?? [{ ids: result.ids, finishReason: result.stats.finishReason }];
    const choices: RunChoice[] = outs.map((o, i) => {
      const f = o.finish();
      if (f.tail.content || f.tail.reasoning) onDelta(i, f.tail);
      return { content: f.content, reasoning: f.reasoning, toolCalls: f.toolCalls, logprobs: f.logprobs, finishReason: f.toolCalls.length ? 'tool_calls' : gen[i].finishReason };
    });
    return { text: this.message, choices, stats: result.stats, popFallback };
  }

  forwardTokensAndSample(ids: number[], o: { seed: number; logitProcessor?: LogitProcessor }): Promise<number> {
    return this.e.forwardTokensAndSample(ids, { temperature: this.chatOptions.temperature ?? 0, topP: this.chatOptions.top_p, seed: o.seed, logitProcessor: o.logitProcessor });
  }

  resetChat(): void {
    this.engine?.resetChat();
    this.message = '';
  }

  runtimeStatsText(): string {
    const s = this.engine?.lastStats;
    if (!s) return 'No request has run yet.';
    return `prefill: ${s.prefillTokensPerS.toFixed(1)} tok/s, decode: ${s.decodeTokensPerS.toFixed(2)} tok/s, TTFT: ${s.ttftMs.toFixed(0)} ms, POP keep ${s.keep}/${s.layers}` + (s.reusedTokens ? `, reused ${s.reusedTokens} prompt tokens` : '');
  }

  /** GPU memory and JS heap (src/engine/stats.ts). */
  stats(): RuntimeStats {
    return runtimeStats(this.engine);
  }

  unload(): void {
    this.recovering = false;
    this.dropEngine();
  }

  private dropEngine(): void {
    this.engine?.unload();
    // The device is this model's own (createGpuEngine): destroying it frees what the ops hold too.
    (this.engine?.ops as GpuOps | undefined)?.gpu?.destroy();
    this.engine = null;
  }
}

/**
 * Whether a model fits this device and browser, from config.json and file sizes only
 * (nothing else is downloaded). Apps use it to grey out models.
 */
export async function checkModelFit(model: string, o: FitOptions = {}): Promise<FitReport> {
  // The small JSON files go through the cache too: the load that follows reads them there.
  const net = o.useCache !== false && cacheAvailable() ? cachedSource(model, { hubBase: o.hubBase }) : urlSource(model, { hubBase: o.hubBase });
  const json = (name: string, optional: boolean) => readJsonObject(net, name, optional);
  const raw = (await json('config.json', false))!;
  const index = await json('model.safetensors.index.json', true);
  const bytes = await downloadSize(resolveModelUrl(model, o.hubBase), index);
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) throw new NoWebGPUError('no suitable GPU adapter');
  let storageAvailable: number | undefined;
  const est = await navigator.storage?.estimate?.().catch(() => undefined);
  if (est?.quota !== undefined) {
    const already = Object.values((await cachedModelInfo(model).catch(() => null))?.files ?? {}).reduce((a, b) => a + b, 0);
    storageAvailable = Math.max(0, est.quota - (est.usage ?? 0)) + already;
  }
  const limits: FitLimits = { maxBufferSize: adapter.limits.maxBufferSize, maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, storageAvailable, memoryBytes: o.memoryBytes };
  // Weight bytes as createGpuEngine will store them ('auto': f16 where the adapter has shader-f16).
  const shaderF16 = adapter.features.has('shader-f16');
  const weightDtype = resolveAutoDtype(o.weightDtype, shaderF16), kvDtype = resolveAutoDtype(o.kvDtype, shaderF16);
  return estimateFit(raw, bytes, o.contextWindow, limits, { weightDtype, kvDtype, quantization: o.quantization, quantizeLmHead: o.quantizeLmHead, embeddingDtype: o.embeddingDtype, lmHeadDtype: o.lmHeadDtype });
}

type Part = { type: string; text?: string; image_url?: { url: unknown } | string };

/**
 * A message's content for the template: text, or (VLM with a template) text and image items;
 * without a template, images become the model's placeholder inline. `placeholder` null: text-only model.
 */
export function contentOf(m: ChatCompletionMessageParam, placeholder: string | null, templated: boolean): string | { type: string; text?: string }[] {
  const c = (m as { content?: unknown }).content;
  if (typeof c === 'string') return c;
  if (!Array.isArray(c)) return '';
  const parts = c as Part[];
  if (parts.some((p) => p.type === 'image_url') && placeholder === null) throw new InvalidArgumentError('messages', 'this model does not accept images (it is text-only); send text only or load a vision-language model');
  if (placeholder === null) return parts.filter((p) => p.type === 'text').map((p) => p.text ?? '').join('');
  const items = parts.map((p) => (p.type === 'image_url' ? { type: 'image' } : { type: 'text', text: p.text ?? '' }));
  return templated ? items : items.map((p) => (p.type === 'image' ? placeholder : p.text)).join('');
}

/** The images of all messages, in order: URL strings or image objects. */
function imageSources(messages: ChatCompletionMessageParam[]): unknown[] {
  const out: unknown[] = [];
  for (const m of messages) {
    const c = (m as { content?: unknown }).content;
    if (Array.isArray(c)) for (const p of c as Part[]) if (p.type === 'image_url') out.push(typeof p.image_url === 'string' ? p.image_url : p.image_url?.url);
  }
  return out;
}

/**
 * An image part's input: a URL (http(s), data: or blob:) is fetched (ImageFetchError with its
 * HTTP status when that fails); a Blob or ImageBitmap is used as is; an <img> or canvas becomes
 * a bitmap. Decoding errors come later, typed, from toRgba.
 */
async function imageInput(u: unknown, index: number): Promise<ImageInput> {
  if (typeof u === 'string') return fetchImage(u, index);
  if (typeof Blob !== 'undefined' && u instanceof Blob) return u;
  if (typeof ImageBitmap !== 'undefined' && u instanceof ImageBitmap) return u;
  try {
    return await createImageBitmap(u as ImageBitmapSource);
  } catch (e) {
    throw new ImageDecodeError(index, `not an image URL, File, Blob, ImageBitmap, <img> or canvas (${(e as Error)?.message ?? e})`);
  }
}
