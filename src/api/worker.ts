// The module Web Worker that owns the GPU: it creates the ChatEngine and exposes it over
// Comlink. Callbacks (progress, stream events) arrive as Comlink proxies.
import * as Comlink from 'comlink';
import { ChatEngine, type StreamEvent } from './chat_engine.ts';
import type { ChatCompletionRequestBase, EngineConfig, InitProgressReport, SamplingRequest } from './protocol.ts';
import { registerErrorTransfer } from './transfer.ts';
import { filesSource } from '../model/source.ts';

registerErrorTransfer();

export class WorkerHost {
  private readonly chat = new ChatEngine();

  async reload(model: string | File[], config: Omit<EngineConfig, 'initProgressCallback'>, onProgress?: (r: InitProgressReport) => void): Promise<{ templateNote: string | null }> {
    const source = typeof model === 'string' ? model : filesSource(model, model[0]?.webkitRelativePath?.split('/')[0] || 'local folder');
    await this.chat.reload(source, { ...config, initProgressCallback: onProgress });
    return { templateNote: this.chat.templateNote };
  }
  chatCompletion(req: ChatCompletionRequestBase, onEvent: (e: StreamEvent) => void): Promise<void> {
    return this.chat.chatCompletion(req, onEvent);
  }
  completion(req: SamplingRequest & { prompt: string }, onEvent: (e: StreamEvent) => void): Promise<void> {
    return this.chat.completion(req, onEvent);
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
}

Comlink.expose(new WorkerHost());
