// A fresh app that installed the packed pop-llm tarball (test/package.spec.ts copies this
// folder outside the repository): it imports only from 'pop-llm', as code written for WebLLM
// does, and streams a greedy reply on the embedded model twice: from an engine in the page
// (CreateMLCEngine), then from one in the app's own worker (CreateWebWorkerMLCEngine with
// ./worker.ts running WebWorkerMLCEngineHandler), and from the worker that the package starts
// itself (CreateWorkerEngine: a Blob-URL worker).
import { CreateMLCEngine, CreateWebWorkerMLCEngine, CreateWorkerEngine, type ChatCompletionChunk, type ChatCompletionRequestStreaming } from 'pop-llm';

const request: ChatCompletionRequestStreaming = { stream: true, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 24, temperature: 0 };

async function streamed(chunks: AsyncIterable<ChatCompletionChunk>, out: HTMLElement): Promise<string> {
  let text = '';
  for await (const c of chunks) {
    text += c.choices[0]?.delta?.content ?? '';
    out.textContent = text;
  }
  return text;
}

const status = document.getElementById('status')!;
try {
  const engine = await CreateMLCEngine('stories260K');
  await streamed(await engine.chat.completions.create(request), document.getElementById('page')!);
  await engine.unload();

  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  const own = await CreateWebWorkerMLCEngine(worker, 'stories260K');
  await streamed(await own.chat.completions.create(request), document.getElementById('worker')!);
  await own.unload();
  worker.terminate();

  const inner = await CreateWorkerEngine('stories260K');
  await streamed(await inner.chat.completions.create(request), document.getElementById('inner')!);
  inner.terminate();
  status.textContent = 'done';
} catch (e) {
  status.textContent = `error: ${(e as Error).message}`;
}
