// The service-worker pair: a page controlled by the app's service worker (test/api_sw.ts,
// WebLLM's form) loads stories260K there with CreateServiceWorkerMLCEngine; the greedy reply
// equals the in-page engine's; a second client page finds the model loaded (no reload) and
// gets the same reply.
import { test, expect } from '@playwright/test';

test('CreateServiceWorkerMLCEngine: the engine in the service worker answers like the in-page engine, and stays loaded for the next page', async ({ page, context }) => {
  test.setTimeout(300_000);
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  await page.goto('/test/harness.html');
  await page.waitForFunction(() => (globalThis as any).__popReady === true);
  await page.evaluate(async () => {
    await navigator.serviceWorker.register('/test/api_sw.ts', { type: 'module', scope: '/test/' });
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) await new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
  });
  const ask = async (p: typeof page) => p.evaluate(async () => {
    const { api } = (globalThis as any).pop;
    const progress: string[] = [];
    // A service worker cannot import() the embedded model: its files are served (/models/stories260K).
    const appConfig = { model_list: [{ model_id: 'stories260K', model: '/models/stories260K' }] };
    const e = await api.CreateServiceWorkerMLCEngine('stories260K', { appConfig, initProgressCallback: (r: any) => progress.push(r.text) });
    const reply = (await e.chat.completions.create({ max_tokens: 6, temperature: 0, ignore_eos: true, messages: [{ role: 'user', content: 'Once upon a time' }] })).choices[0].message.content;
    const chunks: string[] = [];
    for await (const c of await e.completions.create({ prompt: 'The cat', max_tokens: 4, ignore_eos: true, temperature: 0, stream: true })) chunks.push(c.choices[0]?.text ?? '');
    e.close();
    return { reply, chunks, progress, loaded: [...e.loadedModelIds] };
  });
  const first = await ask(page);
  const inPage = await page.evaluate(async () => {
    const { api } = (globalThis as any).pop;
    const e = await api.CreateMLCEngine('stories260K');
    const reply = (await e.chat.completions.create({ max_tokens: 6, temperature: 0, ignore_eos: true, messages: [{ role: 'user', content: 'Once upon a time' }] })).choices[0].message.content;
    await e.unload();
    return reply;
  });
  const other = await context.newPage();
  await other.goto('/test/harness.html');
  await other.waitForFunction(() => (globalThis as any).__popReady === true && !!navigator.serviceWorker.controller);
  const second = await ask(other);
  expect(first.reply.length).toBeGreaterThan(0);
  expect(first.reply).toBe(inPage);
  expect(first.loaded).toEqual(['stories260K']);
  expect(first.chunks.length).toBeGreaterThan(2);
  expect(second.reply).toBe(first.reply);
  expect(second.progress).toEqual(['Already loaded']);
});
