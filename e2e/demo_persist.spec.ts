// The demo keeps its conversation in IndexedDB (apps/demo/chat_store.ts): the page reloaded
// mid-stream comes back with the user's message and the reply up to the last stored token
// (a prefix of what was streaming), the conversation goes on from there, and Reset clears it.
import { test, expect } from '@playwright/test';
import { BASE, waitState } from './helpers.ts';

test('a page reload mid-stream restores the conversation up to the last complete token; it continues; Reset clears it', async ({ browser }) => {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  await page.goto(BASE + '/');
  await waitState(page, 'ready');
  await page.fill('#max-tokens', '300');
  await page.fill('#prompt', 'Once upon a time');
  await page.click('#send');
  const reply = page.locator('#messages .msg.assistant').last();
  await expect.poll(async () => ((await reply.textContent()) ?? '').length, { timeout: 60_000 }).toBeGreaterThan(40);
  const seen = (await reply.textContent()) ?? '';
  await page.reload(); // mid-stream: the worker goes with the page
  await waitState(page, 'ready');
  await expect(page.locator('body')).toHaveAttribute('data-restored', '2');
  const msgs = page.locator('#messages .msg');
  await expect(msgs).toHaveCount(2);
  await expect(msgs.nth(0)).toHaveText('Once upon a time');
  const restored = (await msgs.nth(1).textContent()) ?? '';
  // At most a token or two behind what was on screen, or ahead of it (tokens kept streaming
  // until the reload): either way the same greedy text, cut at a token.
  expect(restored.length).toBeGreaterThan(20);
  expect(restored.startsWith(seen) || seen.startsWith(restored), `${JSON.stringify(seen)} vs ${JSON.stringify(restored)}`).toBe(true);
  await expect(msgs.nth(1)).toHaveAttribute('data-finish', 'interrupted');
  // The conversation goes on: the restored turns are in the history sent with the next message.
  await page.fill('#max-tokens', '4');
  await page.fill('#prompt', 'And then');
  await page.click('#send');
  await waitState(page, 'generating', 10_000).catch(() => {});
  await waitState(page, 'ready', 60_000);
  await expect(msgs).toHaveCount(4);
  await expect(page.locator('#error')).toBeHidden();
  const usage = (await page.locator('#stats').textContent()) ?? '';
  const prompt = Number(/(\d+) prompt \+/.exec(usage)?.[1]);
  expect(prompt, usage).toBeGreaterThan(20); // the history went with it, not just "And then"
  // Reset clears the store too: a reload shows an empty conversation.
  await page.click('#reset');
  await page.waitForTimeout(200);
  await page.reload();
  await waitState(page, 'ready');
  await expect(msgs).toHaveCount(0);
  await page.close();
});
