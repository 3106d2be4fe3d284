// The f16 KV cache (EngineOptions.kvDtype; src/kv/paged_kv_cache.ts): K/V stored as halves
// (two per u32 word), written by kv_write (KV_F16) and widened by every attention kernel that
// reads the cache. The kernels one by one: test/kernels.spec.ts ('f16 KV' cases). Here: the
// byte accounting (fit check, bytes per token) in Node, and a whole tiny model on the GPU
// against the CPU twin that rounds K/V to f16 the same way.
import { readFileSync } from 'node:fs';
import { test, expect } from './fixtures.ts';
import { estimateFit } from '../src/model/fit.ts';
import { PagedKvCache } from '../src/kv/paged_kv_cache.ts';
import { CpuOps } from '../src/reference/cpu_ops.ts';

const SMOL = JSON.parse(readFileSync(new URL('../configs/HuggingFaceTB__SmolLM2-135M-Instruct/config.json', import.meta.url), 'utf8'));
// inter 100 (K % 32 != 0), 4 / 2 heads (GQA), pages of 8, prefill chunks of 16.
const TINY = { config: SMOL, scale: { layers: 3, hidden: 64, heads: 4, kvHeads: 2, inter: 100, vocab: 300, maxPositions: 512 }, pageSize: 8, prefillChunk: 16 };
// The twin stores the same halves (SwiftShader's pack2x16float rounds to nearest even, as
// floatToHalf: test/kernels.spec.ts measures 0 difference), so what remains is f32 accumulation.
const TOL = 1e-4;

test('fit check and bytes per token count an f16 KV cache at 2 bytes a value', () => {
  const limits = { maxBufferSize: 2 ** 31, maxStorageBufferBindingSize: 2 ** 31 };
  const f32 = estimateFit(SMOL, 0, 1024, limits);
  const f16 = estimateFit(SMOL, 0, 1024, limits, { kvDtype: 'f16' });
  // SmolLM2-135M: 30 layers x (K + V) x 3 KV heads x 64 x 1024 positions.
  expect(f32.kvBytes).toBe(30 * 2 * 192 * 4 * 1024);
  expect(f16.kvBytes).toBe(f32.kvBytes / 2);
  expect(f16.weightBytes).toBe(f32.weightBytes);
  expect(PagedKvCache.bytesPerToken(30, 192, 'f16')).toBe(PagedKvCache.bytesPerToken(30, 192) / 2);
  const cache = new PagedKvCache(new CpuOps(), { numLayers: 2, kvDim: 8, pageSize: 4, contextWindow: 16, maxSequences: 1, dtype: 'f16' });
  expect(cache.dtype).toBe('f16');
  expect(cache.layers.every((l) => l.dtype === 'f16')).toBe(true);
});

test(`f16 KV cache through a whole tiny model: GPU = CPU twin with f16 K/V (${TOL}) over chunks, decode, POP exact; half the bytes; n = 2 copy on write`, async ({ harness }) => {
  const prompt = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % 300);
  const r = await harness.evaluate(([spec, p]) => (globalThis as any).pop.decodeCases.kvF16(spec, 'q4', p, [5, 17, 250]), [TINY, prompt] as const);
  test.info().annotations.push({ type: 'kv f16', description: JSON.stringify({ diffs: r.diffs, adapterShaderF16: r.adapterShaderF16, auto: r.dtypes.auto }) });
  for (const p of ['off', 'exact']) {
    expect(r.diffs[`gpuF16VsCpuF16 ${p}`], p).toBeLessThan(TOL);
    // f16 storage really moved the logits (an f32 cache would give exactly the f32 twin's).
    expect(r.diffs[`cpuF16VsCpuF32 ${p}`], p).toBeGreaterThan(1e-6);
  }
  expect(r.dtypes).toMatchObject({ f16: 'f16', cpu: 'f16', forcedF32: 'f32' });
  // 'auto' = f16 exactly where the adapter has shader-f16 (SwiftShader here: f32).
  expect(r.dtypes.auto).toBe(r.adapterShaderF16 ? 'f16' : 'f32');
  expect(r.kvBytes).toBe(r.kvBytesAt2);
  // Greedy n = 2: both choices decode over the prompt's pages; the shared partial last page is copied (f16 words).
  expect(r.copied).toBeGreaterThan(0);
  expect(r.choices[0]).toEqual(r.cpuAlone);
  expect(r.choices[1]).toEqual(r.cpuAlone);
});
