// Loading from the Hub with the browser cache: progress in bytes, a second load served from
// the Cache API, delete, resume after a dropped connection, the fit check that refuses a
// model before any shard is fetched, and an AbortSignal during download. The Hub is mimicked
// with page.route on https://huggingface.co/<id>/resolve/main/<file>.
import { test, expect, type Page, type Route } from '@playwright/test';
import { BASE, storiesFile } from './helpers.ts';

const HUB = 'https://huggingface.co';
const CORS = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'content-length' };

interface HubMimic { gets: Map<string, number>; dropNext: Set<string>; delay: Map<string, number> }

async function mimic(page: Page, files: (id: string, name: string) => Buffer | null): Promise<HubMimic> {
  const m: HubMimic = { gets: new Map(), dropNext: new Set(), delay: new Map() };
  await page.route(`${HUB}/**`, async (route: Route) => {
    const url = new URL(route.request().url());
    const match = /^\/(.+?\/.+?)\/resolve\/main\/(.+)$/.exec(url.pathname);
    if (!match) return route.fulfill({ status: 404, headers: CORS, body: 'no' });
    const [, id, name] = match;
    const body = files(id, name);
    if (!body) return route.fulfill({ status: 404, headers: CORS, body: 'Entry not found' });
    if (route.request().method() === 'HEAD') return route.fulfill({ status: 200, headers: { ...CORS, 'content-length': String(body.length) }, body: '' });
    m.gets.set(`${id}/${name}`, (m.gets.get(`${id}/${name}`) ?? 0) + 1);
    if (m.dropNext.delete(name)) return route.abort('connectionreset');
    const d = m.delay.get(name);
    if (d) await new Promise((r) => setTimeout(r, d));
    return route.fulfill({ status: 200, headers: { ...CORS, 'content-type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream' }, body });
  });
  return m;
}

const stories = (_id: string, name: string) => storiesFile(name);

async function open(page: Page): Promise<void> {
  await page.goto(`${BASE}/test/harness.html`);
  await page.waitForFunction(() => (globalThis as any).__popReady === true);
}

test('Hub load: byte progress, second load from the cache, delete, then a fresh download', async ({ page }) => {
  const hub = await mimic(page, stories);
  await open(page);
  const r = await page.evaluate(async () => {
    const pop = (globalThis as any).pop;
    const reports: { progress: number; text: string }[] = [];
    const e = await pop.CreateWorkerEngine('test-org/stories-a', { initProgressCallback: (p: any) => reports.push({ progress: p.progress, text: p.text }) });
    const first = (await e.completions.create({ prompt: 'Once upon a time', max_tokens: 8, temperature: 0 })).choices[0].text;
    await e.unload();
    const cachedReports: string[] = [];
    await e.reload('test-org/stories-a', { initProgressCallback: (p: any) => cachedReports.push(p.text) });
    const second = (await e.completions.create({ prompt: 'Once upon a time', max_tokens: 8, temperature: 0 })).choices[0].text;
    await e.deleteCachedModel('test-org/stories-a');
    await e.reload('test-org/stories-a');
    e.terminate();
    return { reports, cachedReports, first, second };
  });
  expect(r.first.length).toBeGreaterThan(0);
  expect(r.second).toBe(r.first);
  expect(r.reports.some((p) => /Downloaded model\.safetensors: [\d.]+ \/ [\d.]+ MB/.test(p.text))).toBe(true);
  expect(r.reports.some((p) => / s left/.test(p.text))).toBe(true);
  expect(r.cachedReports.some((t) => /From cache model\.safetensors/.test(t))).toBe(true);
  // Downloaded once, served from the cache once, downloaded again after the delete.
  expect(hub.gets.get('test-org/stories-a/model.safetensors')).toBe(2);
});

test('a dropped connection mid-download: typed error, and the next load fetches only what is missing', async ({ page }) => {
  const hub = await mimic(page, stories);
  hub.dropNext.add('model.safetensors');
  await open(page);
  const r = await page.evaluate(async () => {
    const pop = (globalThis as any).pop;
    let code = '';
    try {
      await pop.CreateWorkerEngine('test-org/stories-b');
    } catch (e) {
      code = (e as any).code;
    }
    const e = await pop.CreateWorkerEngine('test-org/stories-b');
    const out = (await e.completions.create({ prompt: 'Once', max_tokens: 4, temperature: 0 })).choices[0].text;
    e.terminate();
    return { code, out };
  });
  expect(r.code).toBe('MODEL_NOT_FOUND');
  expect(r.out.length).toBeGreaterThan(0);
  // Files completed before the drop came from the cache the second time.
  expect(hub.gets.get('test-org/stories-b/config.json')).toBe(1);
  expect(hub.gets.get('test-org/stories-b/tokenizer.json')).toBe(1);
  expect(hub.gets.get('test-org/stories-b/model.safetensors')).toBe(2);
});

test('checkFit refuses a model too large for the device before any shard is fetched', async ({ page }) => {
  const huge = JSON.stringify({ ...JSON.parse(storiesFile('config.json')!.toString()), vocab_size: 1_000_000, hidden_size: 4096, intermediate_size: 11008, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 128 });
  const hub = await mimic(page, (id, name) => (id === 'test-org/huge' && name === 'config.json' ? Buffer.from(huge) : id === 'test-org/huge' && name === 'model.safetensors' ? Buffer.alloc(64) : null));
  await open(page);
  const r = await page.evaluate(async () => {
    const pop = (globalThis as any).pop;
    const e = await pop.CreateWorkerEngine('/models/stories260K');
    const fit = await e.checkFit('test-org/huge');
    const small = await e.checkFit('/models/stories260K');
    let err: any = null;
    try {
      await e.reload('test-org/huge');
    } catch (x) {
      err = { code: (x as any).code, message: (x as any).message, fields: (x as any).fields, cls: (x as any).constructor.name };
    }
    e.terminate();
    return { fit, small, err };
  });
  expect(r.small.fits).toBe(true);
  expect(r.fit.fits).toBe(false);
  expect(r.fit.problems[0].what).toBe('embedding table');
  expect(r.err.code).toBe('MODEL_TOO_LARGE');
  expect(r.err.cls).toBe('ModelTooLargeError');
  expect(r.err.fields.limitName).toBe('maxStorageBufferBindingSize');
  expect(r.err.message).toMatch(/smaller model/);
  expect(hub.gets.get('test-org/huge/model.safetensors') ?? 0).toBe(0);
});

test('an AbortSignal during download ends the load with ABORTED; the engine loads again after', async ({ page }) => {
  const hub = await mimic(page, stories);
  hub.delay.set('model.safetensors', 3000);
  await open(page);
  const r = await page.evaluate(async () => {
    const pop = (globalThis as any).pop;
    const e = await pop.CreateWorkerEngine('/models/stories260K');
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 300);
    const t = performance.now();
    let code = '';
    try {
      await e.reload('test-org/stories-c', { signal: ctl.signal });
    } catch (x) {
      code = (x as any).code;
    }
    const ms = performance.now() - t;
    await e.reload('/models/stories260K');
    const out = (await e.completions.create({ prompt: 'Once', max_tokens: 4, temperature: 0 })).choices[0].text;
    e.terminate();
    return { code, ms, out };
  });
  expect(r.code).toBe('ABORTED');
  expect(r.ms).toBeLessThan(2500);
  expect(r.out.length).toBeGreaterThan(0);
});
