// Images in the chat demo (index.html): attach with the Image… button (a file input), paste or
// drop; the thumbnail shows in the message and the image goes as an OpenAI image part with
// the text. On a tiny-random SmolVLM (served through page.route, loaded with the custom URL
// field) a PNG and a JPEG each get a streamed answer; an undecodable file says
// IMAGE_DECODE_FAILED (an 8200 x 8200 PNG: IMAGE_TOO_LARGE) and the next message still works.
// On the default text-only model an image says INVALID_ARGUMENT and the conversation goes on.
import { test, expect, type Page } from '@playwright/test';
import { BASE, waitState } from './helpers.ts';
import { serveTinyVlm, testImages } from './vlm_fixture.ts';

test.describe.configure({ mode: 'serial' });
let page: Page;
let vlmUrl = '';
let images: { png: Buffer; jpeg: Buffer };

test.beforeAll(async ({ browser }) => {
  page = await browser.newPage();
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  vlmUrl = await serveTinyVlm(page);
  await page.goto(BASE + '/');
  await waitState(page, 'ready');
  images = await testImages(page);
  // Every length the last reply goes through (streaming shows as several).
  await page.evaluate(() => {
    const w = window as unknown as { __lengths: number[] };
    w.__lengths = [];
    new MutationObserver(() => {
      const last = document.querySelector('#messages .msg.assistant:last-child');
      if (last) w.__lengths.push(last.textContent!.length);
    }).observe(document.getElementById('messages')!, { subtree: true, childList: true, characterData: true });
  });
});
test.afterAll(async () => page?.close());

async function attachFile(name: string, mimeType: string, buffer: Buffer): Promise<void> {
  await page.setInputFiles('#image-input', { name, mimeType, buffer });
}

/** Sends what is typed and attached; returns the stats line (or '' after an error). */
async function send(text: string): Promise<string> {
  await page.evaluate(() => ((window as unknown as { __lengths: number[] }).__lengths = []));
  await page.fill('#prompt', text);
  await page.click('#send');
  await waitState(page, 'generating', 10_000).catch(() => {});
  await waitState(page, 'ready', 90_000);
  return (await page.locator('#stats').textContent()) ?? '';
}

async function streamedLengths(): Promise<number[]> {
  const lengths = await page.evaluate(() => (window as unknown as { __lengths: number[] }).__lengths);
  return [...new Set(lengths)].filter((n) => n > 0);
}

test('text-only model: an attached image shows INVALID_ARGUMENT, and the next text message works', async () => {
  await page.fill('#max-tokens', '12');
  await attachFile('photo.png', 'image/png', images.png);
  await expect(page.locator('#attachments img.thumb')).toHaveCount(1);
  const stats = await send('What is in this picture?');
  expect(stats).toBe('');
  await expect(page.locator('#error')).toHaveAttribute('data-code', 'INVALID_ARGUMENT');
  await expect(page.locator('#error')).toContainText('text-only');
  await expect(page.locator('#error')).toContainText('vision-language model');
  const failed = page.locator('#messages .msg.user').last();
  await expect(failed).toHaveAttribute('data-failed', 'INVALID_ARGUMENT');
  await expect(failed.locator('img.thumb')).toHaveCount(1);
  await expect(page.locator('#attachments')).toBeHidden();
  // The failed turn is not in the conversation: plain text goes on.
  const next = await send('Once upon a time');
  expect(next).toMatch(/TTFT \d+ ms/);
  await expect(page.locator('#error')).toBeHidden();
  await expect(page.locator('#messages .msg.assistant')).toHaveCount(1);
  expect((await page.locator('#messages .msg.assistant').last().textContent())!.length).toBeGreaterThan(5);
});

test('the custom URL field loads a tiny-random SmolVLM', async () => {
  await page.fill('#model-url', vlmUrl);
  await page.click('#load-url');
  await waitState(page, 'ready', 120_000);
  await expect(page.locator('#model-status')).toContainText('fake-vlm · 2 layers');
  await expect(page.locator('#error')).toBeHidden();
});

for (const [kind, name, mime] of [['PNG', 'photo.png', 'image/png'], ['JPEG', 'photo.jpg', 'image/jpeg']] as const) {
  test(`a ${kind} through the file input: thumbnail in the message, streamed answer`, async () => {
    await page.click('#reset');
    await page.fill('#max-tokens', '12');
    await attachFile(name, mime, kind === 'PNG' ? images.png : images.jpeg);
    await expect(page.locator('#attachments img.thumb')).toHaveCount(1);
    const stats = await send('What is in this picture?');
    await expect(page.locator('#error')).toBeHidden();
    expect(stats).toMatch(/TTFT \d+ ms/);
    // 96 x 80 -> longest edge 128 -> 2 x 2 tiles + the global view, 4 image tokens each.
    const prompt = Number(/(\d+) prompt \+/.exec(stats)?.[1]);
    expect(prompt).toBeGreaterThan(20);
    expect(Number(/\+ (\d+) new tokens/.exec(stats)?.[1])).toBeGreaterThan(1);
    const user = page.locator('#messages .msg.user').last();
    await expect(user.locator('img.thumb')).toHaveCount(1);
    await expect(user).toHaveAttribute('data-images', '1');
    await expect(user).toContainText('What is in this picture?');
    expect(await user.locator('img.thumb').evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth)).toBe(96);
    await expect(page.locator('#attachments')).toBeHidden();
    expect((await streamedLengths()).length, 'the answer arrives in pieces').toBeGreaterThan(1);
  });
}

test('an undecodable file shows IMAGE_DECODE_FAILED; the next message still works', async () => {
  await page.click('#reset');
  await attachFile('broken.png', 'image/png', Buffer.from('this is not an image at all'));
  const stats = await send('And this one?');
  expect(stats).toBe('');
  await expect(page.locator('#error')).toHaveAttribute('data-code', 'IMAGE_DECODE_FAILED');
  await expect(page.locator('#error')).toContainText('could not be decoded');
  await expect(page.locator('#error')).toContainText("That is 'broken.png'");
  await expect(page.locator('#messages .msg.user').last()).toHaveAttribute('data-failed', 'IMAGE_DECODE_FAILED');
  const next = await send('Tell me a story.');
  expect(next).toMatch(/TTFT \d+ ms/);
  await expect(page.locator('#error')).toBeHidden();
  // And an image again, in the same conversation.
  await attachFile('photo.png', 'image/png', images.png);
  expect(await send('What about this?')).toMatch(/TTFT \d+ ms/);
  await expect(page.locator('#error')).toBeHidden();
});

test('paste and drop attach images; × removes one', async () => {
  await page.click('#reset');
  const b64 = images.png.toString('base64');
  await page.evaluate((b64) => {
    const file = (n: string) => new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], n, { type: 'image/png' });
    const paste = new DataTransfer();
    paste.items.add(file('pasted.png'));
    document.getElementById('prompt')!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: paste, bubbles: true, cancelable: true }));
    const drop = new DataTransfer();
    drop.items.add(file('dropped.png'));
    document.getElementById('messages')!.dispatchEvent(new DragEvent('drop', { dataTransfer: drop, bubbles: true, cancelable: true }));
  }, b64);
  await expect(page.locator('#attachments .attachment')).toHaveCount(2);
  await expect(page.locator('#attachments .attachment').nth(0)).toHaveAttribute('data-name', 'pasted.png');
  await expect(page.locator('#attachments .attachment').nth(1)).toHaveAttribute('data-name', 'dropped.png');
  // Dropping images does not load a model.
  await expect(page.locator('#model-status')).toContainText('fake-vlm');
  await page.locator('#attachments .attachment').nth(0).locator('button').click();
  await expect(page.locator('#attachments .attachment')).toHaveCount(1);
  expect(await send('Describe it.')).toMatch(/TTFT \d+ ms/);
  await expect(page.locator('#messages .msg.user').last().locator('img.thumb')).toHaveCount(1);
});

test('an image over the pixel limit shows IMAGE_TOO_LARGE; the next message still works', async () => {
  test.setTimeout(120_000);
  await page.click('#reset');
  // 8200 x 8200 = 67.2 M pixels, over the engine's default limit of 8192 x 8192 (a flat PNG is small).
  const b64 = await page.evaluate(async () => {
    const c = new OffscreenCanvas(8200, 8200);
    const g = c.getContext('2d')!;
    g.fillStyle = '#3a6';
    g.fillRect(0, 0, 8200, 8200);
    const bytes = new Uint8Array(await (await c.convertToBlob({ type: 'image/png' })).arrayBuffer());
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  });
  await attachFile('huge.png', 'image/png', Buffer.from(b64, 'base64'));
  expect(await send('How big is this?')).toBe('');
  await expect(page.locator('#error')).toHaveAttribute('data-code', 'IMAGE_TOO_LARGE');
  await expect(page.locator('#error')).toContainText("That is 'huge.png'");
  await expect(page.locator('#error')).toContainText('smaller image');
  expect(await send('Tell me a story.')).toMatch(/TTFT \d+ ms/);
  await expect(page.locator('#error')).toBeHidden();
});
