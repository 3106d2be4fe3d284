// f16 weights (EngineOptions.weightDtype) end to end on WebGPU. f16 storage is a property of the
// weights and of the kernels that read them, so the check is: the GPU engine loaded with 'f16'
// matches the CPU twin's engine loaded the same way (CpuOps keeps the f16-rounded weights, the
// values the storage kernels compute with) within 1e-4 normalized, over prefill, decode, pages,
// chunks and POP (deep K/V with column gains); POP exact stays identical to off; 'auto' stays f32
// on an adapter without shader-f16 (SwiftShader). The f16-ARITHMETIC kernels (shader-f16) cannot
// run here: test/kernels.spec.ts checks that they are never compiled without the feature.
// Speeds: bench/storage.ts (`npm run bench:storage`).
import { readFileSync } from 'node:fs';
import { test, expect } from './fixtures.ts';
import { floatToHalf, halfToFloat } from '../src/core/float_bits.ts';
import { estimateFit } from '../src/model/fit.ts';

const STORIES = { url: '/models/stories260K' };
const SMOL = JSON.parse(readFileSync(new URL('../configs/HuggingFaceTB__SmolLM2-135M-Instruct/config.json', import.meta.url), 'utf8'));
// inter 100: down's K % 8 = 4; small pages and chunks.
const TINY = { config: SMOL, scale: { layers: 4, hidden: 64, heads: 4, kvHeads: 2, inter: 100, vocab: 300, maxPositions: 256 }, pageSize: 8, prefillChunk: 16 };
const PROMPT = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 426, 338, 401, 396, 267, 337, 410];
const CONT = [5, 17, 250, 3, 99, 1, 2, 8];
const TOL = 1e-4; // same f16-rounded weights on both sides: f32 accumulation order only

const call = (page: any, fn: string, ...args: unknown[]) => page.evaluate(([f, a]: [string, unknown[]]) => (globalThis as any).pop.halfCases[f](...a), [fn, args] as [string, unknown[]]);

test('floatToHalf rounds to nearest even (ties, subnormals, overflow, NaN)', () => {
  // Every tie between two adjacent finite halves goes to the even one; every half round-trips.
  // (Mismatches are collected: one expect per value would make tens of thousands of steps.)
  const bad: string[] = [];
  for (let h = 0; h < 0x7bff; h++) {
    const mid = (halfToFloat(h) + halfToFloat(h + 1)) / 2;
    if (Math.fround(mid) !== mid) continue;
    const even = h & 1 ? h + 1 : h;
    if (floatToHalf(mid) !== even || floatToHalf(-mid) !== (even | 0x8000)) bad.push(`tie above 0x${h.toString(16)}`);
  }
  for (let h = 0; h < 0x7c00; h++) if (floatToHalf(halfToFloat(h)) !== h) bad.push(`round trip 0x${h.toString(16)}`);
  expect(bad.slice(0, 5)).toEqual([]);
  expect(floatToHalf(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just past a tie rounds up
  expect(floatToHalf(2 ** -25)).toBe(0); // half the smallest subnormal: tie to 0
  expect(floatToHalf(2 ** -25 * 1.5)).toBe(1);
  expect(floatToHalf(65519)).toBe(0x7bff);
  expect(floatToHalf(65520)).toBe(0x7c00);
  expect(floatToHalf(-Infinity)).toBe(0xfc00);
  expect(Number.isNaN(halfToFloat(floatToHalf(NaN)))).toBe(true);
});

test('estimateFit counts weight bytes by weightDtype and quantization', () => {
  const limits = { maxBufferSize: 2 ** 31, maxStorageBufferBindingSize: 2 ** 31 };
  const f32 = estimateFit(SMOL, 0, 256, limits);
  const f16 = estimateFit(SMOL, 0, 256, limits, { weightDtype: 'f16' });
  const q4 = estimateFit(SMOL, 0, 256, limits, { quantization: 'q4' });
  expect(f16.params).toBe(f32.params);
  // Embeddings stay f32; the tied LM head gets an f16 copy (V*H*2 bytes).
  const embed = SMOL.vocab_size * SMOL.hidden_size;
  expect(f16.weightBytes).toBeLessThan(0.75 * f32.weightBytes);
  expect(f16.weightBytes).toBeGreaterThan((f32.weightBytes - 4 * embed) / 2 + 4 * embed);
  expect(q4.weightBytes).toBeLessThan(f16.weightBytes);
  console.log('SmolLM2-135M weight MiB: f32', (f32.weightBytes / 2 ** 20).toFixed(1), 'f16', (f16.weightBytes / 2 ** 20).toFixed(1), 'q4', (q4.weightBytes / 2 ** 20).toFixed(1));
});

test(`tiny-random llama f16: GPU logits match the CPU f16-rounded reference across pages, chunks and POP keeps (${TOL})`, async ({ harness }) => {
  for (const n of [1, 9, 17, 40]) {
    const prompt = Array.from({ length: n }, (_, i) => (i * 37 + 11) % 300);
    const errs: number[] = await call(harness, 'logitsVsCpu', TINY, prompt, CONT, 'off');
    expect(Math.max(...errs), `prompt ${n}: ${errs}`).toBeLessThan(TOL);
  }
  const p = PROMPT.map((t) => t % 300);
  for (const pop of ['exact', 1, 2]) {
    const errs: number[] = await call(harness, 'logitsVsCpu', TINY, p, CONT.slice(0, 3), pop);
    expect(Math.max(...errs), `pop ${pop}: ${errs}`).toBeLessThan(TOL);
  }
});

test(`tiny-random llama f16 stored as row parts (binding limit 8 KiB: embed, LM head, projections, deep K/V with gains): matches the CPU reference (${TOL})`, async ({ harness }) => {
  const split = { ...TINY, maxBindingBytes: 8192 };
  const p = PROMPT.map((t) => t % 300);
  for (const pop of ['off', 'exact', 1]) {
    const errs: number[] = await call(harness, 'logitsVsCpu', split, p, CONT.slice(0, 4), pop);
    expect(Math.max(...errs), `pop ${pop}: ${errs}`).toBeLessThan(TOL);
  }
});

test(`stories260K f16: GPU logits match the CPU f16-rounded reference (${TOL})`, async ({ harness }) => {
  const errs: number[] = await call(harness, 'logitsVsCpu', STORIES, PROMPT, CONT, 'off');
  expect(Math.max(...errs), `${errs}`).toBeLessThan(TOL);
});

test('f16: POP exact gives tokens identical to off', async ({ harness }) => {
  for (const spec of [STORIES, TINY]) {
    const p = PROMPT.map((t) => t % 300);
    const off = await call(harness, 'generate', spec, 'f16', p, 24, 'off');
    const exact = await call(harness, 'generate', spec, 'f16', p, 24, 'exact');
    expect(exact.keep).toBe(off.keep - 1);
    expect(exact.ids).toEqual(off.ids);
  }
});

test("weightDtype 'auto' follows shader-f16; stats report the choice and the f16 kernels", async ({ harness }) => {
  const auto = await call(harness, 'describe', TINY, 'auto');
  const f16 = await call(harness, 'describe', TINY, 'f16');
  const f32 = await call(harness, 'describe', TINY, 'f32');
  console.log(JSON.stringify({ auto, f16, f32 }));
  expect(auto.weightDtype).toBe(auto.shaderF16 ? 'f16' : 'f32');
  expect(f16.weightDtype).toBe('f16');
  expect(f16.f16Arithmetic).toBe(false); // the tests ask for f32 math over f16 storage
  expect(f16.variants.matvec_f16).toMatch(/_f16w$/);
  expect(f16.variants.matmul_f16_gains).toMatch(/_f16w$/);
  expect(f32.variants.matvec_f16).toBeUndefined();
  expect(f16.weightBytes).toBeLessThan(0.8 * f32.weightBytes);
});
