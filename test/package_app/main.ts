// A fresh app that installed the packed pop-llm tarball (test/package.spec.ts copies this
// folder outside the repository): it imports only from 'pop-llm', streams a greedy reply on
// the embedded model from an engine the package starts itself, then from one on the app's own
// worker (./worker.ts), and shows both.
import { CreateWorkerEngine, WorkerEngine, type ChatCompletionChunk } from 'pop-llm';

const request = { stream: true as const, messages: [{ role: 'user' as const, content: 'Once upon a time' }], max_tokens: 24, temperature: 0 };

async function streamed(chunks: AsyncIterable<ChatCompletionChunk>, out: HTMLElement): Promise<string> {
  let text = '';
  for await (const c of chunks) {
    text += c.choices[0]?.delta.content ?? '';
    out.textContent = text;
  }
  return text;
}

const status = document.getElementById('status')!;
try {
  const engine = await CreateWorkerEngine('pop-llm:stories260K');
  await streamed(await engine.chat.completions.create(request), document.getElementById('page')!);
  engine.terminate();

  const own = new WorkerEngine(new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' }));
  await own.reload('pop-llm:stories260K');
  await streamed(await own.chat.completions.create(request), document.getElementById('worker')!);
  own.terminate();
  status.textContent = 'done';
} catch (e) {
  status.textContent = `error: ${(e as Error).message}`;
}
