// The per-model kernel probe (src/ops/kernel_probe.ts): at load it checks and times every q4
// GEMV and decode-attention candidate on the model's shapes (and, asked or on real GPUs, the
// prefill GEMMs and prefill attention), reports each candidate, and caches the choice per
// adapter and shape. Every choice the probe could make, forced in turn, gives the CPU
// dequantized reference's logits (1e-4 normalized) through prefill and decode.
import { readFileSync } from 'node:fs';
import { test, expect } from './fixtures.ts';

const SMOL = JSON.parse(readFileSync(new URL('../configs/HuggingFaceTB__SmolLM2-135M-Instruct/config.json', import.meta.url), 'utf8'));
// inter 100: down's K is not a multiple of the 32-group; heads 4 / kv 2 (GQA); small pages.
const TINY = { config: SMOL, scale: { layers: 3, hidden: 64, heads: 4, kvHeads: 2, inter: 100, vocab: 300, maxPositions: 512 }, pageSize: 8, prefillChunk: 16 };
const TOL = 1e-4;

const call = (page: any, fn: string, ...args: unknown[]) => page.evaluate(([f, a]: [string, unknown[]]) => (globalThis as any).pop.engineCases[f](...a), [fn, args] as [string, unknown[]]);

test('kernel probe: every q4 GEMV and decode attention candidate passes its check here, is timed and reported; the choice is cached', async ({ harness }) => {
  const r = await call(harness, 'kernelProbe', TINY, 'q4');
  test.info().annotations.push({ type: 'kernel probe', description: JSON.stringify(r.atLoad) });
  for (const [family, candidates] of [['matvecQ4', ['matvec_q4', 'matvec_q4_wg', 'matvec_q4_sg']], ['attentionDecode', ['split_keys', 'flash_decode']], ['normMatvec', ['separate', 'matvec_q4_norm']], ['gluMatvec', ['separate', 'matvec_q4_glu']]] as const) {
    const f = r.atLoad[family];
    expect(f.failed, family).toEqual([]);
    expect(Object.keys(f.timings).sort(), family).toEqual([...candidates].sort());
    for (const t of Object.values(f.timings) as { ms: number; gbps: number }[]) expect(t.ms > 0 && t.gbps > 0, JSON.stringify(t)).toBe(true);
    expect(candidates as readonly string[]).toContain(f.choice);
    expect(r.again[family].choice).toBe(f.choice);
  }
  expect(r.atLoad.cached).toBe(false);
  expect(r.again.cached).toBe(true);
  expect(r.variants.matvec_q4).toBe(r.choice.matvecQ4);
  expect(r.variants.attention).toContain(r.choice.attentionDecode);
});

test('kernel probe with prefill: every f32 / q4 GEMM and prefill attention candidate passes its check, is timed (GFLOP/s); the fastest wins unless within 10% of the default', async ({ harness }) => {
  const r = await call(harness, 'kernelProbe', TINY, 'q4', true);
  test.info().annotations.push({ type: 'kernel probe (prefill)', description: JSON.stringify(r.atLoad) });
  const families = [['matmulPrefill', ['regblock', 'regblock_quad', 'tiled', 'tiled_db']], ['matmulQ4', ['regblock_q4', 'tiled_q4']], ['attentionPrefill', ['gemm', 'rows8', 'flash']]] as const;
  for (const [family, candidates] of families) {
    const f = r.atLoad[family];
    expect(f.failed, family).toEqual([]);
    expect(Object.keys(f.timings).sort(), family).toEqual([...candidates].sort());
    for (const t of Object.values(f.timings) as { ms: number; gflops: number }[]) expect(t.ms > 0 && t.gflops > 0, JSON.stringify(t)).toBe(true);
    expect(candidates as readonly string[]).toContain(f.choice);
    expect(r.again[family].choice).toBe(f.choice);
  }
  expect(r.atLoad.cached).toBe(false);
  expect(r.again.cached).toBe(true);
  expect(r.choice.matmulQ4).toBe(r.atLoad.matmulQ4.choice);
  expect(r.choice.attentionPrefill).toBe(r.atLoad.attentionPrefill.choice);
  expect(r.matmulVariants.prefill).toBe(r.atLoad.matmulPrefill.choice);
  expect(r.variants.matmul_q4).toBe(r.choice.matmulQ4);
  // Which variant wins is a speed question (bench/RESULTS.md keeps SwiftShader's picks on real
  // shapes); here only the rule is checked against the reported timings, so noise cannot fail it:
  // the fastest wins unless it is within the 10% margin of the incumbent (the load-time GEMM
  // probe's pick, or the family's default).
  for (const [family, incumbent] of [['matmulPrefill', r.loadPrefill], ['matmulQ4', 'regblock_q4'], ['attentionPrefill', 'gemm']] as const) {
    const f = r.atLoad[family], ms = (name: string) => f.timings[name].ms as number;
    const best = Math.min(...Object.keys(f.timings).map(ms));
    const want = best > 0.9 * ms(incumbent) ? [incumbent] : Object.keys(f.timings).filter((name) => ms(name) === best);
    expect(want, `${family}: ${JSON.stringify(f.timings)}`).toContain(f.choice);
  }
});

test(`every q4 GEMV x decode attention choice matches the CPU dequantized reference through prefill and decode (${TOL})`, async ({ harness }) => {
  const all = ['matvec_q4', 'matvec_q4_wg', 'matvec_q4_sg'].flatMap((matvecQ4) => ['split_keys', 'flash_decode'].map((attentionDecode) => ({ matvecQ4, attentionDecode })));
  for (const [scheme, choices] of [['q4', all], ['q4-asym', all.filter((c) => c.matvecQ4 !== 'matvec_q4' && c.attentionDecode === 'flash_decode')]] as const) {
    // (Several flash-decoding chunks, their partial ends and windows: test/kernels.spec.ts.)
    const prompt = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % 300);
    const errs: Record<string, number> = await call(harness, 'kernelChoicesVsCpu', TINY, scheme, prompt, [5, 17, 250], choices);
    expect(Object.keys(errs).length).toBe(choices.length);
    for (const [k, e] of Object.entries(errs)) expect(e, `${scheme} ${k}`).toBeLessThan(TOL);
  }
});

test(`the GPU-shaped prefill kernels forced through the whole model (tiled_q4 GEMM with column gains, flash attention over cached chunks) match the CPU dequantized reference, POP off and keep 2 of 3 (${TOL})`, async ({ harness }) => {
  // 40 prompt tokens in chunks of 16: flash attention over rows after cached ones; POP keep 2 runs the deep K/V GEMM (gains).
  const prompt = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % 300);
  const choices = [{ matmulQ4: 'tiled_q4', attentionPrefill: 'flash' }];
  for (const scheme of ['q4', 'q4-asym'] as const) for (const pop of ['off', 2] as const) {
    const errs: Record<string, number> = await call(harness, 'kernelChoicesVsCpu', TINY, scheme, prompt, [5, 17, 250], choices, pop);
    expect(Object.keys(errs).length).toBe(choices.length);
    for (const [k, e] of Object.entries(errs)) expect(e, `${scheme} pop ${pop} ${k}`).toBeLessThan(TOL);
  }
});
