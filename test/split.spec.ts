// Tensors larger than one storage binding, stored as row parts (src/ops/split.ts): the split
// is forced with a tiny GpuOps maxBindingBytes. The embedding gather and matmul over parts
// against the CPU twin, and whole tiny-random engines split vs unsplit (same logits).
import { readFileSync } from 'node:fs';
import { test, expect } from './fixtures.ts';
import type { KernelCase } from './kernel_cases.ts';

const F32_EXACT = 1e-5;
const F32_DOT = 1e-4;

const CASES: (KernelCase & { name: string; tol: number; parts?: number })[] = [
  // 512 rows of 256 B under 48 KiB: 3 parts of 171/171/170 rows.
  { name: 'embed 20x64 over 3 parts', op: 'embed_split', rows: 20, hidden: 64, vocab: 512, scale: 1, maxBindingBytes: 49152, parts: 3, tol: F32_EXACT },
  { name: 'embed 9x576 scale 24 over 3 parts', op: 'embed_split', rows: 9, hidden: 576, vocab: 100, scale: 24, maxBindingBytes: 2304 * 40, parts: 3, tol: F32_EXACT },
  ...['regblock', 'regblock_quad', 'tiled', 'matvec', 'matvec_wg'].flatMap((variant) => [
    { name: `matmul split ${variant} 1x512x64 (lm head, 3 parts)`, op: 'matmul_split', variant, m: 1, n: 512, k: 64, maxBindingBytes: 49152, parts: 3, tol: F32_DOT },
    { name: `matmul split ${variant} 1x300x64 bias+acc, rows offset (3 parts)`, op: 'matmul_split', variant, m: 1, n: 300, k: 64, bias: true, accumulate: true, xRow: 2, outRow: 3, maxBindingBytes: 25600, parts: 3, tol: F32_DOT },
    { name: `matmul split ${variant} 7x172x64 bias+acc, row offsets (3 parts)`, op: 'matmul_split', variant, m: 7, n: 172, k: 64, bias: true, accumulate: true, xRow: 1, outRow: 2, maxBindingBytes: 16384, parts: 3, tol: F32_DOT },
    { name: `matmul split ${variant} 33x100x12 accumulate (4 parts)`, op: 'matmul_split', variant, m: 33, n: 100, k: 12, accumulate: true, maxBindingBytes: 1600, parts: 4, tol: F32_DOT },
    { name: `matmul split ${variant} 5x200 of 300 rows x64 (2 of 3 parts used)`, op: 'matmul_split', variant, m: 5, n: 200, wRows: 300, k: 64, maxBindingBytes: 25600, parts: 3, tol: F32_DOT },
  ]),
  ...(['q4', 'q4-asym'] as const).flatMap((scheme) => [
    { name: `matmul split ${scheme} 1x512x64 (lm head)`, op: 'matmul_split', scheme, variant: 'regblock', m: 1, n: 512, k: 64, maxBindingBytes: 8192, tol: F32_DOT },
    { name: `matmul split ${scheme} 7x300x172 bias+acc, row offsets`, op: 'matmul_split', scheme, variant: 'regblock', m: 7, n: 300, k: 172, bias: true, accumulate: true, xRow: 1, outRow: 1, maxBindingBytes: 8192, tol: F32_DOT },
    // Column gains (POP's deep K/V): parts are whole blocks of 16 gain rows, 32 rows each.
    { name: `matmul split ${scheme} column gains 37x96x64 (3 parts)`, op: 'matmul_split', scheme, variant: 'regblock', m: 37, n: 96, k: 64, gainRows: 16, bias: true, maxBindingBytes: 2048, parts: 3, tol: F32_DOT },
  ]),
  // The workgroup-tiled q4 GEMM over row parts (each part's N range through the row-copy scratch; gains per part).
  ...(['q4', 'q4-asym'] as const).flatMap((scheme) => [
    { name: `matmul split ${scheme} tiled_q4 7x300x172 bias+acc, row offsets`, op: 'matmul_split', scheme, variant: 'regblock', q4Prefill: 'tiled_q4', m: 7, n: 300, k: 172, bias: true, accumulate: true, xRow: 1, outRow: 1, maxBindingBytes: 8192, tol: F32_DOT },
    { name: `matmul split ${scheme} tiled_q4 column gains 37x96x64 (3 parts)`, op: 'matmul_split', scheme, variant: 'regblock', q4Prefill: 'tiled_q4', m: 37, n: 96, k: 64, gainRows: 16, bias: true, maxBindingBytes: 2048, parts: 3, tol: F32_DOT },
  ]),
  // The GPU-shaped q4 GEMVs over row parts: each part's N range written in place.
  ...(['q4', 'q4-asym'] as const).flatMap((scheme) => ['matvec_q4_wg', 'matvec_q4_sg'].map((q4Decode) => (
    { name: `matmul split ${scheme} ${q4Decode} 1x300x172 bias+acc, row offsets`, op: 'matmul_split', scheme, variant: 'regblock', q4Decode, m: 1, n: 300, k: 172, bias: true, accumulate: true, xRow: 1, outRow: 1, maxBindingBytes: 8192, tol: F32_DOT }
  ))),
];

for (const c of CASES) {
  test(`kernel ${c.name} (tol ${c.tol})`, async ({ harness }) => {
    const res = await harness.evaluate((kc) => (globalThis as any).pop.runKernelCase(kc), c);
    expect(res.elements).toBeGreaterThan(0);
    expect(res.err, JSON.stringify(res)).toBeLessThanOrEqual(c.tol);
    if (c.parts !== undefined) expect(res.extra.parts).toBe(c.parts);
    else expect(res.extra.parts).toBeGreaterThan(1);
  });
}

const SMOL = JSON.parse(readFileSync(new URL('../configs/HuggingFaceTB__SmolLM2-135M-Instruct/config.json', import.meta.url), 'utf8'));
const SCALE = { layers: 3, hidden: 64, heads: 4, kvHeads: 2, inter: 96, vocab: 300, maxPositions: 256 };
// SmolLM2-135M's structure scaled down, with its own LM head (untied) and tied.
const UNTIED = { config: { ...SMOL, tie_word_embeddings: false }, scale: SCALE, pageSize: 8, prefillChunk: 16 };
const TIED = { config: SMOL, scale: SCALE, pageSize: 8, prefillChunk: 16 };
const CONT = [5, 17, 250, 3, 99, 1, 2, 8, 9];
const call = (page: any, fn: string, ...args: unknown[]) => page.evaluate(([f, a]: [string, unknown[]]) => (globalThis as any).pop.engineCases[f](...a), [fn, args] as [string, unknown[]]);

// 30000 bytes: 117 rows of 64 f32 per part. embed / lm_head [300, 64] -> 3 parts of 100 rows,
// qkv [128, 64] -> 2, gate|up [192, 64] -> 2, POP's deep K/V [128, 64] -> 2; down [64, 96] fits.
for (const [name, spec, lmHeadParts] of [['untied', UNTIED, 3], ['tied', TIED, 3]] as const) {
  test(`split engine (${name}): embed, LM head, projections and deep K/V in parts give the unsplit logits (1e-6)`, async ({ harness }) => {
    for (const pop of ['off', 'exact'] as const) {
      for (const n of [1, 9, 17, 40]) {
        const prompt = Array.from({ length: n }, (_, i) => (i * 37 + 11) % 300);
        const r = await call(harness, 'splitVsWhole', spec, 30000, prompt, CONT, pop);
        expect(r.parts).toEqual({ embed: 3, lmHead: lmHeadParts, qkv: 2, gateUp: 2, down: 1, deepKv: 2 });
        expect(Math.max(...r.diffs), `pop ${pop}, prompt ${n}: ${r.diffs}`).toBeLessThanOrEqual(1e-6);
      }
    }
  });
}

test('split engine (q4, q4 LM head): every weight in parts gives the unsplit logits (1e-6)', async ({ harness }) => {
  // 4096 bytes: the q4 embedding and the q4 LM head (40 B a row) in 3 parts each, the deep K/V
  // (with column gains) in 2 blocks of 64 rows.
  for (const pop of ['off', 'exact'] as const) {
    const prompt = Array.from({ length: 17 }, (_, i) => (i * 37 + 11) % 300);
    const r = await call(harness, 'splitVsWhole', UNTIED, 4096, prompt, CONT, pop, 'q4');
    expect(r.parts).toEqual({ embed: 3, lmHead: 3, qkv: 2, gateUp: 2, down: 1, deepKv: 2 });
    expect(Math.max(...r.diffs), `pop ${pop}: ${r.diffs}`).toBeLessThanOrEqual(1e-6);
  }
});
