import { test, expect } from './fixtures.ts';
test('smoke', async ({ harness }) => {
  const r = await harness.evaluate(async () => {
    const { api } = (globalThis as any).pop;
    const t0 = performance.now();
    const e = await api.CreateMLCEngine('stories260K');
    const t1 = performance.now();
    const chunks: any[] = [];
    for await (const c of await e.chat.completions.create({ stream: true, stream_options: { include_usage: true }, max_tokens: 5, temperature: 0, messages: [{ role: 'user', content: 'Once upon a time' }] })) chunks.push(c);
    const t2 = performance.now();
    const w = await api.CreateWebWorkerMLCEngine(new Worker(new URL('/src/api/default_worker.ts', location.href), { type: 'module' }), 'stories260K');
    const t3 = performance.now();
    const viaWorker = await w.chat.completions.create({ max_tokens: 5, temperature: 0, messages: [{ role: 'user', content: 'Once upon a time' }] });
    w.terminate();
    await e.unload();
    return { load: t1 - t0, req: t2 - t1, wload: t3 - t2, chunks, viaWorker };
  });
  console.log(JSON.stringify(r, null, 1).slice(0, 3000));
  expect(r.chunks.length).toBeGreaterThan(2);
});
