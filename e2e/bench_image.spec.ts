// The bench page's image-prompt rows: on a tiny-random SmolVLM (served through page.route) an
// image+text prompt's TTFT with POP off, exact and auto; on the default text-only model the
// rows say "needs a vision-language model" and the text rows still run.
import { test, expect } from '@playwright/test';
import { BASE } from './helpers.ts';
import { serveTinyVlm } from './vlm_fixture.ts';
import type { ImageBenchState } from '../apps/demo/bench.ts';

async function runBench(page: import('@playwright/test').Page, params: Record<string, string>): Promise<{ status: string; rows: { mode: string }[]; image: ImageBenchState; error?: unknown }> {
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  await page.goto(`${BASE}/bench.html?${new URLSearchParams({ ...params, autorun: '1' })}`);
  await expect(page.locator('body')).toHaveAttribute('data-state', /done|error/, { timeout: 150_000 });
  return page.evaluate(() => (window as any).__bench);
}

test('a VLM gets image-prompt rows: TTFT with POP off, exact and auto', async ({ page }) => {
  const url = await serveTinyVlm(page);
  const bench = await runBench(page, { model: url, lengths: '16', modes: 'off,exact,auto', max_tokens: '2', reps: '2', image_size: '96x80' });
  expect(bench.error ?? null).toBeNull();
  expect(bench.rows).toHaveLength(3);
  const im = bench.image;
  expect(im.status).toBe('done');
  expect(im.image).toBe('96x80');
  expect(im.rows.map((r) => [r.mode, r.keep, r.layers])).toEqual([['off', 2, 2], ['exact', 1, 2], ['auto', 1, 2]]);
  for (const r of im.rows) {
    // 96 x 80 -> longest edge 128 -> 2 x 2 tiles + the global view, 4 image tokens each.
    expect(r.promptTokens).toBeGreaterThan(20);
    expect(r.ttftMs).toBeGreaterThan(0);
    expect(r.engineTtftMs).toBeGreaterThan(0);
    expect(r.ttftMs).toBeGreaterThanOrEqual(r.engineTtftMs);
    expect(r.runs).toHaveLength(2);
  }
  expect(im.rows[0].speedupVsOff).toBe(1);
  expect(im.rows[1].speedupVsOff).toBeGreaterThan(0);
  // keep = L-1 is exact: the same first token as full depth.
  expect(im.rows[1].firstToken).toBe(im.rows[0].firstToken);
  await expect(page.locator('#image-results tbody tr')).toHaveCount(3);
  await expect(page.locator('#image-status')).toContainText('wall time');
});

test('a text-only model: the image row says it needs a vision-language model', async ({ page }) => {
  const bench = await runBench(page, { model: '/models/stories260K', lengths: '16', modes: 'off,exact', max_tokens: '2', reps: '1' });
  expect(bench.status).toBe('done');
  expect(bench.rows).toHaveLength(2);
  expect(bench.image.status).toBe('needs-vlm');
  expect(bench.image.rows).toHaveLength(0);
  await expect(page.locator('#image-status')).toContainText('needs a vision-language model');
  await expect(page.locator('#image-results tbody tr')).toHaveCount(0);
  await expect(page.locator('#error')).toBeHidden();
});
