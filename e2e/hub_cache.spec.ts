// Loading from the Hub with the browser cache: progress in bytes, a second load served from
// the Cache API, delete, resume after a dropped connection, a truncated shard that is never
// stored nor marked complete, the fit check (row splitting; refusals before any shard is
// fetched), and an AbortSignal during download. The Hub is mimicked with page.route on
// https://huggingface.co/<id>/resolve/main/<file>.
import { test, expect, type Page, type Route } from '@playwright/test';
import { BASE, storiesFile } from './helpers.ts';

const HUB = 'https://huggingface.co';
const CORS = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'content-length' };

interface HubMimic { gets: Map<string, number>; dropNext: Set<string>; delay: Map<string, number>; truncateNext: Map<string, number> }

async function mimic(page: Page, files: (id: string, name: string) => Buffer | null): Promise<HubMimic> {
  const m: HubMimic = { gets: new Map(), dropNext: new Set(), delay: new Map(), truncateNext: new Map() };
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
    const cut = m.truncateNext.get(name) ?? 0;
    m.truncateNext.delete(name);
    return route.fulfill({ status: 200, headers: { ...CORS, 'content-type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream' }, body: body.subarray(0, body.length - cut) });
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
    e.setInitProgressCallback((p: any) => cachedReports.push(p.text));
    await e.reload('test-org/stories-a');
    e.setInitProgressCallback(undefined);
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

test('a truncated shard from the server: TRUNCATED_FILE, nothing of it cached, the model not complete; the whole file next time is cached', async ({ page }) => {
  const hub = await mimic(page, stories);
  const size = storiesFile('model.safetensors')!.length;
  hub.truncateNext.set('model.safetensors', 1000);
  await open(page);
  const r = await page.evaluate(async () => {
    const pop = (globalThis as any).pop;
    const url = 'https://huggingface.co/test-org/stories-d/resolve/main/model.safetensors';
    const stored = async () => {
      const hit = await (await caches.open('pop-llm-models')).match(url);
      return hit ? (await hit.arrayBuffer()).byteLength : 0;
    };
    let err: any = null;
    try {
      await pop.CreateWorkerEngine('test-org/stories-d');
    } catch (x) {
      err = { code: (x as any).code, fields: (x as any).fields };
    }
    const meta = await pop.cachedModelInfo('test-org/stories-d');
    const after = { stored: await stored(), complete: meta?.complete ?? false, file: meta?.files?.['model.safetensors'] ?? null };
    const e = await pop.CreateWorkerEngine('test-org/stories-d');
    const out = (await e.completions.create({ prompt: 'Once', max_tokens: 4, temperature: 0 })).choices[0].text;
    e.terminate();
    const meta2 = await pop.cachedModelInfo('test-org/stories-d');
    const fixed = { stored: await stored(), complete: meta2?.complete, file: meta2?.files?.['model.safetensors'] };
    await pop.deleteCachedModel('test-org/stories-d');
    return { err, after, out, fixed };
  });
  expect(r.err).toEqual({ code: 'TRUNCATED_FILE', fields: { file: 'model.safetensors', expectedBytes: size, actualBytes: size - 1000 } });
  expect(r.after).toEqual({ stored: 0, complete: false, file: null });
  expect(r.out.length).toBeGreaterThan(0);
  expect(r.fixed).toEqual({ stored: size, complete: true, file: size });
  expect(hub.gets.get('test-org/stories-d/model.safetensors')).toBe(2);
});

test('checkFit splits a 16 GB embedding into row parts, refuses what cannot fit (a row over the binding limit, a layer\'s KV cache, weights over memoryBytes) before any shard is fetched', async ({ page }) => {
  const base = JSON.parse(storiesFile('config.json')!.toString());
  const configs: Record<string, unknown> = {
    // 1,000,000 x 4096 f32 = 16.4 GB of embedding: more than one binding, fine in row parts.
    'test-org/huge': { ...base, vocab_size: 1_000_000, hidden_size: 4096, intermediate_size: 11008, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 128 },
    // One embedding row of 600 M floats (2.4 GB) is larger than a binding: no split helps.
    'test-org/wide': { ...base, hidden_size: 600_000_000, intermediate_size: 64, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 8 },
    // 32 KV heads x 128 at 262144 positions: 4.3 GB of K for one layer (the KV cache is never split).
    'test-org/long': { ...base, num_attention_heads: 32, num_key_value_heads: 32, head_dim: 128, max_position_embeddings: 262144 },
  };
  const hub = await mimic(page, (id, name) => (name === 'config.json' && configs[id] ? Buffer.from(JSON.stringify(configs[id])) : configs[id] && name === 'model.safetensors' ? Buffer.alloc(64) : null));
  await open(page);
  const r = await page.evaluate(async () => {
    const pop = (globalThis as any).pop;
    const adapter = await navigator.gpu.requestAdapter();
    const limit = Math.min(adapter!.limits.maxBufferSize, adapter!.limits.maxStorageBufferBindingSize);
    const e = await pop.CreateWorkerEngine('/models/stories260K');
    const huge = await e.checkFit('test-org/huge');
    const hugeTight = await e.checkFit('test-org/huge', { memoryBytes: 8e9 });
    const wide = await e.checkFit('test-org/wide');
    const long = await e.checkFit('test-org/long', { contextWindow: 262144 });
    const small = await e.checkFit('/models/stories260K', { memoryBytes: 8e9 });
    const refusal = async (id: string, config: Record<string, unknown>) => {
      try {
        await e.reload(id, undefined, config);
        return null;
      } catch (x) {
        return { code: (x as any).code, message: (x as any).message, fields: (x as any).fields, cls: (x as any).constructor.name };
      }
    };
    const errMemory = await refusal('test-org/huge', { memoryBytes: 8e9 });
    const errRow = await refusal('test-org/wide', {});
    e.terminate();
    return { limit, huge, hugeTight, wide, long, small, errMemory, errRow };
  });
  expect(r.small.fits).toBe(true);
  // The embedding is stored as row parts that each fit; nothing else is too large.
  expect(r.huge.fits).toBe(true);
  const split = r.huge.splits.find((s: any) => s.what === 'embedding table');
  expect(split.bytes).toBe(1_000_000 * 4096 * 4);
  expect(split.parts).toBeGreaterThanOrEqual(Math.ceil(split.bytes / r.limit));
  expect(r.huge.largestBindingBytes).toBeLessThanOrEqual(r.limit);
  // Over a device memory budget: refused, and so is the load.
  expect(r.hugeTight.fits).toBe(false);
  expect(r.hugeTight.problems[0]).toMatchObject({ what: 'weights + KV cache', limitName: 'device memory', limit: 8e9 });
  expect(r.errMemory).toMatchObject({ code: 'MODEL_TOO_LARGE', cls: 'ModelTooLargeError', fields: { limitName: 'device memory' } });
  expect(r.errMemory!.message).toMatch(/smaller model/);
  // One row larger than a binding; a layer's KV cache larger than a binding.
  expect(r.wide.fits).toBe(false);
  expect(r.wide.problems[0]).toMatchObject({ what: 'embedding table (one row)', bytes: 600_000_000 * 4, limitName: 'maxStorageBufferBindingSize' });
  expect(r.errRow).toMatchObject({ code: 'MODEL_TOO_LARGE', cls: 'ModelTooLargeError', fields: { limitName: 'maxStorageBufferBindingSize' } });
  expect(r.long.problems[0]).toMatchObject({ what: 'KV cache of one layer', bytes: 32 * 128 * 262144 * 4, suggestion: 'Use a smaller context window.' });
  for (const id of Object.keys(configs)) expect(hub.gets.get(`${id}/model.safetensors`) ?? 0).toBe(0);
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
      await e.reload('test-org/stories-c', undefined, { signal: ctl.signal });
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
