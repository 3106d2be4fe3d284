// Random aborts across load, prefill and decode, run in the page on the real adapter: after
// each, the next request must give the same tokens as a fresh engine, and the GPU bytes in
// use must be back at their baseline (nothing leaks, nothing wedges).
import { acquireGpu } from '../src/gpu/device.ts';
import { GpuOps } from '../src/ops/gpu_ops.ts';
import { Engine } from '../src/engine/engine.ts';
import { urlSource } from '../src/model/source.ts';
import { AbortError } from '../src/errors.ts';

export interface AbortReport {
  rounds: number;
  aborted: Record<string, number>;
  completed: Record<string, number>;
  mismatches: number;
  leaks: number;
  otherErrors: string[];
}

export async function abortStress(rounds: number, seed = 1): Promise<AbortReport> {
  let s = seed >>> 0 || 1;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const gpu = await acquireGpu();
  const ops = new GpuOps(gpu, { prefill: 'regblock', decode: 'matvec' }, 16);
  const source = urlSource('/models/stories260K');
  const opts = { prefillChunk: 16, contextWindow: 256 };
  const engine = await Engine.load(ops, source, opts);
  const prompt = [1, ...Array.from({ length: 70 }, (_, i) => 3 + ((i * 37) % 500))];
  const want = (await engine.generate(prompt, { maxTokens: 8, ignoreEos: true })).ids;
  const baseline = ops.pool.bytesInUse;
  const report: AbortReport = { rounds, aborted: {}, completed: {}, mismatches: 0, leaks: 0, otherErrors: [] };
  const count = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

  for (let i = 0; i < rounds; i++) {
    const stage = ['load', 'prefill', 'decode'][Math.floor(rand() * 3)];
    const ctl = new AbortController();
    try {
      if (stage === 'load') {
        setTimeout(() => ctl.abort(), rand() * 40);
        const other = await Engine.load(ops, source, { ...opts, signal: ctl.signal });
        other.unload();
      } else if (stage === 'prefill') {
        // Abort after a random number of event-loop turns: lands between prefill chunks.
        const turns = Math.floor(rand() * 5);
        const p = engine.generate(prompt, { maxTokens: 8, ignoreEos: true, signal: ctl.signal });
        for (let t = 0; t < turns; t++) await new Promise((r) => setTimeout(r, 0));
        ctl.abort();
        await p;
      } else {
        // Abort from the token callback after a random number of tokens.
        const at = 1 + Math.floor(rand() * 7);
        let seen = 0;
        await engine.generate(prompt, { maxTokens: 8, ignoreEos: true, signal: ctl.signal, onToken: () => void (++seen === at && ctl.abort()) });
      }
      count(report.completed, stage);
    } catch (e) {
      if (e instanceof AbortError) count(report.aborted, stage);
      else report.otherErrors.push(`${stage}: ${(e as Error).message}`);
    }
    const next = (await engine.generate(prompt, { maxTokens: 8, ignoreEos: true })).ids;
    if (next.join() !== want.join()) report.mismatches++;
    // Compared in the same state as the baseline: one finished request on sequence 0.
    if (ops.pool.bytesInUse !== baseline) report.leaks++;
  }
  engine.unload();
  return report;
}
