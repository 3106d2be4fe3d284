// Weight storage speeds on this adapter, run in the page by bench/storage.bench.ts
// (`npm run bench:storage`): reported, never asserted (the correctness of every storage kernel
// is in test/kernels.spec.ts, test/quant.spec.ts and test/f16.spec.ts).
//   kernels: per shape, each f32 matmul variant against the same variant over f16 storage, and
//            the q4 / q4-asym kernels: ms, GFLOP/s, and for GEMV (M = 1) the weight bytes read per
//            second; variants timed interleaved, best of `rounds`.
//   engine:  prefill / decode tok/s and weight MiB of one random-weight model loaded as f32, f16,
//            'auto', q4 and q4 with the LM head, all loaded at once and run in turns.
import { createGpuEngine, describeGpuEngine } from '../src/engine/create.ts';
import type { Engine, EngineOptions } from '../src/engine/engine.ts';
import { acquireGpu } from '../src/gpu/device.ts';
import { matmul } from '../src/kernels/matmul.ts';
import { matmulF16 } from '../src/kernels/matmul_f16.ts';
import { matmulQ4 } from '../src/kernels/matmul_q4.ts';
import { weightTensors } from '../src/model/loader.ts';
import { randomModelFiles } from '../src/model/random_model.ts';
import { memorySource } from '../src/model/source.ts';
import { GpuOps } from '../src/ops/gpu_ops.ts';

/** Deterministic values in [-1, 1). */
function rand(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0, s = 1; i < n; i++) (s = (Math.imul(s, 1664525) + 1013904223) >>> 0), (a[i] = s / 2 ** 31 - 1);
  return a;
}

interface Run { name: string; run: () => void; weightBytes: number; against?: string }

export async function kernelSpeeds(shapes: [number, number, number][], rounds = 5): Promise<Record<string, string>> {
  const g = new GpuOps(await acquireGpu(), { prefill: 'regblock', decode: 'matvec' }, 16);
  await g.probeVariants({ useCache: false });
  const out: Record<string, string> = { probe: `${g.matmulVariants.prefill} / ${g.matmulVariants.decode}` };
  for (const [m, n, k] of shapes) {
    const wf = rand(n * k);
    const x = g.upload('x', rand(m * k)), y = g.alloc('y', m * n);
    const w32 = g.upload('w', wf), w16 = g.upload('w16', wf, { half: true });
    const wq = g.upload('wq', wf, { quant: { scheme: 'q4', cols: k } }), wa = g.upload('wa', wf, { quant: { scheme: 'q4-asym', cols: k } });
    const args = (w: GPUBuffer) => ({ out: y, x, w, bias: null, m, n, k, accumulate: false, xOffset: 0, yOffset: 0 });
    const pairs = m === 1 ? [['matvec', 'matvec_f16w'], ['matvec_wg', 'matvec_wg_f16w']] : [['regblock', 'regblock_f16w'], ['tiled', 'tiled_f16w']];
    const runs: Run[] = pairs.flatMap(([f32, f16]): Run[] => [
      { name: f32, run: () => matmul(g.ctx, g.matmulVariants, args(w32), f32), weightBytes: n * k * 4 },
      { name: f16, run: () => matmulF16(g.ctx, g.matmulVariants, args(w16), g.halfInfo(w16)!, false, f16), weightBytes: n * k * 2, against: f32 },
    ]);
    runs.push(
      { name: 'q4', run: () => matmulQ4(g.ctx, args(wq), g.quantInfo(wq)!), weightBytes: g.quantInfo(wq)!.words * 4, against: pairs[0][0] },
      { name: 'q4-asym', run: () => matmulQ4(g.ctx, args(wa), g.quantInfo(wa)!), weightBytes: g.quantInfo(wa)!.words * 4, against: pairs[0][0] },
    );
    const reps = m === 1 ? Math.max(2, Math.round(2e7 / (n * k))) : 1;
    const best = new Map(runs.map((r) => [r.name, Infinity]));
    for (const r of runs) r.run();
    await g.sync();
    for (let round = 0; round < rounds; round++) {
      for (const r of runs) {
        const t0 = performance.now();
        for (let j = 0; j < reps; j++) r.run();
        await g.sync();
        best.set(r.name, Math.min(best.get(r.name)!, (performance.now() - t0) / reps));
      }
    }
    for (const r of runs) {
      const ms = best.get(r.name)!;
      out[`${m}x${n}x${k} ${r.name}`] = `${ms.toFixed(2)} ms, ${((2 * m * n * k) / ms / 1e6).toFixed(2)} GFLOP/s`
        + (m === 1 ? `, ${(r.weightBytes / ms / 1e6).toFixed(2)} GB/s weights (${(r.weightBytes / 2 ** 20).toFixed(1)} MiB)` : '')
        + (r.against ? `, x${(best.get(r.against)! / ms).toFixed(2)} vs ${r.against}` : '');
    }
    for (const b of [x, y, w32, w16, wq, wa]) g.free(b);
  }
  g.destroy();
  return out;
}

const ENGINE_SETUPS: [string, EngineOptions][] = [
  ['f32', { weightDtype: 'f32' }],
  ['f16', { weightDtype: 'f16' }],
  ['auto', { weightDtype: 'auto' }],
  ['q4', { quantization: 'q4' }],
  ['q4 + LM head', { quantization: 'q4', quantizeLmHead: true }],
];

export async function engineSpeeds(config: Record<string, any>, rounds = 3): Promise<Record<string, unknown>> {
  const files = randomModelFiles(config, { seed: 3, dtype: 'BF16' });
  const prompt = Array.from({ length: 64 }, (_, i) => 3 + ((i * 7919) % (config.vocab_size - 3)));
  const engines: Engine<GPUBuffer>[] = [];
  const out: Record<string, { decodeTokS: number; prefillTokS: number; weightMiB: number; weightDtype: string; variants: unknown }> = {};
  for (const [label, opts] of ENGINE_SETUPS) {
    const e = await createGpuEngine(memorySource(files), { contextWindow: 256, ...opts });
    engines.push(e);
    const d = describeGpuEngine(e);
    const bytes = [...new Set(weightTensors(e.weights))].reduce((a, t) => a + t.size, 0);
    out[label] = { decodeTokS: 0, prefillTokS: 0, weightMiB: +(bytes / 2 ** 20).toFixed(1), weightDtype: String(d.weightDtype), variants: d.variants };
  }
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < engines.length; i++) {
      const r = await engines[i].generate(prompt, { maxTokens: 17, ignoreEos: true, pop: 'off' });
      const o = out[ENGINE_SETUPS[i][0]];
      o.decodeTokS = Math.max(o.decodeTokS, +r.stats.decodeTokensPerS.toFixed(2));
      o.prefillTokS = Math.max(o.prefillTokS, +r.stats.prefillTokensPerS.toFixed(1));
    }
  }
  for (const e of engines) e.unload();
  return out;
}
