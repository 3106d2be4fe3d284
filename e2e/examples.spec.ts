// The example pages (examples/), each written as WebLLM's example of the same name with only
// the import changed to "pop-llm" (mapped to src/index.ts by vite.config.ts), run on the
// embedded model in Chromium; each test asserts what the page shows when it is done.

import { test, expect, type Page } from '@playwright/test';

/** Opens an example and waits for its stats label (written last); a page error fails at once. */
async function runExample(page: Page, name: string, timeout = 150_000): Promise<(id: string) => Promise<string>> {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`/examples/${name}/`);
  const stats = page.locator('#stats-label');
  await expect.poll(async () => errors.join('\n') || ((await stats.innerText()).trim() ? 'done' : ''), { timeout, intervals: [500] }).not.toBe('');
  expect(errors).toEqual([]);
  return async (id: string) => (await page.locator(`#${id}`).innerText()).trim();
}

test('examples/index.html links every example', async ({ page }) => {
  await page.goto('/examples/');
  const links = await page.locator('a').evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).getAttribute('href')));
  expect(links).toEqual(['get-started/', 'get-started-web-worker/', 'streaming/', 'multi-round-chat/', 'seed-to-reproduce/', 'abort-reload/', 'text-completion/', 'cache-usage/', 'multi-models/', 'service-worker/']);
});

test('get started: an in-page engine answers one request', async ({ page }) => {
  const label = await runExample(page, 'get-started');
  expect((await label('generate-label')).length).toBeGreaterThan(10);
  expect(await label('stats-label')).toMatch(/^finish_reason: (stop|length), prompt_tokens: \d+, completion_tokens: [1-9]\d*$/);
});

test('web worker: the app worker streams, and getMessage equals the stream', async ({ page }) => {
  const label = await runExample(page, 'get-started-web-worker');
  expect((await label('generate-label')).length).toBeGreaterThan(10);
  expect(await label('stats-label')).toMatch(/^worker reply, [1-9]\d* tokens; getMessage\(\) equals the stream: true$/);
});

test('streaming: deltas, usage on the last chunk', async ({ page }) => {
  const label = await runExample(page, 'streaming');
  expect((await label('generate-label')).length).toBeGreaterThan(10);
  expect(await label('stats-label')).toMatch(/^\d+ chunks, usage on the last: completion_tokens [1-9]\d*, [\d.]+ tok\/s$/);
});

test('multi-round chat: round 1 prefills fewer tokens than round 0', async ({ page }) => {
  const label = await runExample(page, 'multi-round-chat');
  expect((await label('round0-label')).length).toBeGreaterThan(0);
  expect((await label('round1-label')).length).toBeGreaterThan(0);
  const m = (await label('stats-label')).match(/^prompt_tokens: round 0 (\d+), round 1 (\d+)$/);
  expect(m).not.toBeNull();
  expect(Number(m![2])).toBeLessThan(Number(m![1]));
});

test('seed: the same seed gives the same reply, another seed another one', async ({ page }) => {
  const label = await runExample(page, 'seed-to-reproduce');
  const [r0, r1, r2] = [await label('reply0-label'), await label('reply1-label'), await label('reply2-label')];
  expect(r0.length).toBeGreaterThan(10);
  expect(r1).toBe(r0);
  expect(r2).not.toBe(r0);
  expect(await label('stats-label')).toBe('seed 42 twice: the same reply; seed 7: another reply');
});

test('abort and reload: unload stops a load, interrupt ends a stream with abort, the engine goes on', async ({ page }) => {
  const label = await runExample(page, 'abort-reload');
  expect(await label('abort-label')).toBe('the load stopped: ABORTED');
  expect(await label('interrupt-label')).toMatch(/\[finish_reason: abort\]$/);
  expect((await label('generate-label')).length).toBeGreaterThan(5);
  expect(await label('stats-label')).toMatch(/^after the abort: finish_reason (stop|length), [1-9]\d* tokens$/);
});

test('text completion: completions.create on an app-defined record', async ({ page }) => {
  const label = await runExample(page, 'text-completion');
  expect((await label('generate-label')).length).toBeGreaterThan(10);
  expect(await label('stats-label')).toMatch(/^text_completion, model stories260K-base, finish_reason (stop|length), completion_tokens [1-9]\d*$/);
});

test('cache usage: cached after a load, gone after delete, cached again after the next load', async ({ page }) => {
  const label = await runExample(page, 'cache-usage');
  expect((await label('cache-label')).split('\n')).toEqual([
    'after the first load, hasModelInCache: true',
    'reloaded from the cache',
    'after deleteModelAllInfoInCache, hasModelInCache: false',
    'downloaded again, hasModelInCache: true',
  ]);
  expect(await label('stats-label')).toBe('greedy replies: the same after reload');
});

test('multi-models: two models in one worker engine answer concurrently', async ({ page }) => {
  const label = await runExample(page, 'multi-models');
  expect((await label('generate-label-1')).length).toBeGreaterThan(5);
  expect((await label('generate-label-2')).length).toBeGreaterThan(5);
  expect(await label('stats-label')).toBe('loaded: stories260K, stories260K-served; getMessage matches each stream: true');
});

test('service worker: the engine in a service worker streams a reply', async ({ page }) => {
  const label = await runExample(page, 'service-worker');
  expect((await label('generate-label')).length).toBeGreaterThan(10);
  expect(await label('stats-label')).toMatch(/^from the service worker: [1-9]\d* tokens$/);
});
