// Qwen3-VL in the two chat UIs. The demo (index.html): its model menu lists the VLMs
// (models.json); picking "Qwen3-VL 2B Instruct" loads that Hub id int4 (its entry's
// quantization), here answered by a mimicked Hub (page.route on https://huggingface.co) with
// the tiny-random Qwen3-VL (e2e/vlm_fixture.ts); an attached PNG goes with the message and the
// reply streams. <pop-chat> (apps/embed/pop_chat.ts, on the dev server): its Image… input
// attaches a PNG to the next message, and send(text, images) takes one from the page; both get
// a reply on the tiny Qwen3-VL, the second turn with the first image still in the history.
import { test, expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE, ROOT, waitState } from './helpers.ts';
import { serveTinyQwenVl, testImages, tinyQwenVlFiles } from './vlm_fixture.ts';

const CORS = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'content-length' };
const QWEN_ID = 'Qwen/Qwen3-VL-2B-Instruct';

test('the demo menu lists the VLMs; Qwen3-VL 2B loads int4 from the Hub and answers an attached image', async ({ page }) => {
  const catalog = JSON.parse(readFileSync(join(ROOT, 'apps/demo/models.json'), 'utf8')) as { models: { id: string; images?: boolean; quantization?: string }[] };
  expect(catalog.models.filter((m) => m.images).map((m) => m.id)).toEqual(['HuggingFaceTB/SmolVLM-256M-Instruct', QWEN_ID, 'google/gemma-3-4b-it']);
  expect(catalog.models.find((m) => m.id === QWEN_ID)!.quantization).toBe('q4');
  const files = tinyQwenVlFiles();
  const asked: string[] = [];
  await page.route('https://huggingface.co/**', (route) => {
    const m = /^\/(.+?\/.+?)\/resolve\/main\/(.+)$/.exec(new URL(route.request().url()).pathname);
    const body = m && m[1] === QWEN_ID ? files.get(m[2]) : undefined;
    if (m && body) asked.push(m[2]);
    if (!body) return route.fulfill({ status: 404, headers: CORS, body: 'Entry not found' });
    if (route.request().method() === 'HEAD') return route.fulfill({ status: 200, headers: { ...CORS, 'content-length': String(body.length) }, body: '' });
    return route.fulfill({ status: 200, headers: { ...CORS, 'content-type': 'application/octet-stream' }, body });
  });
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  await page.goto(BASE + '/');
  await waitState(page, 'ready');
  await expect(page.locator(`#model-select option[value="${QWEN_ID}"]`)).toHaveText(/Qwen3-VL 2B Instruct \(images, int4\)/);
  await page.selectOption('#model-select', QWEN_ID);
  await waitState(page, 'loading', 10_000).catch(() => {});
  await waitState(page, 'ready');
  await expect(page.locator('#error')).toBeHidden();
  await expect(page.locator('#model-status')).toContainText(`${QWEN_ID} · 5 layers`);
  await expect(page.locator('#model-status')).toContainText('· q4');
  expect(asked).toEqual(expect.arrayContaining(['config.json', 'preprocessor_config.json', 'model.safetensors']));

  const { png } = await testImages(page);
  await page.fill('#max-tokens', '6');
  await page.setInputFiles('#image-input', { name: 'photo.png', mimeType: 'image/png', buffer: png });
  await expect(page.locator('#attachments img.thumb')).toHaveCount(1);
  await page.fill('#prompt', 'What is in this picture?');
  await page.click('#send');
  await waitState(page, 'generating', 10_000).catch(() => {});
  await waitState(page, 'ready', 90_000);
  await expect(page.locator('#error')).toBeHidden();
  const stats = (await page.locator('#stats').textContent()) ?? '';
  expect(stats).toMatch(/TTFT \d+ ms/);
  // 96 x 80 -> 64 x 48 (at most 64^2 pixels): 12 image tokens, plus the template's turn and vision markers.
  expect(Number(/(\d+) prompt \+/.exec(stats)?.[1])).toBeGreaterThan(12 + 6);
  expect(Number(/\+ (\d+) new tokens/.exec(stats)?.[1])).toBeGreaterThan(0);
  await expect(page.locator('#messages .msg.user').last()).toHaveAttribute('data-images', '1');
});

test('<pop-chat> sends an image (its Image… input, then send(text, images)) to a Qwen3-VL and gets replies', async ({ page }) => {
  const url = await serveTinyQwenVl(page);
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  await page.goto(`${BASE}/test/harness.html`);
  await page.waitForFunction(() => (globalThis as any).__popReady === true);
  await page.addScriptTag({ type: 'module', content: "import { PopChatElement } from '/apps/embed/pop_chat.ts'; if (!customElements.get('pop-chat')) customElements.define('pop-chat', PopChatElement); window.__popChat = true;" });
  await page.waitForFunction(() => (globalThis as any).__popChat === true);
  await page.evaluate((u) => {
    const el = document.createElement('pop-chat');
    el.setAttribute('model', u);
    el.setAttribute('max-tokens', '4');
    el.setAttribute('pop', 'off');
    document.body.append(el);
  }, url);
  const chat = page.locator('pop-chat');
  await expect(chat).toHaveAttribute('data-state', 'ready', { timeout: 90_000 });
  const { png } = await testImages(page);
  await chat.locator('[data-testid=image-input]').setInputFiles({ name: 'photo.png', mimeType: 'image/png', buffer: png });
  await expect(chat.locator('[data-testid=attachments]')).toHaveText('Attached: photo.png');
  await chat.locator('[data-testid=prompt]').fill('What is in the picture?');
  await chat.locator('[data-testid=send]').click();
  await expect(chat.locator('[data-testid=stats]')).toContainText('TTFT', { timeout: 60_000 });
  await expect(chat.locator('[data-testid=error]')).toHaveText('');
  await expect(chat.locator('.msg.user').first()).toHaveAttribute('data-images', '1');
  await expect(chat.locator('[data-testid=attachments]')).toHaveText('');
  const first = Number(/(\d+) prompt \+/.exec((await chat.locator('[data-testid=stats]').textContent()) ?? '')?.[1]);
  expect(first).toBeGreaterThan(12 + 6);
  expect((await chat.locator('.msg.assistant').first().textContent())!.length).toBeGreaterThan(0);
  // From the page: a data URL image with the next message (the first image stays in the history).
  const r = await page.evaluate(async (b64) => {
    const el = document.querySelector('pop-chat') as HTMLElement & { send(text: string, images: string[]): Promise<string>; engine: any };
    const reply = await el.send('And this one?', [`data:image/png;base64,${b64}`]);
    const error = el.shadowRoot!.querySelector('[data-testid=error]')!.textContent;
    return { reply, error, users: [...el.shadowRoot!.querySelectorAll('.msg.user')].map((m) => (m as HTMLElement).dataset.images ?? '0') };
  }, png.toString('base64'));
  expect(r.error).toBe('');
  expect(r.reply.length).toBeGreaterThan(0);
  expect(r.users).toEqual(['1', '1']);
});
