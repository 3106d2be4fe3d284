// One engine interface, two hosts: MLCEngine (in the page) and WebWorkerMLCEngine (the page's
// client of the app's own worker running WebWorkerMLCEngineHandler, which wraps an MLCEngine)
// both implement MLCEngineInterface (checked by the compiler below), expose the same calls,
// and give the same greedy results, errors and interrupt behaviour.
import { test, expect } from './fixtures.ts';
import type { MLCEngineInterface } from '../src/api/index.ts';
import type { MLCEngine, WebWorkerMLCEngine } from '../src/api/index.ts';

// Compile-time: both hosts satisfy the one interface (tsc --noEmit fails otherwise).
export const hosts: [MLCEngineInterface, MLCEngineInterface] = [null as unknown as MLCEngine, null as unknown as WebWorkerMLCEngine];

const CALLS = [
  'reload', 'unload', 'chatCompletion', 'completion', 'embedding', 'interruptGenerate', 'resetChat', 'getMessage', 'runtimeStatsText',
  'forwardTokensAndSample', 'getMaxStorageBufferBindingSize', 'getGPUVendor', 'setInitProgressCallback', 'getInitProgressCallback',
  'setAppConfig', 'setLogLevel', 'setLogitProcessorRegistry', 'checkFit', 'deleteCachedModel', 'injectFault',
] as const;

test('the in-page engine and the worker client: the same calls, the same greedy results, errors and interrupts', async ({ harness }) => {
  test.setTimeout(300_000);
  const r = await harness.evaluate(async (calls) => {
    const g = globalThis as any;
    const { api } = g.pop;
    g.__api ??= await api.CreateMLCEngine('stories260K');
    const progress: number[] = [];
    const worker = new Worker(new URL('/test/api_worker.ts', location.href), { type: 'module' });
    const w = await api.CreateWebWorkerMLCEngine(worker, 'stories260K', { initProgressCallback: (p: any) => progress.push(p.progress) });
    const run = async (e: any) => {
      const code = (p: Promise<unknown>) => p.then(() => null, (x: any) => [x.code, x.fields?.field ?? null]);
      const missing = calls.filter((c: string) => typeof e[c] !== 'function');
      await e.resetChat();
      const chunks = await e.chat.completions.create({ stream: true, stream_options: { include_usage: true }, max_tokens: 6, temperature: 0, ignore_eos: true, messages: [{ role: 'user', content: 'Once upon a time' }] });
      const shapes: string[] = [];
      let streamed = '';
      for await (const c of chunks) {
        streamed += c.choices[0]?.delta?.content ?? '';
        shapes.push(c.choices.length ? (c.choices[0].finish_reason ?? 'delta') : 'usage');
      }
      const order: number[] = [];
      const [x, y] = await Promise.all(['The cat', 'One day'].map((p, i) => e.completions.create({ prompt: p, max_tokens: 5, temperature: 0, ignore_eos: true }).then((c: any) => (order.push(i), c.choices[0].text))));
      const refused = await code(e.chat.completions.create({ user: 'someone', messages: [{ role: 'user', content: 'hi' }] }));
      const invalid = await code(e.completions.create({ prompt: 'hi', temperature: -1 }));
      const s = await e.completions.create({ prompt: 'Once', max_tokens: 200, ignore_eos: true, stream: true });
      let n = 0, finish = null;
      for await (const c of s) {
        if (++n === 2) e.interruptGenerate();
        if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
      }
      const pre = new AbortController();
      pre.abort();
      const preAborted = await code(e.completions.create({ prompt: 'hi', signal: pre.signal }));
      const next = (await e.completions.create({ prompt: 'The cat', max_tokens: 5, temperature: 0, ignore_eos: true })).choices[0].text;
      const message = await e.getMessage();
      const vendor = typeof (await e.getGPUVendor());
      const binding = await e.getMaxStorageBufferBindingSize();
      return { missing, streamed, shapes, x, y, order, refused, invalid, finish, preAborted, next, message, vendor, binding, loaded: [...e.loadedModelIds], info: e.modelInfo };
    };
    const inPage = await run(g.__api);
    const viaWorker = await run(w);
    w.terminate();
    return { inPage, viaWorker, progress };
  }, CALLS);
  for (const side of [r.inPage, r.viaWorker]) {
    expect(side.missing).toEqual([]);
    expect(side.shapes).toEqual(['delta', 'delta', 'delta', 'delta', 'delta', 'delta', 'length', 'usage']);
    expect(side.order).toEqual([0, 1]);
    expect(side.refused).toEqual(['UNSUPPORTED_FIELD', 'user']);
    expect(side.invalid).toEqual(['INVALID_REQUEST', 'request.temperature']);
    expect(side.finish).toBe('abort');
    expect(side.preAborted![0]).toBe('ABORTED');
    expect(side.next).toBe(side.x);
    expect(side.message).toBe(side.next);
    expect(side.vendor).toBe('string');
    expect(side.binding).toBeGreaterThan(0);
    expect(side.loaded).toEqual(['stories260K']);
  }
  const { missing: _m, ...a } = r.inPage;
  const { missing: _n, ...b } = r.viaWorker;
  expect(b).toEqual(a);
  expect(r.progress[r.progress.length - 1]).toBe(1);
});
