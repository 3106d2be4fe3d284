// The fault-injection suite (issue 15). A local fault HTTP server (test/fixtures/fault_server.ts,
// 127.0.0.1 only) serves stories260K, damaged copies of it and network faults. Every case
// asserts the typed code, finishes by its deadline, and is followed by a normal load whose
// greedy ids equal a clean one's. Node cases run the real urlSource over real sockets on the
// CPU ops; browser cases go through the worker API on WebGPU and also check that GPU memory
// (engine.stats()) is back to its baseline after each fault.
import { test, expect } from './fixtures.ts';
import { Engine } from '../src/engine/engine.ts';
import { urlSource } from '../src/model/source.ts';
import { CpuOps } from '../src/reference/cpu_ops.ts';
import { startFaultServer, type FaultServer } from './fixtures/fault_server.ts';
import { caught, expectPopError } from './fixtures/expect_error.ts';
import { InvalidArgumentError, MalformedFileError } from '../src/errors.ts';
import { renderChatTemplate } from '../src/model/chat_template.ts';

const PROMPT = [1, 403, 407, 261, 378];
/** Each case's deadline: a fault must surface, never hang. */
const DEADLINE_MS = 10_000;

let server: FaultServer;
test.beforeAll(async () => {
  server = await startFaultServer({ trickleMs: 50 });
});
test.afterAll(async () => server?.close());

const cpuLoad = (path: string) => Engine.load(new CpuOps(), urlSource(`${server.url}/${path}`), { contextWindow: 64 });

/** The error code of `f`, or 'ok'; a call past the deadline fails the test. */
async function codeWithin(f: () => Promise<unknown>, ms = DEADLINE_MS): Promise<{ code: string; detail: Record<string, unknown>; ms: number }> {
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: a hang`)), ms)));
  try {
    await Promise.race([f(), late]);
    return { code: 'ok', detail: {}, ms: performance.now() - t0 };
  } catch (e) {
    if ((e as Error).message?.includes('a hang')) throw e;
    return { code: (e as { code?: string }).code ?? `untyped ${(e as Error)?.name}: ${(e as Error)?.message}`, detail: (e as { fields?: Record<string, unknown> }).fields ?? {}, ms: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
  }
}

/** Node: the fault, the code and the fields it names. */
const NODE_CASES: [string, string, Record<string, unknown>][] = [
  ['html-200', 'MODEL_FILE_MISSING', { file: 'config.json' }],
  ['status-401', 'MODEL_NOT_FOUND', {}],
  ['status-403', 'MODEL_NOT_FOUND', {}],
  ['status-404', 'MODEL_FILE_MISSING', { file: 'config.json', status: 404 }],
  ['status-500', 'MODEL_NOT_FOUND', {}],
  ['config-not-json', 'MALFORMED_FILE', { file: 'config.json' }],
  ['config-schema', 'MALFORMED_FILE', { file: 'config.json' }],
  ['tokenizer-schema', 'MALFORMED_FILE', { file: 'tokenizer.json' }],
  ['nan-norm', 'MALFORMED_WEIGHTS', { tensor: 'model.norm.weight', nan: 64 }],
  ['inf-projection', 'MALFORMED_WEIGHTS', { tensor: 'model.layers.2.self_attn.o_proj.weight', inf: 64, firstIndex: 0 }],
  ['truncated', 'TRUNCATED_FILE', { file: 'model.safetensors' }],
  ['wrong-dtype', 'UNSUPPORTED_DTYPE', { tensor: 'model.norm.weight', dtype: 'I32' }],
  ['wrong-shape', 'SHAPE_MISMATCH', { tensor: 'model.layers.0.self_attn.q_proj.weight' }],
];

test.describe('Node: network faults and corrupt folders over real sockets (CPU ops)', () => {
  test('each fault: its typed code within the deadline, then a clean load gives the clean greedy ids', async () => {
    const clean = (await (await cpuLoad('good')).generate(PROMPT, { maxTokens: 8, ignoreEos: true })).ids;
    for (const [name, code, fields] of NODE_CASES) {
      const r = await codeWithin(() => cpuLoad(name));
      expect(r.code, name).toBe(code);
      for (const [k, v] of Object.entries(fields)) expect(r.detail[k], `${name}: fields.${k}`).toBe(v);
      const again = (await (await cpuLoad('good')).generate(PROMPT, { maxTokens: 8, ignoreEos: true })).ids;
      expect(again, `after ${name}`).toEqual(clean);
    }
  });

  test('a socket dropped mid-weights resumes with Range + If-Range: byte-identical, costs only the bytes in flight', async () => {
    const N = 300_000;
    const want = server.file('good', 'model.safetensors')!;
    const before = server.log.length;
    const stream = (await urlSource(`${server.url}/drop-${N}`).openFile!('model.safetensors'))!;
    const parts: Uint8Array[] = [];
    for (let c; (c = await stream.read()); ) parts.push(c.slice());
    const got = Buffer.concat(parts);
    expect(got.byteLength).toBe(want.byteLength);
    expect(Buffer.compare(got, Buffer.from(want))).toBe(0);
    const reqs = server.log.slice(before).filter((r) => r.method === 'GET' && r.path.endsWith('/model.safetensors'));
    expect(reqs.map((r) => r.status)).toEqual([200, 206]);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(reqs[1].range ?? '')?.[1]);
    // The first response wrote N bytes before the drop; the client had received resumedAt of them.
    expect(reqs[0].bytes).toBe(N);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(N);
    // The resume asked for exactly the rest: total bytes sent = the file + what was in flight.
    expect(reqs[1].bytes).toBe(want.byteLength - resumedAt);
    expect(reqs[0].bytes + reqs[1].bytes - want.byteLength).toBe(N - resumedAt);
    // And a whole load over a dropped connection gives the clean model.
    const clean = (await (await cpuLoad('good')).generate(PROMPT, { maxTokens: 8, ignoreEos: true })).ids;
    const viaDrop = (await (await cpuLoad('drop-200000')).generate(PROMPT, { maxTokens: 8, ignoreEos: true })).ids;
    expect(viaDrop).toEqual(clean);
  });

  test('an abort during a slow download: ABORTED within the deadline, the socket is closed', async () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 300);
    const r = await codeWithin(() => Engine.load(new CpuOps(), urlSource(`${server.url}/trickle`), { contextWindow: 64, signal: ctl.signal }));
    expect(r.code).toBe('ABORTED');
    expect(r.ms).toBeLessThan(2_000);
  });
});

test('chat templates: one that does not parse is MALFORMED_FILE, one that raises is INVALID_ARGUMENT messages with its words', async () => {
  const msgs = { messages: [{ role: 'user', content: 'hi' }], add_generation_prompt: true };
  expectPopError(await caught(() => renderChatTemplate('{% for m in messages %}{{ m.content', msgs)), MalformedFileError, 'MALFORMED_FILE');
  const e = await caught(() => renderChatTemplate("{{ raise_exception('Conversation roles must alternate user/assistant') }}", msgs));
  expectPopError(e, InvalidArgumentError, 'INVALID_ARGUMENT', { argument: 'messages' });
  expect(e.message).toContain('Conversation roles must alternate');
  expect(renderChatTemplate('{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}', msgs)).toBe('<user>hi');
});

test.describe('WebGPU', () => {
  test('aborts at each load stage (device, download, upload, warm-up): ABORTED within the deadline, GPU memory back to baseline, the next load is clean', async ({ harness }) => {
    test.setTimeout(300_000); // six loads of stories260K on SwiftShader
    const r = await harness.evaluate(async (base) => {
      const pop = (globalThis as any).pop;
      const engine = new pop.api.MLCEngine();
      const start = (await engine.stats()).gpu.liveBytes;
      const greedy = async () => (await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 12, temperature: 0, ignore_eos: true })).choices[0].text;
      await engine.reload(`${base}/good`, undefined, { useCache: false });
      const clean = await greedy();
      const model = (s: any) => s.engine.weightBytes + s.engine.kvBytes;
      const loaded = model(await engine.stats());
      const out: Record<string, { code: string; ms: number; leftBytes: number; text: string }> = {};
      // Abort when the load reports a stage (progress callbacks run in the load's own task).
      // download: the slow trickle through the Cache API source, which reports every 250 ms while
      // the weights arrive (and stores nothing of an aborted file); upload: once the weights are on
      // the device, before the engine is built.
      const stages: [string, string, boolean, (t: string) => boolean][] = [
        ['device', `${base}/good`, false, (t) => t.startsWith('Starting WebGPU')],
        ['download', `${base}/trickle`, true, (t) => t.startsWith('Downloaded model.safetensors')],
        ['upload', `${base}/good`, false, (t) => t.startsWith('Loaded model.safetensors')],
        ['warm-up', `${base}/good`, false, (t) => t.startsWith('Compiling GPU kernels')],
        ['warm-up (interruptGenerate)', `${base}/good`, false, (t) => t.startsWith('Compiling GPU kernels')],
      ];
      for (const [stage, url, useCache, when] of stages) {
        const ctl = new AbortController();
        const stop = stage.includes('interruptGenerate') ? () => engine.interruptGenerate() : () => ctl.abort();
        const t0 = performance.now();
        engine.setInitProgressCallback((p: any) => when(p.text) && stop());
        const code = await pop.outcomeCode(() => engine.reload(url, undefined, { useCache, signal: ctl.signal }));
        engine.setInitProgressCallback(undefined);
        const ms = performance.now() - t0;
        const leftBytes = (await engine.stats()).gpu.liveBytes - start;
        out[stage] = { code, ms, leftBytes, text: '' };
      }
      // The next normal load after the aborted ones answers as the clean one did.
      await engine.reload(`${base}/good`, undefined, { useCache: false });
      const text = await greedy();
      for (const o of Object.values(out)) o.text = text;
      // Every live buffer is the engine's own (nothing of the aborted loads), the model's as before.
      const s = await engine.stats();
      const back = { live: s.gpu.liveBytes - start, pool: s.engine.poolBytes, model: model(s) };
      await engine.unload();
      return { clean, loaded, back, out, unloaded: (await engine.stats()).gpu.liveBytes - start };
    }, server.url);
    for (const [stage, o] of Object.entries(r.out)) {
      expect(o.code, stage).toBe('ABORTED');
      expect(o.ms, stage).toBeLessThan(DEADLINE_MS);
      expect(o.leftBytes, `${stage}: GPU bytes left by the aborted load`).toBe(0);
      expect(o.text, stage).toBe(r.clean);
    }
    expect(r.back.live).toBe(r.back.pool);
    expect(r.back.model).toBe(r.loaded);
    expect(r.unloaded).toBe(0);
  });

  test('worker API: load faults typed across the worker, no GPU memory left, a pre-aborted reload runs nothing, the next load is clean', async ({ harness }) => {
    const r = await harness.evaluate(async (base) => {
      const pop = (globalThis as any).pop;
      const code = pop.outcomeCode;
      const e = await pop.CreateWorkerEngine(`${base}/good`);
      const greedy = async () => (await e.completions.create({ prompt: 'Once upon a time', max_tokens: 12, temperature: 0, ignore_eos: true })).choices[0].text;
      const clean = await greedy();
      const loaded = await e.stats();
      const faults: Record<string, { code: string; ms: number; liveBytes: number; devices: number; engine: unknown }> = {};
      for (const c of ['config-not-json', 'tokenizer-schema', 'nan-norm', 'html-200', 'wrong-shape']) {
        const t0 = performance.now();
        const k = await code(() => e.reload(`${base}/${c}`));
        const s = await e.stats();
        faults[c] = { code: k, ms: performance.now() - t0, liveBytes: s.gpu.liveBytes, devices: s.gpu.devices, engine: s.engine };
      }
      const pre = new AbortController();
      pre.abort();
      const preAborted = await code(() => e.reload(`${base}/good`, undefined, { signal: pre.signal }));
      await e.reload(`${base}/good`);
      const after = await greedy();
      const reloaded = await e.stats();
      // Bad requests on a loaded engine: typed, and the next request is clean.
      const image404 = await code(() => e.chat.completions.create({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `${base}/img/missing.png` } }, { type: 'text', text: 'What is this?' }] }], max_tokens: 4 }));
      const imageStatus = await e.chat.completions.create({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `${base}/img/missing.png` } }] }] }).catch((x: any) => x.fields?.status);
      const noMessages = await code(() => e.chat.completions.create({ max_tokens: 4 } as any));
      const afterBad = await greedy();
      e.terminate();
      return { clean, after, afterBad, loaded, reloaded, faults, preAborted, image404, imageStatus, noMessages };
    }, server.url);
    expect(r.faults['config-not-json'].code).toBe('MALFORMED_FILE');
    expect(r.faults['tokenizer-schema'].code).toBe('MALFORMED_FILE');
    expect(r.faults['nan-norm'].code).toBe('MALFORMED_WEIGHTS');
    expect(r.faults['html-200'].code).toBe('MODEL_FILE_MISSING');
    expect(r.faults['wrong-shape'].code).toBe('SHAPE_MISMATCH');
    for (const [c, f] of Object.entries(r.faults)) {
      expect(f.ms, `${c} within its deadline`).toBeLessThan(DEADLINE_MS);
      // Nothing of the failed load (nor of the model before it) stays on the GPU: no buffer, no device.
      expect([f.liveBytes, f.devices, f.engine], c).toEqual([0, 0, null]);
    }
    expect(r.preAborted).toBe('ABORTED');
    expect(r.after).toBe(r.clean);
    expect(r.clean.length).toBeGreaterThan(10);
    // Every live buffer in the worker is the new engine's (nothing of the faults), the model's as before.
    // (Pool totals may differ from the first load by kernel-probe scratch the probe cache spares.)
    expect(r.reloaded.gpu.liveBytes).toBe(r.reloaded.engine.poolBytes);
    expect(r.reloaded.engine.weightBytes + r.reloaded.engine.kvBytes).toBe(r.loaded.engine.weightBytes + r.loaded.engine.kvBytes);
    expect(r.reloaded.gpu.devices).toBe(1);
    expect(r.image404).toBe('IMAGE_FETCH_FAILED');
    expect(r.imageStatus).toBe(404);
    expect(r.noMessages).toBe('INVALID_REQUEST');
    expect(r.afterBad).toBe(r.clean);
  });

  test('a worker killed from outside (no error event): the pending stream and later calls reject WORKER_DIED; reload starts a fresh worker', async ({ harness }) => {
    const r = await harness.evaluate(async (base) => {
      const pop = (globalThis as any).pop;
      const code = pop.outcomeCode;
      const e = await pop.CreateWorkerEngine(`${base}/good`);
      const greedy = async () => (await e.completions.create({ prompt: 'Once upon a time', max_tokens: 12, temperature: 0, ignore_eos: true })).choices[0].text;
      const clean = await greedy();
      const first = e.worker;
      let deltas = 0;
      const t0 = performance.now();
      const pending = code(async () => {
        for await (const c of await e.completions.create({ prompt: 'Once upon a time', max_tokens: 400, ignore_eos: true, stream: true })) if (c.choices[0].text && ++deltas === 2) first.terminate(); // from outside: not e.terminate()
      });
      const inFlight = await pending;
      const ms = performance.now() - t0;
      const later = await code(() => greedy());
      e.setHeartbeat(pop.api.DEFAULT_HEARTBEAT); // a fresh worker's load may keep its thread busy past 1 s here
      await e.reload(`${base}/good`);
      const after = await greedy();
      const fresh = e.worker !== first;
      e.terminate();
      return { clean, inFlight, later, after, fresh, ms, deltas };
    }, server.url);
    expect(r.deltas).toBe(2);
    expect(r.inFlight).toBe('WORKER_DIED');
    expect(r.ms).toBeLessThan(DEADLINE_MS);
    expect(r.later).toBe('WORKER_DIED');
    expect(r.fresh).toBe(true);
    expect(r.after).toBe(r.clean);
  });

  /** GETs of the good folder's weights that reached the fault server since `from` (checkFit's HEADs not counted). */
  const weightGets = (from: number) => server.log.slice(from).filter((x) => x.method === 'GET' && x.path === '/good/model.safetensors').length;

  test('MLCEngine: the device destroyed mid-decode and mid-prefill: DEVICE_LOST (never ABORTED); the next request reloads on a new device from the Cache API, clean text, memory back', async ({ harness }) => {
    const logStart = server.log.length;
    const r = await harness.evaluate(async (base) => {
      const pop = (globalThis as any).pop;
      const code = pop.outcomeCode;
      const engine = new pop.api.MLCEngine();
      const model = `${base}/good`;
      await engine.deleteCachedModel(model);
      // GPU bytes are counted over the whole page: figures below are relative to this baseline.
      const { liveBytes: start, devices: startDevices } = (await engine.stats()).gpu;
      await engine.reload(model);
      const run = async (prompt: string, maxTokens: number, onDelta?: (n: number) => void) => {
        let text = '', n = 0;
        for await (const c of await engine.completions.create({ prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true })) {
          const d = c.choices[0]?.text ?? '';
          text += d;
          if (d) onDelta?.(++n);
        }
        return text;
      };
      const live = async () => (await engine.stats()).gpu.liveBytes - start;
      const clean = await run('Once upon a time', 12);
      const loaded = await live();
      // Mid-decode: destroyed from the token stream, after 3 tokens (the fault-injection hook calls GPUDevice.destroy()).
      const decode = await code(() => run('Once upon a time', 40, (n) => n === 3 && void engine.injectFault({ kind: 'device-lost' })));
      const lostBytes = await live();
      const afterDecode = await run('Once upon a time', 12);
      const recovered = await live();
      const recoveredPool = (await engine.stats()).engine.poolBytes;
      // Mid-prefill: a long prompt, the device destroyed as soon as the prefill has started.
      const long = Array.from({ length: 30 }, () => 'Once upon a time there was a little girl.').join(' ');
      let deltas = 0;
      const prefill = await code(() => {
        const p = run(long, 8, () => deltas++);
        setTimeout(() => void engine.injectFault({ kind: 'device-lost' }), 0);
        return p;
      });
      // A destroyed device, then reload (instead of a request): a new device, from the cache too.
      await engine.injectFault({ kind: 'device-lost' });
      await engine.reload(model);
      const afterPrefill = await run('Once upon a time', 12);
      const s = await engine.stats();
      const end = { liveBytes: s.gpu.liveBytes - start, pool: s.engine.poolBytes, devices: s.gpu.devices - startDevices };
      await engine.unload();
      return { clean, decode, prefill, deltas, afterDecode, afterPrefill, loaded, lostBytes, recovered, recoveredPool, end, unloaded: await live() };
    }, server.url);
    expect(r.decode).toBe('DEVICE_LOST');
    expect(r.prefill).toBe('DEVICE_LOST');
    expect(r.deltas).toBe(0); // lost before the first token
    expect(r.afterDecode).toBe(r.clean);
    expect(r.afterPrefill).toBe(r.clean);
    expect(r.clean.length).toBeGreaterThan(10);
    // The lost device's buffers left the count; the reload made as many as the first load.
    expect(r.lostBytes).toBe(0);
    // After each recovery every live buffer is the new engine's.
    expect(r.recovered).toBe(r.recoveredPool);
    expect(r.end.liveBytes).toBe(r.end.pool);
    expect(r.end.devices).toBe(1); // the lost ones are gone, one new device (other engines of this shared page not counted)
    // Reloaded from the Cache API: the weights were downloaded once, by the first load.
    expect(weightGets(logStart)).toBe(1);
    expect(r.loaded).toBeGreaterThan(0);
    expect(r.unloaded).toBe(0); // unload frees everything the engine made (its device with it)
  });

  test('in the worker (CreateWebWorkerMLCEngine): a device destroyed mid-decode reaches the page as DEVICE_LOST through Comlink; the next call recovers from the cache', async ({ harness }) => {
    const logStart = server.log.length;
    const r = await harness.evaluate(async (base) => {
      const pop = (globalThis as any).pop;
      const code = pop.outcomeCode;
      const model = `${base}/good`;
      await pop.deleteCachedModel(model); // the page and its worker share the origin's Cache API
      const worker = new Worker(new URL('/test/api_worker.ts', location.href), { type: 'module' }); // the app's worker: WebWorkerMLCEngineHandler
      const e = await pop.api.CreateWebWorkerMLCEngine(worker, model);
      const greedy = async () => (await e.completions.create({ prompt: 'Once upon a time', max_tokens: 12, temperature: 0, ignore_eos: true })).choices[0].text;
      const clean = await greedy();
      const loaded = await e.stats();
      let deltas = 0;
      let error: any = null;
      try {
        for await (const c of await e.completions.create({ prompt: 'Once upon a time', max_tokens: 40, temperature: 0, ignore_eos: true, stream: true })) if (c.choices[0]?.text && ++deltas === 3) void e.injectFault({ kind: 'device-lost' });
      } catch (x) {
        error = x;
      }
      const lost = await e.stats();
      const after = await greedy();
      const back = await e.stats();
      // forwardTokensAndSample recovers too.
      await e.injectFault({ kind: 'device-lost' });
      await new Promise((res) => setTimeout(res, 50));
      const viaForward = await code(() => e.forwardTokensAndSample([1, 403, 407], true));
      const badFault = await code(() => e.injectFault({ kind: 'meltdown' }));
      const end = await e.stats();
      worker.terminate();
      return {
        clean, after, deltas, code: error?.code, typed: error instanceof pop.errors.DeviceLostError, reason: error?.fields?.reason,
        lost: lost.gpu.liveBytes, back: [back.gpu.liveBytes, back.engine.poolBytes, back.gpu.devices], loaded: loaded.engine.weightBytes + loaded.engine.kvBytes,
        backModel: back.engine.weightBytes + back.engine.kvBytes, viaForward, badFault, end: [end.gpu.liveBytes, end.engine.poolBytes, end.gpu.devices],
      };
    }, server.url);
    expect(r.code).toBe('DEVICE_LOST');
    expect(r.typed).toBe(true);
    expect(r.reason).toBe('destroyed');
    expect(r.deltas).toBe(3);
    expect(r.after).toBe(r.clean);
    expect(r.lost).toBe(0); // the lost device's buffers are gone
    expect(r.back[0]).toBe(r.back[1]);
    expect(r.back[2]).toBe(1);
    expect(r.backModel).toBe(r.loaded);
    expect(r.viaForward).toBe('ok');
    expect(r.badFault).toBe('INVALID_REQUEST');
    expect(r.end[0]).toBe(r.end[1]);
    expect(r.end[2]).toBe(1);
    expect(weightGets(logStart)).toBe(1); // two recoveries, no second download
  });

  test('a worker alive but stuck (a busy loop): the heartbeat rejects the pending stream and later calls with WORKER_UNRESPONSIVE; reload starts a fresh worker', async ({ harness }) => {
    const r = await harness.evaluate(async (base) => {
      const pop = (globalThis as any).pop;
      const code = pop.outcomeCode;
      const e = await pop.CreateWorkerEngine(`${base}/good`);
      const greedy = async () => (await e.completions.create({ prompt: 'Once upon a time', max_tokens: 12, temperature: 0, ignore_eos: true })).choices[0].text;
      const clean = await greedy();
      const badHeartbeat = await code(async () => e.setHeartbeat({ intervalMs: 0, timeoutMs: 10 }));
      e.setHeartbeat({ intervalMs: 100, timeoutMs: 1_000 });
      const first = e.worker;
      let deltas = 0;
      const t0 = performance.now();
      // The worker's thread busy-loops for 60 s from the 2nd token on: far past the deadline.
      const inFlight = await code(async () => {
        for await (const c of await e.completions.create({ prompt: 'Once upon a time', max_tokens: 400, ignore_eos: true, stream: true })) if (c.choices[0]?.text && ++deltas === 2) await e.injectFault({ kind: 'block-thread', ms: 60_000 });
      });
      const ms = performance.now() - t0;
      const later = await code(() => greedy());
      e.setHeartbeat(pop.api.DEFAULT_HEARTBEAT); // a fresh worker's load may keep its thread busy past 1 s here
      await e.reload(`${base}/good`);
      const after = await greedy();
      const fresh = e.worker !== first;
      e.terminate();
      return { clean, badHeartbeat, inFlight, later, after, fresh, ms, deltas };
    }, server.url);
    expect(r.badHeartbeat).toBe('INVALID_REQUEST');
    expect(r.deltas).toBe(2);
    expect(r.inFlight).toBe('WORKER_UNRESPONSIVE');
    expect(r.ms).toBeLessThan(DEADLINE_MS);
    expect(r.later).toBe('WORKER_UNRESPONSIVE');
    expect(r.fresh).toBe(true);
    expect(r.after).toBe(r.clean);
  });
});
