// The chat demo (index.html) on the embedded model, through the worker: load on open,
// streaming with stats, stop mid-generation, multi-turn prefix reuse, the POP control.
// One page for the whole file (loading costs more than the tests).
import { test, expect, type Page } from '@playwright/test';
import { BASE, STORIES_DIR, storiesAutoKeep, waitState } from './helpers.ts';

test.describe.configure({ mode: 'serial' });
let page: Page;

test.beforeAll(async ({ browser }) => {
  page = await browser.newPage();
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  await page.goto(BASE + '/');
  await waitState(page, 'ready');
});
test.afterAll(async () => page?.close());

async function newChat(maxTokens: number, pop = 'auto'): Promise<void> {
  await page.click('#reset');
  await page.fill('#max-tokens', String(maxTokens));
  await page.selectOption('#pop-mode', pop);
}

async function sendAndWait(text: string): Promise<string> {
  await page.fill('#prompt', text);
  await page.click('#send');
  await waitState(page, 'generating', 10_000).catch(() => {});
  await waitState(page, 'ready', 60_000);
  return (await page.locator('#stats').textContent()) ?? '';
}

test('loads the embedded model on open and says it has no chat template', async () => {
  await expect(page.locator('#model-status')).toContainText('stories260K');
  await expect(page.locator('#model-status')).toContainText('5 layers');
  await expect(page.locator('#note')).toBeVisible();
  await expect(page.locator('#note')).toContainText('no chat template');
  await expect(page.locator('#progress-bar')).toHaveJSProperty('value', 1);
  await expect(page.locator('#error')).toBeHidden();
});

test('streams a reply: the text grows token by token, then the stats line shows TTFT', async () => {
  await newChat(60);
  // Record every length the reply goes through.
  await page.evaluate(() => {
    const w = window as unknown as { __lengths: number[] };
    w.__lengths = [];
    new MutationObserver(() => {
      const last = document.querySelector('#messages .msg.assistant:last-child');
      if (last) w.__lengths.push(last.textContent!.length);
    }).observe(document.getElementById('messages')!, { subtree: true, childList: true, characterData: true });
  });
  const stats = await sendAndWait('Once upon a time');
  const lengths = await page.evaluate(() => (window as unknown as { __lengths: number[] }).__lengths);
  const distinct = [...new Set(lengths)].filter((n) => n > 0);
  expect(distinct.length, `reply lengths seen: ${distinct.join(',')}`).toBeGreaterThan(5);
  expect(distinct).toEqual([...distinct].sort((a, b) => a - b));
  expect(stats).toMatch(/TTFT \d+ ms/);
  expect(stats).toMatch(/prefill [\d.]+ tok\/s · decode [\d.]+ tok\/s · POP keep \d\/5/);
  expect(stats).toContain(`POP keep ${storiesAutoKeep()}/5`); // the default POP setting is auto
  await expect(page.locator('#messages .msg.assistant')).toHaveCount(1);
  expect((await page.locator('#messages .msg.assistant').textContent())!.length).toBeGreaterThan(20);
});

test('Stop interrupts a long generation and the engine takes the next request', async () => {
  await newChat(400);
  await page.fill('#prompt', 'Once upon a time');
  await page.click('#send');
  const reply = page.locator('#messages .msg.assistant').last();
  await expect(reply).not.toHaveText('', { timeout: 30_000 });
  await expect(page.locator('#stop')).toBeEnabled();
  await page.click('#stop');
  await waitState(page, 'ready', 10_000);
  await expect(page.locator('#stats')).toHaveAttribute('data-finish', 'abort');
  await expect(page.locator('#stats')).toHaveText('Stopped.');
  const text = (await reply.textContent())!;
  await page.waitForTimeout(500);
  expect(await reply.textContent()).toBe(text);
  // 400 tokens of stories260K are about 1,500 characters.
  expect(text.length).toBeLessThan(600);
  await page.fill('#max-tokens', '16');
  const stats = await sendAndWait('The end.');
  expect(stats).toMatch(/TTFT \d+ ms/);
});

test('multi-turn: the second turn reuses the K/V of the conversation so far', async () => {
  await newChat(24);
  const first = await sendAndWait('Once upon a time there was a cat.');
  expect(first).toMatch(/reused 0 tokens/);
  const second = await sendAndWait('The cat was happy.');
  const reused = Number(/reused (\d+) tokens/.exec(second)?.[1]);
  const prompt = Number(/(\d+) prompt \+/.exec(second)?.[1]);
  expect(reused).toBeGreaterThan(0);
  expect(reused).toBeLessThan(prompt);
  await expect(page.locator('#messages .msg')).toHaveCount(4);
});

test('the POP control: off, exact, auto and a keep from the slider', async () => {
  await newChat(4, 'off');
  expect(await sendAndWait('Once upon a time')).toContain('POP keep 5/5');
  await newChat(4, 'exact');
  expect(await sendAndWait('Once upon a time')).toContain('POP keep 4/5');
  await newChat(4, 'auto');
  expect(await sendAndWait('Once upon a time')).toContain(`POP keep ${storiesAutoKeep()}/5`);
  await newChat(4, 'keep');
  await expect(page.locator('#pop-keep')).toBeVisible();
  await page.locator('#pop-keep').fill('2');
  await expect(page.locator('#pop-keep-value')).toHaveText('2');
  expect(await sendAndWait('Once upon a time')).toContain('POP keep 2/5');
});

test('a local folder from the folder picker loads (File[] through the worker)', async () => {
  await page.setInputFiles('#folder', STORIES_DIR);
  await waitState(page, 'ready', 60_000);
  await expect(page.locator('#model-status')).toContainText('stories260K · 5 layers');
  await newChat(6, 'exact');
  expect(await sendAndWait('Once upon a time')).toContain('POP keep 4/5');
});

test('no WebGPU: a clear NO_WEBGPU message and nothing to send', async ({ browser }) => {
  const p = await browser.newPage();
  await p.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true }));
  await p.goto(BASE + '/');
  await expect(p.locator('#error')).toHaveAttribute('data-code', 'NO_WEBGPU');
  await expect(p.locator('#error')).toContainText('WebGPU is not available');
  await expect(p.locator('#send')).toBeDisabled();
  await p.close();
});
