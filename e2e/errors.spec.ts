// Bad inputs and the Hub path in the chat demo: a missing model URL, a truncated shard, the
// Hub's resolve/main URLs mimicked with page.route (served from the embedded model), a 404
// and a dropped connection. Each shows its error code and message; the page stays usable.
import { test, expect, type Page } from '@playwright/test';
import { BASE, fulfillFile, storiesFile, waitState } from './helpers.ts';

test.describe.configure({ mode: 'serial' });
let page: Page;
const HUB = /^https:\/\/huggingface\.co\/([^/]+\/[^/]+)\/resolve\/main\/(.+)$/;

test.beforeAll(async ({ browser }) => {
  page = await browser.newPage();
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  // A local mimic of the Hub: three repos.
  await page.route(HUB, async (route) => {
    const [, repo, file] = HUB.exec(route.request().url())!;
    if (repo === 'HuggingFaceTB/SmolLM2-135M-Instruct') return fulfillFile(route, file, storiesFile);
    if (repo === 'acme/dropped-connection' && file === 'model.safetensors') return route.abort('connectionreset');
    if (repo === 'acme/dropped-connection') return fulfillFile(route, file, storiesFile);
    return fulfillFile(route, file, () => null); // any other repo: 404 for every file
  });
  // A copy of the embedded model whose weights file is cut in half.
  await page.route('**/fake/truncated/*', (route) => {
    const name = new URL(route.request().url()).pathname.split('/').pop()!;
    return fulfillFile(route, name, (n) => {
      const f = storiesFile(n);
      return f && n === 'model.safetensors' ? f.subarray(0, f.length >> 1) : f;
    });
  });
  await page.goto(BASE + '/');
  await waitState(page, 'ready');
});
test.afterAll(async () => page?.close());

async function loadUrl(url: string): Promise<void> {
  await page.fill('#model-url', url);
  await page.click('#load-url');
  await expect(page.locator('body')).not.toHaveAttribute('data-state', 'loading', { timeout: 60_000 });
}

async function expectError(code: string, text: string | RegExp): Promise<void> {
  await waitState(page, 'error', 5_000);
  await expect(page.locator('#error')).toBeVisible();
  await expect(page.locator('#error')).toHaveAttribute('data-code', code);
  await expect(page.locator('#error')).toContainText(code);
  await expect(page.locator('#error')).toContainText(text);
  await expect(page.locator('#send')).toBeDisabled();
}

test('a model URL with nothing there: MODEL_FILE_MISSING config.json', async () => {
  await loadUrl('/models/no-such-model');
  await expectError('MODEL_FILE_MISSING', "Model file 'config.json' is missing");
});

test('a truncated weights file: TRUNCATED_FILE naming the file', async () => {
  await loadUrl('/fake/truncated');
  await expectError('TRUNCATED_FILE', /File 'model.safetensors' is truncated: expected at least \d+ bytes, got \d+/);
});

test('a Hub model from the catalog, served by the mimic, loads and chats', async () => {
  await page.selectOption('#model-select', 'HuggingFaceTB/SmolLM2-135M-Instruct');
  await waitState(page, 'ready', 60_000);
  await expect(page.locator('#error')).toBeHidden();
  await expect(page.locator('#model-status')).toContainText('HuggingFaceTB/SmolLM2-135M-Instruct');
  await page.fill('#max-tokens', '8');
  await page.fill('#prompt', 'Once upon a time');
  await page.click('#send');
  await expect(page.locator('#stats')).toContainText('TTFT', { timeout: 30_000 });
});

test('a Hub id that does not exist (404): MODEL_FILE_MISSING with the HTTP status', async () => {
  await loadUrl('acme/no-such-model');
  await expectError('MODEL_FILE_MISSING', "Model file 'config.json' is missing (HTTP 404)");
});

test('a dropped connection while downloading weights: MODEL_NOT_FOUND with a network error', async () => {
  await loadUrl('acme/dropped-connection');
  await expectError('MODEL_NOT_FOUND', /network error fetching model\.safetensors/);
});

test('after the failures the embedded model loads again', async () => {
  await page.selectOption('#model-select', '/models/stories260K');
  await waitState(page, 'ready', 60_000);
  await expect(page.locator('#error')).toBeHidden();
});
