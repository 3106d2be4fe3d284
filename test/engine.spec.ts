// The WebGPU engine end to end, against the reference outputs and the independent CPU
// reference model: stories260K (real, trained) and tiny-random fixtures at real configs.
import { readFileSync } from 'node:fs';
import { test, expect } from './fixtures.ts';

const STORIES = { url: '/models/stories260K' };
const REF = JSON.parse(readFileSync(new URL('../public/models/stories260K/reference_greedy_200.json', import.meta.url), 'utf8'));
const SMOL = JSON.parse(readFileSync(new URL('../configs/HuggingFaceTB__SmolLM2-135M-Instruct/config.json', import.meta.url), 'utf8'));
// SmolLM2-135M's structure (GQA 3:1, tied, theta 1e5) scaled down; small pages and chunks so
// prompts cross page and chunk boundaries.
const TINY_LLAMA = { config: SMOL, scale: { layers: 3, hidden: 64, heads: 4, kvHeads: 2, inter: 96, vocab: 300, maxPositions: 256 }, pageSize: 8, prefillChunk: 16 };
const PROMPT = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 426, 338, 401, 396, 267, 337, 410];

const call = (page: any, fn: string, ...args: unknown[]) => page.evaluate(([f, a]: [string, unknown[]]) => (globalThis as any).pop.engineCases[f](...a), [fn, args] as [string, unknown[]]);

test('stories260K: greedy from BOS matches reference_greedy_200.json over 200 tokens', async ({ harness }) => {
  const r = await call(harness, 'generate', STORIES, [1], 200);
  expect(r.ids).toEqual(REF.generated_token_ids);
});

test('stories260K: first-step logits match the reference (1e-4)', async ({ harness }) => {
  const errs = await call(harness, 'logitsVsReference', STORIES, [1], []);
  expect(errs[0]).toBeLessThan(1e-4);
});

test('stories260K: --ids prompts match the independent reference (full depth)', async ({ harness }) => {
  for (const prompt of [PROMPT, [1, 320, 417], [1, 261, 261, 261, 500, 2, 3, 200]]) {
    const got = await call(harness, 'generate', STORIES, prompt, 30, 'off');
    const want = await call(harness, 'reference', STORIES, prompt, 30);
    expect(got.ids).toEqual(want);
  }
});

test('tiny-random llama: prefill and decode logits match the reference across page and chunk boundaries (1e-4)', async ({ harness }) => {
  for (const n of [1, 7, 8, 9, 16, 17, 40]) {
    const prompt = Array.from({ length: n }, (_, i) => (i * 37 + 11) % 300);
    const errs: number[] = await call(harness, 'logitsVsReference', TINY_LLAMA, prompt, [5, 17, 250, 3, 99, 1, 2, 8, 9]);
    expect(Math.max(...errs), `prompt ${n}: ${errs}`).toBeLessThan(1e-4);
  }
});
