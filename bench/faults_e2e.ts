// `npm run bench:faults` (part of `npm run bench:e2e`), run in the page by
// bench/faults_e2e.bench.ts: random aborts across load, prefill and decode from ten concurrent
// clients, through the public API only (CreateWorkerEngine, AbortSignal, interruptGenerate,
// stats()). It asserts nothing itself; the .bench.ts file fails on a hang, an untyped error, a
// leak or a mismatch.
//
// Two engines, each in its own worker (one realm each, so a worker's GPU byte count is that
// engine's alone):
//   serve:  loaded once; every client's prefill and decode requests go through its one queue,
//           ten at a time. prefill: a ~60-token prompt, aborted (AbortSignal) at a random time
//           in [0, its solo prefill time) after the request starts (its stream resolves when it
//           has its turn). stories260K's prompt is one prefill chunk, and the engine checks
//           aborts between chunks and tokens, so such an abort ends the request before its first
//           token or after it: both are counted. decode: aborted after a random 1..6 tokens by
//           AbortSignal or by interruptGenerate (engine-wide: it ends whatever request runs then).
//   loader: a reload aborted at a random time in its first `loadWindowMs` (AbortSignal or
//           interruptGenerate), through the stages a load reports (device, the Cache API read of
//           each file, warm-up). One load at a time (the clients take turns), so that an
//           interruptGenerate meets the load it is meant for.
// Every `checkEvery` aborts all clients stop (a barrier) and: the serving engine's live GPU
// bytes equal its pool (nothing else is alive), its weights + KV bytes are those of the first
// load, and a greedy request equals the reference (the first load's); the loader has no GPU
// byte and no device left. At the end the loader loads fully and must give the reference too.
import { CreateWorkerEngine, type WebWorkerMLCEngine } from '../src/index.ts';

export type Stage = 'load' | 'prefill' | 'decode';

export interface FaultBenchOptions {
  aborts: number;
  clients: number;
  seed: number;
  /** Relative frequency of each stage. */
  weights: Record<Stage, number>;
  /** A call that has not settled by then is a hang. */
  opDeadlineMs: number;
  checkEvery: number;
  loadWindowMs: number;
  model: string;
}

export interface FaultBenchReport {
  aborts: number;
  clients: number;
  seconds: number;
  /** Aborts issued, by the stage they were aimed at. */
  issued: Record<Stage, number>;
  /** What each aimed abort ended as: a typed code, or finish_reason: abort (with where it landed), or completed first. */
  outcomes: Record<Stage, Record<string, number>>;
  /** Loads: the last stage the loader reported when the abort was sent. */
  loadStageAtAbort: Record<string, number>;
  /** Every typed error code seen, over all calls. */
  codes: Record<string, number>;
  untyped: string[];
  hangs: string[];
  leaks: string[];
  mismatches: string[];
  checks: number;
  /** Mean and max wall time of one op, by stage (ms). */
  opMs: Record<Stage, { mean: number; max: number }>;
  reference: string;
}

const PROMPT = 'Once upon a time';
const LONG = Array.from({ length: 6 }, () => 'Once upon a time there was a little girl.').join(' ');

class Deadline extends Error {}

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Deadline(`no answer within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const inc = (m: Record<string, number>, k: string) => void (m[k] = (m[k] ?? 0) + 1);

export async function faultBench(o: FaultBenchOptions): Promise<FaultBenchReport> {
  const t0 = performance.now();
  const stages: Stage[] = ['load', 'prefill', 'decode'];
  const report: FaultBenchReport = {
    aborts: o.aborts, clients: o.clients, seconds: 0, issued: { load: 0, prefill: 0, decode: 0 }, outcomes: { load: {}, prefill: {}, decode: {} },
    loadStageAtAbort: {}, codes: {}, untyped: [], hangs: [], leaks: [], mismatches: [], checks: 0, opMs: { load: { mean: 0, max: 0 }, prefill: { mean: 0, max: 0 }, decode: { mean: 0, max: 0 } }, reference: '',
  };
  const opTotal: Record<Stage, number> = { load: 0, prefill: 0, decode: 0 };
  /** A rejection's code (typed), or it is recorded as untyped / a hang. */
  const codeOf = (e: unknown, what: string): string => {
    if (e instanceof Deadline) {
      report.hangs.push(`${what}: ${e.message}`);
      return 'HANG';
    }
    const code = (e as { code?: string })?.code;
    if (typeof code === 'string') {
      inc(report.codes, code);
      return code;
    }
    report.untyped.push(`${what}: ${(e as Error)?.name}: ${(e as Error)?.message}`);
    return 'UNTYPED';
  };

  const serve = await CreateWorkerEngine(o.model);
  const loader = await CreateWorkerEngine(o.model);
  const greedy = async (e: WebWorkerMLCEngine) => (await within(e.completions.create({ prompt: PROMPT, max_tokens: 12, temperature: 0, ignore_eos: true }), o.opDeadlineMs)).choices[0].text;
  const reference = await greedy(serve);
  report.reference = reference;
  const loaderFirst = await greedy(loader);
  if (loaderFirst !== reference) report.mismatches.push(`two fresh loads disagree: ${JSON.stringify(loaderFirst)} vs ${JSON.stringify(reference)}`);
  await loader.unload();
  const first = await serve.stats();
  const modelBytes = first.engine!.weightBytes + first.engine!.kvBytes;
  let loaderStage = 'queued';
  loader.setInitProgressCallback((p) => {
    const t = p.text;
    loaderStage = t.startsWith('Starting WebGPU') ? 'device' : t.startsWith('From cache') || t.startsWith('Downloaded') ? 'download (Cache API)' : t.startsWith('Loaded') ? 'upload' : t.startsWith('Compiling') ? 'warm-up' : t.startsWith('Finish') ? 'done' : t;
  });
  // How long a prefill of LONG takes here: prefill aborts land at random times inside it.
  const tp = performance.now();
  await serve.completions.create({ prompt: LONG, max_tokens: 1, temperature: 0 });
  const prefillMs = performance.now() - tp;

  let loadTurn: Promise<unknown> = Promise.resolve();
  function loadOp(rand: () => number, what: string): Promise<string> {
    const mine = loadTurn.then(() => abortedLoad(rand, what));
    loadTurn = mine;
    return mine;
  }
  async function abortedLoad(rand: () => number, what: string): Promise<string> {
    const ctl = new AbortController();
    const byInterrupt = rand() < 0.5;
    loaderStage = 'queued';
    const timer = setTimeout(() => {
      inc(report.loadStageAtAbort, loaderStage);
      if (byInterrupt) loader.interruptGenerate();
      else ctl.abort();
    }, rand() * o.loadWindowMs);
    try {
      await within(loader.reload(o.model, undefined, { signal: ctl.signal }), o.opDeadlineMs);
      clearTimeout(timer);
      // Finished before the abort came: unload, so the loader's baseline stays empty.
      await within(loader.unload(), o.opDeadlineMs);
      return 'completed';
    } catch (e) {
      clearTimeout(timer);
      return codeOf(e, what);
    }
  }

  /** A streamed request, aborted by `arm` (given the token count so far); the outcome names where the abort landed. */
  async function requestOp(prompt: string, maxTokens: number, what: string, arm: (ctl: AbortController, tokens: number) => void, onStart?: (ctl: AbortController) => void): Promise<string> {
    const ctl = new AbortController();
    let tokens = 0;
    try {
      const chunks = await within(serve.completions.create({ prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true, signal: ctl.signal }), o.opDeadlineMs);
      onStart?.(ctl);
      let finish: string | null = null;
      await within((async () => {
        for await (const c of chunks) {
          if (c.choices[0]?.text) arm(ctl, ++tokens);
          finish = c.choices[0]?.finish_reason ?? finish;
        }
      })(), o.opDeadlineMs);
      if (finish === 'abort') return tokens === 0 ? 'abort before the first token' : `abort after ${tokens < 4 ? tokens : '4+'} tokens`;
      return `completed (${finish})`;
    } catch (e) {
      const code = codeOf(e, what);
      return code === 'ABORTED' ? 'ABORTED (queued)' : code;
    }
  }

  async function op(stage: Stage, rand: () => number, what: string): Promise<string> {
    if (stage === 'load') return loadOp(rand, what);
    if (stage === 'prefill') {
      const delay = rand() * prefillMs;
      return requestOp(LONG, 3, what, () => {}, (ctl) => void setTimeout(() => ctl.abort(), delay));
    }
    const at = 1 + Math.floor(rand() * 6);
    const byInterrupt = rand() < 0.5;
    return requestOp(PROMPT, 12, what, (ctl, n) => {
      if (n === at) byInterrupt ? serve.interruptGenerate() : ctl.abort();
    });
  }

  async function check(label: string): Promise<void> {
    report.checks++;
    try {
      const s = await within(serve.stats(), o.opDeadlineMs);
      const e = s.engine!;
      if (s.gpu.liveBytes !== e.poolBytes || e.weightBytes + e.kvBytes !== modelBytes || s.gpu.devices !== 1) report.leaks.push(`${label}: serving engine live ${s.gpu.liveBytes} B, pool ${e.poolBytes} B, model ${e.weightBytes + e.kvBytes} B (first load ${modelBytes}), ${s.gpu.devices} devices`);
      const l = await within(loader.stats(), o.opDeadlineMs);
      if (l.gpu.liveBytes !== 0 || l.gpu.devices !== 0 || l.engine !== null) report.leaks.push(`${label}: loader keeps ${l.gpu.liveBytes} B on ${l.gpu.devices} devices after aborted loads`);
      const text = await greedy(serve);
      if (text !== reference) report.mismatches.push(`${label}: ${JSON.stringify(text)}`);
    } catch (e) {
      report.mismatches.push(`${label}: the check failed: ${codeOf(e, label)}`);
    }
  }

  // Rounds of `checkEvery` aborts, `clients` at a time, each client with its own random stream.
  const weightSum = stages.reduce((a, s) => a + o.weights[s], 0);
  const rands = Array.from({ length: o.clients }, (_, c) => {
    let x = (o.seed * 7919 + c * 104729) >>> 0 || 1;
    return () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  });
  let done = 0;
  while (done < o.aborts) {
    const roundEnd = Math.min(o.aborts, done + o.checkEvery);
    await Promise.all(rands.map(async (rand, c) => {
      while (done < roundEnd) {
        const i = done++;
        let r = rand() * weightSum;
        const stage = stages.find((s) => (r -= o.weights[s]) < 0) ?? 'decode';
        report.issued[stage]++;
        const ts = performance.now();
        const out = await op(stage, rand, `abort ${i} (${stage}, client ${c})`);
        const ms = performance.now() - ts;
        opTotal[stage] += ms;
        report.opMs[stage].max = Math.max(report.opMs[stage].max, ms);
        inc(report.outcomes[stage], out);
        // Ten clients do not all fire in the same instant.
        await sleep(rand() * 5);
      }
    }));
    await check(`after ${roundEnd} aborts`);
    // Progress, for a long run (the page's console).
    console.log(`[faults bench] ${roundEnd} aborts, ${((performance.now() - t0) / 1000).toFixed(0)} s: ${JSON.stringify({ outcomes: report.outcomes, hangs: report.hangs.length, untyped: report.untyped.length, leaks: report.leaks.length, mismatches: report.mismatches.length })}`);
  }
  for (const s of stages) report.opMs[s].mean = report.issued[s] ? opTotal[s] / report.issued[s] : 0;

  // The loader, after every aborted load, loads fully and answers as a fresh engine.
  try {
    loader.setInitProgressCallback(undefined);
    await within(loader.reload(o.model), o.opDeadlineMs);
    const text = await greedy(loader);
    if (text !== reference) report.mismatches.push(`loader after the aborted loads: ${JSON.stringify(text)}`);
    const l = await loader.stats();
    if (l.gpu.liveBytes !== l.engine!.poolBytes || l.engine!.weightBytes + l.engine!.kvBytes !== modelBytes) report.leaks.push(`loader reloaded: live ${l.gpu.liveBytes} B, pool ${l.engine!.poolBytes} B`);
    await serve.unload();
    await loader.unload();
    const [a, b] = [await serve.stats(), await loader.stats()];
    if (a.gpu.liveBytes || b.gpu.liveBytes || a.gpu.devices || b.gpu.devices) report.leaks.push(`after unload: ${a.gpu.liveBytes} + ${b.gpu.liveBytes} B, ${a.gpu.devices} + ${b.gpu.devices} devices`);
  } catch (e) {
    report.mismatches.push(`final load: ${codeOf(e, 'final load')}`);
  }
  serve.terminate();
  loader.terminate();
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}
