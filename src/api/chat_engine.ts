// The engine behind the WebLLM-style API, in whichever host owns the GPU (the worker, or
// the page for tests): chat templates, stop strings, streaming chunks, usage, interrupts,
// multi-turn KV reuse. Generation itself is engine/engine.ts.
import { AbortError, EngineNotLoadedError, InvalidArgumentError, type PopError } from '../errors.ts';
import { renderChatTemplate } from '../model/chat_template.ts';
import { fetchImage } from '../vision/image_fetch.ts';
import type { ImageInput } from '../vision/image_input.ts';
import { expandImages, imagePlaceholder, preprocessImages } from '../vision/runtime.ts';
import type { PreprocessedImage } from '../vision/preprocess.ts';
import { assertFits, type FitReport } from '../model/fit.ts';
import { cacheAvailable, cachedSource, deleteCachedModel } from '../model/model_cache.ts';
import { embeddedModelSource, isEmbeddedModelUrl } from '../model/embedded.ts';
import { createGpuEngine } from '../engine/create.ts';
import type { Engine, GenerateStats } from '../engine/engine.ts';
import { runtimeStats, type RuntimeStats } from '../engine/stats.ts';
import type { GpuOps } from '../ops/gpu_ops.ts';
import { TextStreamer, TextTokenizer } from '../model/tokenizer.ts';
import type { ModelSource } from '../model/source.ts';
import { checkModelFit, contentOf } from './model_session.ts';
import type {
  ChatCompletionMessageParam, ChatCompletionRequestBase, CompletionUsage, EngineConfig, FinishReason, InitProgressReport, SamplingRequest,
} from './protocol.ts';

export interface StreamEvent {
  delta: string;
  finishReason: FinishReason | null;
  usage?: CompletionUsage;
}

export class ChatEngine {
  private engine: Engine<GPUBuffer> | null = null;
  private modelId = '';
  private abort: AbortController | null = null;
  private loadAbort: AbortController | null = null;
  private startedAt = 0;
  /** The last successful load, so that a request after a device loss reloads it on a new device. */
  private lastLoad: { model: string | ModelSource; config: EngineConfig } | null = null;
  /** Set when the model has no chat template (chat falls back to raw completion). */
  templateNote: string | null = null;

  get loaded(): boolean {
    return this.engine !== null;
  }

  /**
   * Loads a model. A URL or Hub id is first checked to fit (weights, KV cache at the context,
   * largest binding, free storage: refused before any shard is fetched), then served from the
   * browser cache where possible and downloaded, file by file, where not.
   */
  async reload(model: string | ModelSource, config: EngineConfig & { signal?: AbortSignal } = {}): Promise<void> {
    this.unload();
    if (typeof model === 'string' && isEmbeddedModelUrl(model)) model = await embeddedModelSource();
    const t0 = performance.now();
    const report = (progress: number, text: string) => config.initProgressCallback?.({ progress, timeElapsed: (performance.now() - t0) / 1000, text } as InitProgressReport);
    report(0, 'Starting WebGPU');
    this.loadAbort = new AbortController();
    const signal = config.signal ? anySignal([config.signal, this.loadAbort.signal]) : this.loadAbort.signal;
    let source: ModelSource | string = model;
    let cached: ReturnType<typeof cachedSource> | null = null;
    try {
      if (typeof model === 'string') {
        const fit = await this.checkFit(model, config);
        assertFits(fit);
        if (config.useCache !== false && cacheAvailable()) {
          cached = cachedSource(model, {
            hubBase: config.hubBase,
            totalBytes: fit.downloadBytes,
            onProgress: (p) => report(p.totalBytes ? Math.min(0.99, p.loadedBytes / p.totalBytes) : 0.5,
              `${p.fromCache ? 'From cache' : 'Downloaded'} ${p.file}: ${(p.loadedBytes / 1e6).toFixed(1)}${p.totalBytes ? ` / ${(p.totalBytes / 1e6).toFixed(1)}` : ''} MB` + (p.etaSeconds !== null && !p.fromCache ? `, ${Math.ceil(p.etaSeconds)} s left` : '')),
          });
          source = cached;
        }
      }
      this.engine = await createGpuEngine(source, {
        pop: config.pop,
        contextWindow: config.contextWindow,
        hubBase: config.hubBase,
        weightDtype: config.weightDtype,
        quantization: config.quantization,
        quantizeLmHead: config.quantizeLmHead,
        maxImagePixels: config.maxImagePixels,
        checkWeights: config.checkWeights,
        signal,
        onProgress: cached ? undefined : (p) => report(p.loadedFiles / p.totalFiles, `Loaded ${p.file} (${p.loadedFiles}/${p.totalFiles} files, ${(p.loadedBytes / 1e6).toFixed(1)} MB)`),
      });
      await cached?.markComplete();
      // Compile the pipelines a request uses now (prefill GEMM, attention, POP's deep K/V,
      // GEMV, sampler), so the first message's TTFT is not a shader-compilation time.
      report(0.99, 'Compiling GPU kernels');
      const e = this.engine;
      const warm = [e.config.bosTokenId ?? 0, e.config.bosTokenId ?? 0];
      // The load's signal reaches the warm-up too (most of a small model's load).
      await e.generate(warm, { maxTokens: 2, ignoreEos: true, pop: e.config.numLayers > 1 ? e.config.numLayers - 1 : 'off', signal }).catch((x) => {
        throw signal.aborted ? new AbortError('load (warm-up)') : x;
      });
      e.resetChat();
    } catch (e) {
      // Nothing half-loaded stays behind (a failed warm-up would otherwise leave an engine
      // that looks loaded and holds its buffers).
      this.unload();
      // A corrupt file must not stay cached: the next load fetches it again.
      const file = (e as PopError)?.fields?.file;
      if (cached && typeof file === 'string' && ((e as PopError).code === 'TRUNCATED_FILE' || (e as PopError).code === 'MALFORMED_FILE')) await cached.forget(file);
      throw e;
    } finally {
      this.loadAbort = null;
    }
    this.modelId = typeof model === 'string' ? model : model.id;
    this.lastLoad = { model, config: { ...config, initProgressCallback: undefined, signal: undefined } as EngineConfig };
    this.templateNote = this.engine.files.chatTemplate ? null : 'This model has no chat template: chat messages are sent as raw completion text.';
    report(1, 'Ready');
  }

  private get e(): Engine<GPUBuffer> {
    if (!this.engine) throw new EngineNotLoadedError();
    return this.engine;
  }

  private get tokenizer(): TextTokenizer {
    return TextTokenizer.require(this.e.tokenizer);
  }

  /** Renders messages with the model's chat template (raw text when it has none). */
  renderChat(messages: ChatCompletionMessageParam[]): { text: string; addSpecial: boolean } {
    if (!Array.isArray(messages) || messages.length === 0) throw new InvalidArgumentError('messages', 'must be a non-empty array');
    const placeholder = this.e.vision ? imagePlaceholder(this.e.vision) : null;
    const tpl = this.e.files.chatTemplate;
    // Image parts become the template's {type: 'image'} items (as HF processors pass them),
    // or an inline placeholder (<image>, Gemma 3's <start_of_image>) when there is no template.
    const plain = messages.map((m) => ({ role: m.role, content: contentOf(m, placeholder, !!tpl) }));
    if (!tpl) return { text: plain.map((m) => m.content).join('\n'), addSpecial: true };
    const tc = this.e.files.tokenizerConfig ?? {};
    const tokenText = (t: unknown) => (typeof t === 'string' ? t : (t as { content?: string } | null)?.content ?? '');
    const text = renderChatTemplate(tpl, { messages: plain, add_generation_prompt: true, bos_token: tokenText(tc.bos_token), eos_token: tokenText(tc.eos_token) });
    // A template writes its own special tokens (BOS included): do not add them again.
    return { text, addSpecial: false };
  }

  async chatCompletion(req: ChatCompletionRequestBase & { images?: ImageInput[] }, onEvent: (e: StreamEvent) => void): Promise<void> {
    await this.recoverDevice();
    const { text, addSpecial } = this.renderChat(req.messages);
    const urls = imageUrls(req.messages);
    if (!urls.length) return this.run(this.tokenizer.encode(text, addSpecial), { ...req, images: undefined }, onEvent, true);
    // Images: decode (typed errors), preprocess once, expand each placeholder as the model's processor does.
    const rt = this.e.vision!;
    const inputs = req.images ?? (await Promise.all(urls.map((u, i) => fetchImage(u, i))));
    if (inputs.length !== urls.length) throw new InvalidArgumentError('images', `${urls.length} image parts but ${inputs.length} images`);
    const pre = await preprocessImages(inputs, rt, this.e.opts.maxImagePixels);
    const marker = imagePlaceholder(rt);
    const placeholders = text.split(marker).length - 1;
    if (placeholders !== pre.length) throw new InvalidArgumentError('messages', `the chat template placed ${placeholders} ${marker} markers for ${pre.length} images`);
    const expanded = expandImages(text, pre, rt);
    await this.run(this.tokenizer.encode(expanded, addSpecial), { ...req, images: pre }, onEvent, false);
  }

  async completion(req: SamplingRequest & { prompt: string }, onEvent: (e: StreamEvent) => void): Promise<void> {
    await this.recoverDevice();
    if (typeof req.prompt !== 'string') throw new InvalidArgumentError('prompt', 'must be a string');
    await this.run(this.tokenizer.encode(req.prompt, true), req, onEvent, false);
  }

  private async run(ids: number[], req: SamplingRequest & { images?: PreprocessedImage[] }, onEvent: (e: StreamEvent) => void, reusePrefix: boolean): Promise<void> {
    const e = this.e;
    const streamer = new TextStreamer(this.tokenizer);
    const stops = req.stop === undefined || req.stop === null ? [] : Array.isArray(req.stop) ? req.stop : [req.stop];
    this.abort = new AbortController();
    const signal = req.signal ? anySignal([req.signal, this.abort.signal]) : this.abort.signal;
    this.startedAt = performance.now();
    let text = '';
    let stoppedByString = false;
    try {
      const result = await e.generate(ids, {
        maxTokens: req.max_tokens ?? Math.max(1, Math.min(256, e.contextWindow - ids.length)),
        temperature: req.temperature ?? 0,
        topP: req.top_p ?? undefined,
        topK: req.top_k,
        seed: req.seed ?? undefined,
        pop: req.pop,
        ignoreEos: req.ignore_eos,
        reusePrefix,
        images: req.images,
        signal,
        onToken: (id) => {
          let delta = streamer.push(id);
          if (e.config.eosTokenIds.includes(id)) delta = '';
          const next = text + delta;
          const hit = stops.map((s) => next.indexOf(s, Math.max(0, text.length - s.length + 1))).filter((i) => i >= 0);
          if (hit.length) {
            const cut = Math.min(...hit);
            delta = next.slice(text.length, cut);
            stoppedByString = true;
          }
          text += delta;
          if (delta) onEvent({ delta, finishReason: null });
          return stoppedByString;
        },
      });
      onEvent({ delta: '', finishReason: result.stats.finishReason, usage: this.usage(result.stats) });
    } finally {
      this.abort = null;
    }
  }

  private usage(s: GenerateStats): CompletionUsage {
    const e2e = (performance.now() - this.startedAt) / 1000;
    return {
      prompt_tokens: s.promptTokens,
      completion_tokens: s.completionTokens,
      total_tokens: s.promptTokens + s.completionTokens,
      extra: {
        ttft_ms: s.ttftMs, prefill_tokens_per_s: s.prefillTokensPerS, decode_tokens_per_s: s.decodeTokensPerS,
        pop_keep: s.keep, pop_keep_reason: s.keepReason, layers: s.layers, reused_prompt_tokens: s.reusedTokens,
        e2e_latency_s: e2e, time_to_first_token_s: s.ttftMs / 1000, time_per_output_token_s: s.completionTokens ? s.decodeMs / 1000 / s.completionTokens : 0,
      },
    };
  }

  /** Stops the request that runs, or the load in progress (download, upload, kernel compile, warm-up). */
  interruptGenerate(): void {
    this.abort?.abort();
    this.loadAbort?.abort();
  }

  /**
   * The request that follows a device loss (its own failed with DEVICE_LOST) first loads the
   * model again on a new device: a URL model is read back from the browser cache, not downloaded.
   */
  private async recoverDevice(): Promise<void> {
    if (this.engine && (this.engine.ops as GpuOps).gpu?.lostError && this.lastLoad) await this.reload(this.lastLoad.model, this.lastLoad.config);
  }

  /** GPU memory (every live buffer, and the engine's weights / KV / scratch) and the JS heap (src/engine/stats.ts). */
  stats(): RuntimeStats {
    return runtimeStats(this.engine);
  }

  /** Stops a model load in progress (its AbortSignal, from the other side of the worker). */
  interruptLoad(): void {
    this.loadAbort?.abort();
  }

  /**
   * Whether a model fits this device and browser, from config.json and file sizes only
   * (nothing else is downloaded). Apps use it to grey out models.
   */
  async checkFit(model: string, o: { contextWindow?: number; hubBase?: string; useCache?: boolean; weightDtype?: 'auto' | 'f32' | 'f16'; quantization?: 'none' | 'q4' | 'q4-asym'; quantizeLmHead?: boolean; memoryBytes?: number } = {}): Promise<FitReport> {
    return checkModelFit(model, o);
  }

  /** Removes a downloaded model from the browser cache. */
  async deleteCachedModel(model: string, hubBase?: string): Promise<void> {
    await deleteCachedModel(model, hubBase);
  }

  resetChat(): void {
    this.engine?.resetChat();
  }

  runtimeStatsText(): string {
    const s = this.engine?.lastStats;
    if (!s) return 'No request has run yet.';
    return `prefill: ${s.prefillTokensPerS.toFixed(1)} tok/s, decode: ${s.decodeTokensPerS.toFixed(2)} tok/s, TTFT: ${s.ttftMs.toFixed(0)} ms, POP keep ${s.keep}/${s.layers}` + (s.reusedTokens ? `, reused ${s.reusedTokens} prompt tokens` : '');
  }

  get model(): string {
    return this.modelId;
  }

  /** What a UI needs to know about the loaded model (null before a load). */
  get info(): { layers: number; contextWindow: number; quantization: 'none' | 'q4' | 'q4-asym' } | null {
    return this.engine ? { layers: this.engine.config.numLayers, contextWindow: this.engine.contextWindow, quantization: this.engine.opts.quantization ?? 'none' } : null;
  }

  unload(): void {
    this.abort?.abort();
    if (this.engine) {
      this.engine.unload();
      // The device is this engine's own (createGpuEngine): destroying it frees what the ops hold too.
      (this.engine.ops as GpuOps).gpu?.destroy();
      this.engine = null;
    }
  }
}

type Part = { type: string; text?: string; image_url?: { url: string } | string };

/** The image URLs of all messages, in order. */
function imageUrls(messages: ChatCompletionMessageParam[]): string[] {
  const out: string[] = [];
  for (const m of messages) {
    const c = (m as { content?: unknown }).content;
    if (Array.isArray(c)) for (const p of c as Part[]) if (p.type === 'image_url') out.push(typeof p.image_url === 'string' ? p.image_url : p.image_url?.url ?? '');
  }
  return out;
}

function anySignal(signals: AbortSignal[]): AbortSignal {
  const c = new AbortController();
  for (const s of signals) {
    if (s.aborted) c.abort();
    else s.addEventListener('abort', () => c.abort(), { once: true });
  }
  return c.signal;
}
