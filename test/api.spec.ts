// WebLLM's documented semantics, checked on the real engine (stories260K, in Chromium): the
// request queue (arrival order, each result equal to its solo greedy result), interrupts
// (finish_reason 'abort', the next request fine), AbortSignals (pre-aborted: ABORTED, nothing
// runs), the seed, where usage goes, prompt_tokens across rounds, getMessage, the logit
// processor hook and forwardTokensAndSample, the AppConfig lookup, reload with two models and
// WebLLM's model-selection rule, the cache helpers, and `pop: 'auto'` without calibration.
// One in-page engine serves the tests of this file (loads are the slow part on SwiftShader).
import { readFileSync } from 'node:fs';
import { test, expect } from './fixtures.ts';

const STORIES = new URL('../public/models/stories260K/', import.meta.url);

/** Loads (once per page) the shared in-page engine on stories260K. */
async function shared(harness: import('@playwright/test').Page): Promise<void> {
  await harness.evaluate(async () => {
    const g = globalThis as any;
    g.__api ??= await g.pop.api.CreateMLCEngine('stories260K');
  });
}

test.describe.configure({ mode: 'serial' });

test('requests queue in arrival order; each of 2 and of 10 concurrent requests equals its solo greedy result', async ({ harness }) => {
  test.setTimeout(300_000);
  await shared(harness);
  const r = await harness.evaluate(async () => {
    const e = (globalThis as any).__api;
    const prompts = Array.from({ length: 10 }, (_, i) => ['Once upon a time', 'The cat', 'Lily saw a', 'One day', 'The sun'][i % 5] + ' '.repeat(i % 2));
    const run = async (p: string) => (await e.completions.create({ prompt: p, max_tokens: 6, temperature: 0, ignore_eos: true })).choices[0].text as string;
    const solo: string[] = [];
    for (const p of prompts) solo.push(await run(p));
    const order: number[] = [];
    const two = await Promise.all(prompts.slice(0, 2).map((p, i) => run(p).then((t) => (order.push(i), t))));
    const twoOrder = order.splice(0);
    // Ten at once, half of them streaming: results and their order.
    const ten = await Promise.all(prompts.map(async (p, i) => {
      if (i % 2) {
        const chunks = await e.completions.create({ prompt: p, max_tokens: 6, temperature: 0, ignore_eos: true, stream: true });
        let t = '';
        for await (const c of chunks) t += c.choices[0]?.text ?? '';
        order.push(i);
        return t;
      }
      const t = await run(p);
      order.push(i);
      return t;
    }));
    return { solo, two, twoOrder, ten, tenOrder: order };
  });
  expect(r.solo.every((t) => t.length > 0)).toBe(true);
  expect(r.two).toEqual(r.solo.slice(0, 2));
  expect(r.twoOrder).toEqual([0, 1]);
  expect(r.ten).toEqual(r.solo);
  expect(r.tenOrder).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test("interruptGenerate ends a stream with finish_reason 'abort'; AbortSignals: pre-aborted rejects with ABORTED and runs nothing, aborted while queued rejects", async ({ harness }) => {
  await shared(harness);
  const r = await harness.evaluate(async () => {
    const e = (globalThis as any).__api;
    const solo = (await e.completions.create({ prompt: 'The dog', max_tokens: 5, temperature: 0, ignore_eos: true })).choices[0].text;
    const chunks = await e.chat.completions.create({ stream: true, max_tokens: 200, temperature: 0, ignore_eos: true, messages: [{ role: 'user', content: 'Once upon a time' }] });
    const seen: any[] = [];
    for await (const c of chunks) {
      seen.push(c);
      if (seen.length === 3) e.interruptGenerate();
    }
    const finish = seen[seen.length - 1].choices[0].finish_reason;
    const contentChunks = seen.filter((c) => c.choices[0]?.delta?.content).length;
    const messageAfterAbort = await e.getMessage();
    const after = (await e.completions.create({ prompt: 'The dog', max_tokens: 5, temperature: 0, ignore_eos: true })).choices[0].text;
    // A signal that aborts mid-stream: the same ending.
    const ctl = new AbortController();
    const s2 = await e.completions.create({ prompt: 'The dog', max_tokens: 200, ignore_eos: true, stream: true, signal: ctl.signal });
    let n2 = 0, finish2 = null;
    for await (const c of s2) if (++n2 === 2) ctl.abort(); else if (c.choices[0]?.finish_reason) finish2 = c.choices[0].finish_reason;
    // Pre-aborted: rejects at once; getMessage still shows the previous reply (nothing ran).
    const before = await e.getMessage();
    const pre = new AbortController();
    pre.abort();
    const t0 = performance.now();
    const preCode = await e.completions.create({ prompt: 'The dog', max_tokens: 50, signal: pre.signal }).then(() => 'no error', (x: any) => x.code);
    const preMs = performance.now() - t0;
    const untouched = (await e.getMessage()) === before;
    // Aborted while it waits behind a long request.
    const long = e.completions.create({ prompt: 'Once', max_tokens: 40, ignore_eos: true });
    const q = new AbortController();
    const queued = e.completions.create({ prompt: 'Once', max_tokens: 5, signal: q.signal }).then(() => 'no error', (x: any) => x.code);
    q.abort();
    const queuedCode = await queued;
    const longFinish = (await long).choices[0].finish_reason;
    const last = (await e.completions.create({ prompt: 'The dog', max_tokens: 5, temperature: 0, ignore_eos: true })).choices[0].text;
    return { solo, finish, contentChunks, messageAfterAbort, after, finish2, preCode, preMs, untouched, queuedCode, longFinish, last };
  });
  expect(r.finish).toBe('abort');
  expect(r.contentChunks).toBeLessThan(10);
  expect(r.messageAfterAbort.length).toBeGreaterThan(0);
  expect(r.after).toBe(r.solo);
  expect(r.finish2).toBe('abort');
  expect(r.preCode).toBe('ABORTED');
  expect(r.preMs).toBeLessThan(50);
  expect(r.untouched).toBe(true);
  expect(r.queuedCode).toBe('ABORTED');
  expect(r.longFinish).toBe('length');
  expect(r.last).toBe(r.solo);
});

test('seed: the same seed gives the same text; without a seed, temperature 1 varies', async ({ harness }) => {
  await shared(harness);
  const r = await harness.evaluate(async () => {
    const e = (globalThis as any).__api;
    const run = async (seed?: number) => (await e.completions.create({ prompt: 'Once upon a time', max_tokens: 12, temperature: 1, ignore_eos: true, ...(seed === undefined ? {} : { seed }) })).choices[0].text;
    const a = await run(1234), b = await run(1234), c = await run(99);
    const free: string[] = [];
    for (let i = 0; i < 5; i++) free.push(await run());
    return { a, b, c, distinct: new Set(free).size };
  });
  expect(r.a).toBe(r.b);
  expect(r.c).not.toBe(r.a);
  expect(r.distinct).toBeGreaterThan(1);
});

test('usage: only with stream_options.include_usage, on a last chunk with choices: []; non-streaming responses always carry it', async ({ harness }) => {
  await shared(harness);
  const r = await harness.evaluate(async () => {
    const e = (globalThis as any).__api;
    const collect = async (req: any) => {
      const out: any[] = [];
      for await (const c of await e.chat.completions.create(req)) out.push(c);
      return out;
    };
    const msg = [{ role: 'user', content: 'The cat' }];
    const plain = await collect({ stream: true, max_tokens: 4, ignore_eos: true, messages: msg });
    const withUsage = await collect({ stream: true, stream_options: { include_usage: true }, max_tokens: 4, ignore_eos: true, messages: msg });
    const text = await e.completions.create({ prompt: 'The cat', max_tokens: 4, ignore_eos: true, stream: true, stream_options: { include_usage: true } });
    const textChunks: any[] = [];
    for await (const c of text) textChunks.push(c);
    const whole = await e.chat.completions.create({ max_tokens: 4, ignore_eos: true, messages: msg });
    const streamOptsWithoutStream = await e.chat.completions.create({ max_tokens: 4, messages: msg, stream_options: { include_usage: true } }).then(() => null, (x: any) => [x.code, x.fields.field]);
    return { plain, withUsage, textChunks, whole, streamOptsWithoutStream };
  });
  expect(r.plain.some((c) => c.usage)).toBe(false);
  expect(r.plain[r.plain.length - 1].choices[0].finish_reason).toBe('length');
  const last = r.withUsage[r.withUsage.length - 1];
  expect(last.choices).toEqual([]);
  expect(last.usage.completion_tokens).toBe(4);
  expect(r.withUsage.slice(0, -1).some((c) => c.usage)).toBe(false);
  expect(r.withUsage[r.withUsage.length - 2].choices[0].finish_reason).toBe('length');
  expect(r.textChunks[r.textChunks.length - 1].choices).toEqual([]);
  expect(r.textChunks[r.textChunks.length - 1].usage.total_tokens).toBe(r.textChunks[r.textChunks.length - 1].usage.prompt_tokens + 4);
  expect(r.whole.usage.completion_tokens).toBe(4);
  expect(r.whole.choices[0].message.content.length).toBeGreaterThan(0);
  expect(r.streamOptsWithoutStream).toEqual(['INVALID_REQUEST', 'request.stream_options']);
});

test('multi-round chat: usage.prompt_tokens counts the newly prefilled tokens; the reply equals a fresh run of the whole prompt', async ({ harness }) => {
  await shared(harness);
  const r = await harness.evaluate(async () => {
    const e = (globalThis as any).__api;
    await e.resetChat();
    const q1 = [{ role: 'user', content: 'Once upon a time there was a dog.' }];
    const a1 = await e.chat.completions.create({ max_tokens: 6, ignore_eos: true, messages: q1 });
    const q2 = [...q1, { role: 'assistant', content: a1.choices[0].message.content }, { role: 'user', content: 'The dog was happy.' }];
    const a2 = await e.chat.completions.create({ max_tokens: 6, ignore_eos: true, messages: q2 });
    await e.resetChat();
    const fresh = await e.chat.completions.create({ max_tokens: 6, ignore_eos: true, messages: q2 });
    return { u1: a1.usage, u2: a2.usage, fresh: fresh.usage, t2: a2.choices[0].message.content, tf: fresh.choices[0].message.content };
  });
  expect(r.u2.extra.reused_prompt_tokens).toBeGreaterThan(0);
  // Round 2 prefills only what round 1's K/V does not hold.
  expect(r.u2.prompt_tokens + r.u2.extra.reused_prompt_tokens).toBe(r.fresh.prompt_tokens);
  expect(r.u2.prompt_tokens).toBeLessThan(r.fresh.prompt_tokens);
  expect(r.fresh.extra.reused_prompt_tokens).toBe(0);
  expect(r.t2).toBe(r.tf);
});

test('getMessage: the reply so far while streaming, the whole reply after', async ({ harness }) => {
  await shared(harness);
  const r = await harness.evaluate(async () => {
    const e = (globalThis as any).__api;
    const chunks = await e.completions.create({ prompt: 'Lily saw a', max_tokens: 8, ignore_eos: true, stream: true });
    let text = '';
    const during: string[] = [];
    for await (const c of chunks) {
      text += c.choices[0]?.text ?? '';
      during.push(await e.getMessage());
    }
    return { text, during, after: await e.getMessage() };
  });
  expect(r.after).toBe(r.text);
  expect(r.during.some((m) => m.length > 0 && m.length < r.text.length)).toBe(true);
});

test('setLogitProcessorRegistry: processLogits decides the tokens, processSampledToken sees each, resetState runs on resetChat; forwardTokensAndSample continues the sequence', async ({ harness }) => {
  await shared(harness);
  const r = await harness.evaluate(async () => {
    const e = (globalThis as any).__api;
    const forced = 300;
    const calls = { logits: 0, sampled: [] as number[], reset: 0 };
    e.setLogitProcessorRegistry(new Map([['stories260K', {
      processLogits: (l: Float32Array) => {
        calls.logits++;
        const out = new Float32Array(l.length).fill(-1e9);
        out[forced] = 0;
        return out;
      },
      processSampledToken: (t: number) => void calls.sampled.push(t),
      resetState: () => void calls.reset++,
    }]]));
    const forcedText = (await e.completions.create({ prompt: 'Once upon a time', max_tokens: 4, temperature: 1, ignore_eos: true })).choices[0].text;
    const fwd = await e.forwardTokensAndSample([1, 403, 407], true);
    await e.resetChat();
    e.setLogitProcessorRegistry(undefined);
    const plain = (await e.completions.create({ prompt: 'Once upon a time', max_tokens: 4, temperature: 0, ignore_eos: true })).choices[0].text;
    // forwardTokensAndSample: prefill, then feed each sampled token back; greedy equals the same ids generated.
    await e.resetChat();
    const seq: number[] = [await e.forwardTokensAndSample([1, 403, 407], true)];
    for (let i = 0; i < 3; i++) seq.push(await e.forwardTokensAndSample([seq[seq.length - 1]], false));
    await e.resetChat();
    const again: number[] = [await e.forwardTokensAndSample([1, 403, 407], true)];
    for (let i = 0; i < 3; i++) again.push(await e.forwardTokensAndSample([again[again.length - 1]], false));
    await e.resetChat();
    return { calls, forcedText, fwd, plain, seq, again };
  });
  expect(r.calls.logits).toBe(5);
  expect(r.calls.sampled).toEqual([300, 300, 300, 300, 300]);
  expect(r.fwd).toBe(300);
  expect(r.calls.reset).toBe(1);
  expect(r.plain).not.toBe(r.forcedText);
  expect(r.seq).toEqual(r.again);
  expect(new Set(r.seq).size).toBeGreaterThan(1);
});

test("AppConfig lookup, reload with two models and WebLLM's model rule, the cache helpers, and pop: 'auto' without calibration", async ({ harness }) => {
  test.setTimeout(300_000);
  await shared(harness);
  // The same model served under /nocalib/ without its pop.json.
  await harness.route('**/nocalib/**', (route) => {
    const name = new URL(route.request().url()).pathname.split('/').pop()!;
    if (name === 'pop.json') return route.fulfill({ status: 404, body: 'none' });
    try {
      return route.fulfill({ status: 200, body: readFileSync(new URL(name, STORIES)) });
    } catch {
      return route.fulfill({ status: 404, body: 'none' });
    }
  });
  const warnings: string[] = [];
  harness.on('console', (m) => m.type() === 'warning' && warnings.push(m.text()));
  try {
    const r = await harness.evaluate(async () => {
      const { api } = (globalThis as any).pop;
      const appConfig = { model_list: [{ model_id: 'tiny-a', model: '/models/stories260K', overrides: { context_window_size: 128 } }, { model_id: 'tiny-b', model: '/nocalib' }] };
      const code = (p: Promise<unknown>) => p.then(() => null, (x: any) => [x.code, x.fields?.field ?? x.fields?.argument ?? null]);
      const cacheBefore = await api.hasModelInCache('tiny-a', appConfig);
      const e = await api.CreateMLCEngine(['tiny-a', 'tiny-b'], { appConfig, logLevel: 'WARN' });
      const loaded = [...e.loadedModelIds];
      // The cache helpers on the record's location.
      const cacheAfterLoad = await api.hasModelInCache('tiny-a', appConfig);
      await api.deleteModelInCache('tiny-a', appConfig);
      const afterWeights = await api.hasModelInCache('tiny-a', appConfig);
      await api.deleteChatConfigInCache('tiny-a', appConfig);
      await api.deleteModelWasmInCache('tiny-a', appConfig);
      await api.deleteModelAllInfoInCache('tiny-a', appConfig);
      const afterAll = await api.hasModelInCache('tiny-a', appConfig);
      const cacheNames = await caches.open('pop-llm-models').then((c) => c.keys()).then((k) => k.map((q) => q.url).filter((u) => u.includes('/models/stories260K/')));
      const embedded = await api.hasModelInCache('stories260K');
      const ask = (model?: string, pop?: string) => e.completions.create({ prompt: 'Once upon a time', max_tokens: 5, temperature: 0, ignore_eos: true, ...(model ? { model } : {}), ...(pop ? { pop } : {}) });
      const missingModel = await code(ask());
      const unknownModel = await code(ask('tiny-c'));
      const a = await ask('tiny-a', 'auto');
      const b = await ask('tiny-b', 'auto');
      const msgB = await e.getMessage('tiny-b');
      const getMessageNoModel = await code(e.getMessage());
      const info = e.modelInfo;
      await e.unload();
      const afterUnload = await code(ask('tiny-a'));
      const duplicate = await code(e.reload(['tiny-a', 'tiny-a']));
      const sizes = await code(e.reload(['tiny-a', 'tiny-b'], [{}]));
      return { cacheBefore, embedded, afterWeights, afterAll, cacheNames, loaded, cacheAfterLoad, missingModel, unknownModel, a, b, msgB, getMessageNoModel, info, afterUnload, duplicate, sizes };
    });
    expect(r.cacheBefore).toBe(false);
    expect(r.embedded).toBe(true);
    expect(r.afterWeights).toBe(false);
    expect(r.afterAll).toBe(false);
    expect(r.cacheNames).toEqual([]);
    expect(r.loaded).toEqual(['tiny-a', 'tiny-b']);
    expect(r.cacheAfterLoad).toBe(true);
    expect(r.missingModel).toEqual(['INVALID_REQUEST', 'CompletionCreateParams.model']);
    expect(r.unknownModel).toEqual(['INVALID_REQUEST', 'CompletionCreateParams.model']);
    expect(r.a.model).toBe('tiny-a');
    expect(r.b.model).toBe('tiny-b');
    expect(r.b.choices[0].text).toBe(r.a.choices[0].text);
    expect(r.msgB).toBe(r.b.choices[0].text);
    expect(r.getMessageNoModel).toEqual(['INVALID_REQUEST', 'getMessage.model']);
    // The record's overrides are ChatOptions: context_window_size.
    expect(r.info.contextWindow).toBe(128);
    // tiny-a has pop.json (calibrated keep); tiny-b falls back to exact, says so, and warns.
    expect(r.a.usage.extra.pop_fallback).toBeUndefined();
    expect(r.b.usage.extra.pop_fallback).toBe('exact');
    expect(r.b.usage.extra.pop_keep).toBe(r.b.usage.extra.layers - 1);
    expect(warnings.some((w) => w.includes("'auto' has no calibration"))).toBe(true);
    expect(r.afterUnload![0]).toBe('ENGINE_NOT_LOADED');
    expect(r.duplicate![0]).toBe('INVALID_REQUEST');
    expect(r.sizes).toEqual(['INVALID_REQUEST', 'chatOpts']);
  } finally {
    await harness.unroute('**/nocalib/**');
  }
});
