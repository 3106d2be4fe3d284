// Opt-in (POP_LLM_BENCH=1): int4 vs f32 speeds on this adapter, reported, not asserted.
// Kernels: GEMM GFLOP/s at M=512, N=1536, K=576 (regblock vs regblock_q4); GEMV weight GB/s at
// SmolLM2-135M decode shapes (matvec vs matvec_q4). Engine: decode tok/s of a random-weight
// SmolLM2-135M, f32 vs q4 (projections) vs q4 + LM head. Variants are timed interleaved, best of 6.
import { readFileSync } from 'node:fs';
import { test } from './fixtures.ts';

const SMOL = JSON.parse(readFileSync(new URL('../configs/HuggingFaceTB__SmolLM2-135M-Instruct/config.json', import.meta.url), 'utf8'));

test.skip(!process.env.POP_LLM_BENCH, 'benchmark: set POP_LLM_BENCH=1');
test.setTimeout(900_000);

test('q4 vs f32 matmul kernels', async ({ harness }) => {
  const res = await harness.evaluate(async () => {
    const { GpuOps } = await import('/src/ops/gpu_ops.ts' as string);
    const { acquireGpu } = await import('/src/gpu/device.ts' as string);
    const { matmul } = await import('/src/kernels/matmul.ts' as string);
    const { matmulQ4 } = await import('/src/kernels/matmul_q4.ts' as string);
    const g = new GpuOps(await acquireGpu(), { prefill: 'regblock', decode: 'matvec' }, 16);
    const rand = (n: number) => { const a = new Float32Array(n); let s = 1; for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; a[i] = s / 2 ** 31 - 1; } return a; };
    const out: Record<string, string> = {};
    for (const [m, n, k] of [[512, 1536, 576], [1, 3072, 576], [1, 576, 1536], [1, 960, 576], [1, 49152, 576]]) {
      const x = g.upload('x', rand(m * k)), y = g.alloc('y', m * n), wf = rand(n * k);
      const args = (w: GPUBuffer) => ({ out: y, x, w, bias: null, m, n, k, accumulate: false, xOffset: 0, yOffset: 0 });
      const f32v = m === 1 ? 'matvec' : 'regblock';
      const w32 = g.upload('w', wf), wq = g.upload('wq', wf, { quant: { scheme: 'q4', cols: k } }), wa = g.upload('wa', wf, { quant: { scheme: 'q4-asym', cols: k } });
      const runs: [string, () => void, number][] = [
        [`f32 ${f32v}`, () => matmul(g.ctx, { prefill: f32v, decode: f32v }, args(w32), f32v), n * k * 4],
        ['q4', () => matmulQ4(g.ctx, args(wq), g.quantInfo(wq)), g.quantInfo(wq).words * 4],
        ['q4-asym', () => matmulQ4(g.ctx, args(wa), g.quantInfo(wa)), g.quantInfo(wa).words * 4],
      ];
      const reps = m === 1 ? Math.max(2, Math.round(2e7 / (n * k))) : 1;
      const best = runs.map(() => Infinity);
      for (const [, r] of runs) r();
      await g.sync();
      for (let round = 0; round < 6; round++) {
        for (let i = 0; i < runs.length; i++) {
          const t0 = performance.now();
          for (let j = 0; j < reps; j++) runs[i][1]();
          await g.sync();
          best[i] = Math.min(best[i], (performance.now() - t0) / reps);
        }
      }
      runs.forEach(([name, , bytes], i) => {
        const ms = best[i];
        out[`${m}x${n}x${k} ${name}`] = `${ms.toFixed(2)} ms, ${((2 * m * n * k) / ms / 1e6).toFixed(2)} GFLOP/s` + (m === 1 ? `, ${(bytes / ms / 1e6).toFixed(2)} GB/s weights (${(bytes / 2 ** 20).toFixed(1)} MiB)` : '') + (i ? `, x${(best[0] / ms).toFixed(2)} vs f32` : '');
      });
      for (const b of [x, y, w32, wq, wa]) g.free(b);
    }
    return out;
  });
  console.log(JSON.stringify(res, null, 1));
});

test('q4 vs f32 engine: random SmolLM2-135M decode tok/s', async ({ harness }) => {
  const res = await harness.evaluate(async (config) => {
    const pop = (globalThis as any).pop;
    const files = pop.randomModelFiles(config, { seed: 3, dtype: 'BF16' });
    const prompt = Array.from({ length: 64 }, (_, i) => 3 + ((i * 7919) % 40000));
    const setups = [['f32', {}], ['q4', { quantization: 'q4' }], ['q4 + LM head', { quantization: 'q4', quantizeLmHead: true }]] as const;
    // All three loaded at once and run in turns, so load drift on a shared machine hits them alike.
    const engines: any[] = [];
    const out: Record<string, any> = {};
    for (const [label, opts] of setups) {
      const e = await pop.createGpuEngine(pop.memorySource(files), { contextWindow: 256, ...opts });
      engines.push(e);
      out[label] = { decodeTokS: 0, prefillTokS: 0, weightMiB: 0, variants: pop.describeGpuEngine(e).variants };
    }
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < engines.length; i++) {
        const r = await engines[i].generate(prompt, { maxTokens: 17, ignoreEos: true, pop: 'off' });
        const o = out[setups[i][0]];
        o.decodeTokS = Math.max(o.decodeTokS, +r.stats.decodeTokensPerS.toFixed(2));
        o.prefillTokS = Math.max(o.prefillTokS, +r.stats.prefillTokensPerS.toFixed(1));
      }
    }
    engines.forEach((e, i) => {
      const w = e.weights;
      const all = [w.embed, w.finalNorm, w.lmHead, w.deepKv, w.deepKvBias, ...w.layers.flatMap((l: any) => Object.values(l))];
      out[setups[i][0]].weightMiB = +([...new Set(all.filter(Boolean))] as GPUBuffer[]).reduce((a, t) => a + t.size / 2 ** 20, 0).toFixed(1);
      e.unload();
    });
    return out;
  }, SMOL);
  console.log(JSON.stringify(res));
});
