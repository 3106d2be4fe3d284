// The module Web Worker that owns the GPU: it creates the ChatEngine and exposes it over
// Comlink. Callbacks (progress, stream events) arrive as Comlink proxies.
import * as Comlink from 'comlink';
import { ChatEngine, type StreamEvent } from './chat_engine.ts';
import type { ChatCompletionRequestBase, EngineConfig, InitProgressReport, SamplingRequest } from './protocol.ts';
import { registerErrorTransfer } from './transfer.ts';
import { holdLivenessLock } from './liveness.ts';
import { filesSource } from '../model/source.ts';
import type { FitReport } from '../model/fit.ts';
import type { RuntimeStats } from '../engine/stats.ts';

registerErrorTransfer();

export class WorkerHost {
  private readonly chat = new ChatEngine();

  async reload(model: string | File[], config: Omit<EngineConfig, 'initProgressCallback'>, onProgress?: (r: InitProgressReport) => void): Promise<{ templateNote: string | null; info: { layers: number; contextWindow: number; quantization: 'none' | 'q4' | 'q4-asym' } | null }> {
    const source = typeof model === 'string' ? model : filesSource(model, model[0]?.webkitRelativePath?.split('/')[0] || 'local folder');
    await this.chat.reload(source, { ...config, initProgressCallback: onProgress });
    return { templateNote: this.chat.templateNote, info: this.chat.info };
  }
  chatCompletion(req: ChatCompletionRequestBase, onEvent: (e: StreamEvent) => void): Promise<void> {
    return delivered(onEvent, (cb) => this.chat.chatCompletion(req, cb));
  }
  completion(req: SamplingRequest & { prompt: string }, onEvent: (e: StreamEvent) => void): Promise<void> {
    return delivered(onEvent, (cb) => this.chat.completion(req, cb));
  }
  interruptLoad(): void {
    this.chat.interruptLoad();
  }
  checkFit(model: string, o: { contextWindow?: number; hubBase?: string; memoryBytes?: number }): Promise<FitReport> {
    return this.chat.checkFit(model, o);
  }
  deleteCachedModel(model: string, hubBase?: string): Promise<void> {
    return this.chat.deleteCachedModel(model, hubBase);
  }
  interruptGenerate(): void {
    this.chat.interruptGenerate();
  }
  resetChat(): void {
    this.chat.resetChat();
  }
  unload(): void {
    this.chat.unload();
  }
  runtimeStatsText(): string {
    return this.chat.runtimeStatsText();
  }
  stats(): RuntimeStats {
    return this.chat.stats();
  }
  /** Holds a Web Lock for the worker's lifetime: the page learns of its death by getting it (src/api/liveness.ts). */
  holdLivenessLock(name: string): Promise<void> {
    return holdLivenessLock(name);
  }
}

/**
 * Runs a streaming request and returns only once the page has received every event: stream
 * events travel on the callback proxy's port and the reply on the worker's, which are not
 * ordered, so the final event (with usage) could otherwise arrive after the stream ended.
 */
async function delivered(onEvent: (e: StreamEvent) => void, run: (cb: (e: StreamEvent) => void) => Promise<void>): Promise<void> {
  let last: unknown;
  try {
    await run((e) => {
      last = onEvent(e); // a Comlink proxy call: a promise settled when the page has handled it
    });
  } finally {
    await Promise.resolve(last).catch(() => {});
  }
}

Comlink.expose(new WorkerHost());
