// The main-thread engine: the same calls as WebLLM's engine (CreateWorkerEngine, reload,
// chat.completions.create, completions.create, interruptGenerate, resetChat, unload,
// runtimeStatsText), backed by the worker over Comlink. Streams arrive through a proxied
// callback and are handed out as async iterables; nothing polls.
import * as Comlink from 'comlink';
import { AbortError, InvalidArgumentError, WorkerDiedError } from '../errors.ts';
import { fetchImage } from '../vision/image_fetch.ts';
import type { FitReport } from '../model/fit.ts';
import type { RuntimeStats } from '../engine/stats.ts';
import type { StreamEvent } from './chat_engine.ts';
import type {
  ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionRequestNonStreaming, ChatCompletionRequestStreaming,
  Completion, CompletionChunk, CompletionRequest, CompletionRequestNonStreaming, CompletionRequestStreaming, EngineConfig, FinishReason, SamplingRequest,
} from './protocol.ts';
import { startEngineWorker } from './engine_worker.ts';
import { registerErrorTransfer } from './transfer.ts';
import { livenessLockName, watchLiveness } from './liveness.ts';
import type { WorkerHost } from './worker.ts';

registerErrorTransfer();

/** Relative URLs are the page's: the worker would resolve them against its own script URL. */
function pageUrl<M extends string | File[]>(model: M): M {
  return (typeof model === 'string' && /^\.{0,2}\//.test(model) && typeof location !== 'undefined' ? new URL(model, location.href).href : model) as M;
}

type ImageLike = Blob | ImageBitmap | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas;

/**
 * Moves image parts whose url is an object (File, Blob, ImageBitmap, <img>, canvas) out of
 * the messages into an `images` list (by image-part order; URL strings are fetched in the
 * worker, so they are fetched here too to keep the order simple).
 */
async function detachImages(messages: ChatCompletionRequest['messages']): Promise<{ messages: ChatCompletionRequest['messages']; images: (Blob | ImageBitmap)[] | undefined; transfer: Transferable[] }> {
  if (!Array.isArray(messages) || messages.length === 0) throw new InvalidArgumentError('messages', 'must be a non-empty array');
  const images: (Blob | ImageBitmap)[] = [];
  const transfer: Transferable[] = [];
  let any = false;
  const out = [] as unknown as ChatCompletionRequest['messages'];
  for (const m of messages) {
    const c = (m as { content?: unknown }).content;
    if (!Array.isArray(c)) {
      out.push(m);
      continue;
    }
    const parts = [];
    for (const p of c as { type: string; image_url?: { url: unknown } }[]) {
      if (p.type !== 'image_url') {
        parts.push(p);
        continue;
      }
      const u = p.image_url?.url as string | ImageLike | undefined;
      any = true;
      let img: Blob | ImageBitmap;
      if (typeof u === 'string') img = await fetchImage(u, images.length);
      else if (u instanceof Blob) img = u;
      else if (typeof ImageBitmap !== 'undefined' && u instanceof ImageBitmap) img = u;
      else img = await createImageBitmap(u as ImageBitmapSource);
      if (typeof ImageBitmap !== 'undefined' && img instanceof ImageBitmap) transfer.push(img);
      images.push(img);
      parts.push({ type: 'image_url', image_url: { url: `pop-llm:image/${images.length - 1}` } });
    }
    out.push({ ...m, content: parts } as (typeof out)[number]);
  }
  return { messages: out, images: any ? images : undefined, transfer };
}

let seq = 0;
const newId = (p: string) => `${p}-${Date.now().toString(36)}-${(seq++).toString(36)}`;

export class WorkerEngine {
  private remote!: Comlink.Remote<WorkerHost>;
  private stopWatching: () => void = () => {};
  private readonly pending = new Set<(e: Error) => void>();
  private dead: WorkerDiedError | null = null;
  private modelId = '';
  /** Set after reload when the model has no chat template. */
  templateNote: string | null = null;
  /** Set after reload: the model's layer count (POP's L) and the context window. */
  modelInfo: { layers: number; contextWindow: number; quantization: 'none' | 'q4' | 'q4-asym' } | null = null;

  readonly chat = {
    completions: {
      create: ((req: ChatCompletionRequest) => this.createChat(req)) as {
        (req: ChatCompletionRequestStreaming): Promise<AsyncIterable<ChatCompletionChunk>>;
        (req: ChatCompletionRequestNonStreaming): Promise<ChatCompletion>;
        (req: ChatCompletionRequest): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion>;
      },
    },
  };

  readonly completions = {
    create: ((req: CompletionRequest) => this.createCompletion(req)) as {
      (req: CompletionRequestStreaming): Promise<AsyncIterable<CompletionChunk>>;
      (req: CompletionRequestNonStreaming): Promise<Completion>;
      (req: CompletionRequest): Promise<AsyncIterable<CompletionChunk> | Completion>;
    },
  };

  /** `makeWorker`: how to start a fresh worker, so that reload after WORKER_DIED starts one. */
  constructor(public worker: Worker, private readonly makeWorker?: () => Promise<Worker>) {
    this.attach(worker);
  }

  private attach(worker: Worker): void {
    this.worker = worker;
    this.remote = Comlink.wrap<WorkerHost>(worker);
    const die = (detail: string) => {
      if (this.worker !== worker || this.dead) return;
      this.dead = new WorkerDiedError(detail);
      this.stopWatching();
      for (const reject of this.pending) reject(this.dead);
      this.pending.clear();
    };
    worker.addEventListener('error', (e) => die(e.message || 'uncaught error in the worker'));
    worker.addEventListener('messageerror', () => die('a message could not be deserialized'));
    // A worker that ends without an event (killed, crashed, out of memory) releases its lock.
    const lock = livenessLockName();
    this.stopWatching = watchLiveness(lock, this.remote.holdLivenessLock(lock), () => die('the worker stopped without an error event (killed, crashed or out of memory)'));
  }

  /** Runs a remote call; a dead worker rejects it instead of leaving it hanging. */
  private call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<T>((resolve, reject) => {
      this.pending.add(reject);
      fn().then(resolve, reject).finally(() => this.pending.delete(reject));
    });
  }

  async reload(model: string | File[], config: EngineConfig & { signal?: AbortSignal } = {}): Promise<void> {
    const { initProgressCallback, signal, ...rest } = config;
    this.modelInfo = null;
    // After WORKER_DIED, reload starts a fresh worker (chat state kept on this side survives).
    if (this.dead && this.makeWorker && this.dead.fields.detail !== 'terminated') {
      this.worker.terminate(); // an error event does not always end a worker
      this.attach(await this.makeWorker());
      this.dead = null;
    }
    const target = pageUrl(model);
    const onAbort = () => void this.remote.interruptLoad();
    if (signal?.aborted) throw new AbortError('load');
    signal?.addEventListener('abort', onAbort, { once: true });
    let r;
    try {
      r = await this.call(() => this.remote.reload(target, rest, initProgressCallback ? Comlink.proxy(initProgressCallback) : undefined));
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    this.modelId = typeof model === 'string' ? model : 'local folder';
    this.templateNote = r.templateNote;
    this.modelInfo = r.info;
  }

  private stream<C>(run: (onEvent: (e: StreamEvent) => void) => Promise<void>, toChunk: (e: StreamEvent) => C, signal?: AbortSignal): AsyncIterable<C> {
    const queue: C[] = [];
    let done = false;
    let failure: unknown = null;
    let wake: (() => void) | null = null;
    const notify = () => { wake?.(); wake = null; };
    const onAbort = () => this.interruptGenerate();
    signal?.addEventListener('abort', onAbort, { once: true });
    this.call(() => run(Comlink.proxy((e: StreamEvent) => { queue.push(toChunk(e)); notify(); })))
      .catch((e) => { failure = e; })
      .finally(() => { done = true; signal?.removeEventListener('abort', onAbort); notify(); });
    return {
      [Symbol.asyncIterator]: async function* () {
        for (;;) {
          while (queue.length) yield queue.shift()!;
          if (failure) throw failure;
          if (done) return;
          await new Promise<void>((r) => (wake = r));
        }
      },
    };
  }

  private async createChat(req: ChatCompletionRequest): Promise<AsyncIterable<ChatCompletionChunk> | ChatCompletion> {
    const id = newId('chatcmpl');
    const created = Math.floor(Date.now() / 1000);
    const { signal, ...rest } = req;
    if (signal?.aborted) this.interruptGenerate();
    // Images that are not URLs (File, Blob, ImageBitmap, <img>) travel beside the messages;
    // bitmaps are transferred, not copied.
    const { messages, images, transfer } = await detachImages(rest.messages);
    const wire = { ...rest, messages, images };
    let first = true;
    const chunks = this.stream<ChatCompletionChunk>((cb) => this.remote.chatCompletion(Comlink.transfer(wire, transfer), cb), (e) => {
      const delta = first ? { role: 'assistant' as const, content: e.delta } : { content: e.delta };
      first = false;
      return { id, object: 'chat.completion.chunk', created, model: this.modelId, choices: [{ index: 0, delta, finish_reason: e.finishReason }], usage: e.usage };
    }, signal);
    if (req.stream) return chunks;
    let content = '';
    let last: ChatCompletionChunk | null = null;
    for await (const c of chunks) (content += c.choices[0].delta.content ?? ''), (last = c);
    return { id, object: 'chat.completion', created, model: this.modelId, choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: (last?.choices[0].finish_reason ?? 'stop') as FinishReason }], usage: last!.usage! };
  }

  private async createCompletion(req: CompletionRequest): Promise<AsyncIterable<CompletionChunk> | Completion> {
    const id = newId('cmpl');
    const created = Math.floor(Date.now() / 1000);
    const { signal, ...wire } = req;
    const chunks = this.stream<CompletionChunk>((cb) => this.remote.completion(wire as SamplingRequest & { prompt: string }, cb), (e) => ({
      id, object: 'text_completion', created, model: this.modelId, choices: [{ index: 0, text: e.delta, finish_reason: e.finishReason }], usage: e.usage,
    }), signal);
    if (req.stream) return chunks;
    let text = '';
    let last: CompletionChunk | null = null;
    for await (const c of chunks) (text += c.choices[0].text), (last = c);
    return { id, object: 'text_completion', created, model: this.modelId, choices: [{ index: 0, text, finish_reason: last?.choices[0].finish_reason ?? 'stop' }], usage: last!.usage! };
  }

  /** Whether a model fits this device and browser, before downloading it (grey out models). */
  checkFit(model: string, options: { contextWindow?: number; hubBase?: string; memoryBytes?: number } = {}): Promise<FitReport> {
    const m = pageUrl(model) as string;
    return this.call(() => this.remote.checkFit(m, options));
  }

  /** Removes a downloaded model from the browser cache. */
  deleteCachedModel(model: string, hubBase?: string): Promise<void> {
    const m = pageUrl(model) as string;
    return this.call(() => this.remote.deleteCachedModel(m, hubBase));
  }

  interruptGenerate(): void {
    if (!this.dead) void this.remote.interruptGenerate();
  }
  resetChat(): Promise<void> {
    return this.call(() => this.remote.resetChat());
  }
  runtimeStatsText(): Promise<string> {
    return this.call(() => this.remote.runtimeStatsText());
  }
  /** GPU memory (all live buffers; the engine's weights, KV cache, scratch) and the worker's JS heap. */
  stats(): Promise<RuntimeStats> {
    return this.call(() => this.remote.stats());
  }
  async unload(): Promise<void> {
    await this.call(() => this.remote.unload());
  }
  /** Ends the worker (and the GPU device it owns). */
  terminate(): void {
    this.stopWatching();
    this.worker.terminate();
    this.dead = new WorkerDiedError('terminated');
    // Nothing will answer the calls in flight: reject them rather than leave them hanging.
    for (const reject of this.pending) reject(this.dead);
    this.pending.clear();
  }
}

/** Starts the worker and loads a model, like WebLLM's CreateWebWorkerMLCEngine. */
export async function CreateWorkerEngine(model: string | File[], config: EngineConfig = {}): Promise<WorkerEngine> {
  const engine = new WorkerEngine(await startEngineWorker(), startEngineWorker);
  try {
    await engine.reload(model, config);
  } catch (e) {
    engine.terminate(); // nobody else holds the worker (and its GPU device)
    throw e;
  }
  return engine;
}
