// Time to first token with POP off, exact and auto at 128 and 512 prompt tokens, measured in
// the page (bench.html, through CreateWorkerEngine and the worker) on a random-weight model:
// SmolLM2-135M-Instruct's config scaled down for CI (6 layers, hidden 128, intermediate 384,
// 4/2 heads, vocab 2048), served by page.route at a fake URL. Writes e2e/results/latency.json.
// Asserts correctness (off and exact give the same tokens), not speed.
import { test, expect } from '@playwright/test';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomModelFiles, scaleConfig } from '../src/model/random_model.ts';
import { BASE, ROOT, STORIES_DIR, fulfillFile } from './helpers.ts';
import type { BenchRow } from '../apps/demo/bench.ts';

const CONFIG_DIR = join(ROOT, 'configs/HuggingFaceTB__SmolLM2-135M-Instruct');
// `npm run bench:e2e` sets POP_LLM_E2E_FULL=1: the same test at the full SmolLM2-135M shape.
const FULL = !!process.env.POP_LLM_E2E_FULL;
const SCALE = { layers: 6, hidden: 128, inter: 384, heads: 4, kvHeads: 2, vocab: 2048 };
const LAYERS = FULL ? 30 : SCALE.layers;
const LENGTHS = [128, 512];
const MODES = ['off', 'exact', 'auto'];

/** The random model's files; the embedded model's tokenizer, padded to the random vocab. */
function modelFiles(): Map<string, Uint8Array> {
  const raw = JSON.parse(readFileSync(join(CONFIG_DIR, 'config.json'), 'utf8'));
  if (FULL) {
    // The real shape, bf16 on the wire (the loader converts), with its real tokenizer.
    const files = randomModelFiles(raw, { seed: 7, dtype: 'BF16' });
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) files.set(f, new Uint8Array(readFileSync(join(CONFIG_DIR, f))));
    return files;
  }
  const files = randomModelFiles(scaleConfig(raw, SCALE), { seed: 7 });
  const tok = JSON.parse(readFileSync(join(STORIES_DIR, 'tokenizer.json'), 'utf8'));
  const vocab: Record<string, number> = tok.model.vocab;
  for (let id = Object.keys(vocab).length; id < SCALE.vocab; id++) vocab[`<x${id}>`] = id;
  files.set('tokenizer.json', new TextEncoder().encode(JSON.stringify(tok)));
  files.set('tokenizer_config.json', new Uint8Array(readFileSync(join(STORIES_DIR, 'tokenizer_config.json'))));
  return files;
}

test('TTFT: POP off / exact / auto at 128 and 512 prompt tokens (scaled-down random SmolLM2)', async ({ page }) => {
  test.setTimeout(FULL ? 3_600_000 : 180_000);
  const files = modelFiles();
  await page.route('**/fake/random-smollm2-ci/*', (route) => fulfillFile(route, new URL(route.request().url()).pathname.split('/').pop()!, (n) => files.get(n) ?? null));
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  const q = new URLSearchParams({ model: '/fake/random-smollm2-ci', lengths: LENGTHS.join(','), modes: MODES.join(','), max_tokens: '4', reps: '3', autorun: '1' });
  await page.goto(`${BASE}/bench.html?${q}`);
  await expect(page.locator('body')).toHaveAttribute('data-state', /done|error/, { timeout: FULL ? 3_500_000 : 170_000 });
  const bench = await page.evaluate(() => (window as any).__bench);
  expect(bench.error ?? null).toBeNull();
  const rows: BenchRow[] = bench.rows;
  expect(rows).toHaveLength(LENGTHS.length * MODES.length);
  const gpu = await page.evaluate(async () => {
    const a = await navigator.gpu?.requestAdapter();
    return a ? { vendor: a.info.vendor, architecture: a.info.architecture } : null;
  });

  mkdirSync(join(ROOT, 'e2e/results'), { recursive: true });
  writeFileSync(join(ROOT, 'e2e/results/latency.json'), JSON.stringify({
    note: FULL ? 'FULL SHAPE (npm run bench:e2e): random weights at SmolLM2-135M-Instruct\'s real config and tokenizer; WebGPU on SwiftShader (CPU) in headless chromium. TTFT as the engine reports it (usage.extra.ttft_ms), median of 3 runs after a warm-up.' : 'SCALED DOWN FOR CI: random weights at SmolLM2-135M-Instruct\'s config scaled to 6 layers, hidden 128, intermediate 384, 4 query / 2 KV heads, vocab 2048; '
      + 'WebGPU on SwiftShader (CPU) in headless chromium. TTFT as the engine reports it (usage.extra.ttft_ms), median of 3 runs after a warm-up; '
      + '"auto" has no pop.json calibration here, so it runs as exact. Not a measurement of the full model or of a GPU.',
    model: { base: 'HuggingFaceTB/SmolLM2-135M-Instruct', scale: FULL ? 'full' : SCALE, weights: 'random (seed 7)', served: 'page.route at /fake/random-smollm2-ci' },
    adapter: gpu,
    date: new Date().toISOString(),
    max_tokens: 4,
    runs: 3,
    results: rows.map((r) => ({ pop: r.mode, prompt_tokens: r.promptTokens, keep: r.keep, layers: r.layers, ttft_ms: +r.ttftMs.toFixed(1), ttft_runs_ms: r.runs.map((t) => +t.toFixed(1)), prefill_tok_s: +r.prefillTokPerS.toFixed(1), decode_tok_s: +r.decodeTokPerS.toFixed(1), first_token: r.firstToken })),
  }, null, 2) + '\n');

  for (const n of LENGTHS) {
    const by = Object.fromEntries(rows.filter((r) => r.targetTokens === n).map((r) => [r.mode, r]));
    expect(by.off.promptTokens).toBe(n);
    expect(by.off.keep).toBe(LAYERS);
    expect(by.exact.keep).toBe(LAYERS - 1);
    expect(by.off.firstToken.length).toBeGreaterThan(0);
    // exact POP is lossless: same first token (and here the same 4 tokens) as full depth.
    expect(by.exact.firstToken).toBe(by.off.firstToken);
    expect(by.exact.text).toBe(by.off.text);
    for (const r of Object.values(by)) expect(r.ttftMs).toBeGreaterThan(0);
  }
  // The bench page drew one line per mode.
  await expect(page.locator('#chart polyline')).toHaveCount(MODES.length);
  await expect(page.locator('#results tbody tr')).toHaveCount(rows.length);
});
