// Images through the worker: OpenAI-style image parts (a PNG data URL, a JPEG File) go from
// the page through Comlink to the worker's vision tower and back as a streamed answer, on a
// tiny-random SmolVLM (Idefics3) built from the real config. Bad images get typed errors
// and the conversation goes on; an image sent to a text-only model is refused.
import { test, expect, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE, ROOT, STORIES_DIR } from './helpers.ts';
import { randomVlmFiles, scaleIdefics3Config } from '../src/vision/random_vlm.ts';

const CFG_DIR = join(ROOT, 'configs/HuggingFaceTB__SmolVLM-256M-Instruct');
const IMAGE_ID = 520;

/** The stories tokenizer plus Idefics3's special tokens, at ids the random model's vocab covers. */
function vlmTokenizer(): Buffer {
  const tok = JSON.parse(readFileSync(join(STORIES_DIR, 'tokenizer.json'), 'utf8'));
  const specials = ['<image>', '<fake_token_around_image>', '<global-img>'];
  for (let r = 1; r <= 4; r++) for (let c = 1; c <= 4; c++) specials.push(`<row_${r}_col_${c}>`);
  tok.added_tokens = [...(tok.added_tokens ?? []), ...specials.map((content, i) => ({ id: IMAGE_ID + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }))];
  return Buffer.from(JSON.stringify(tok));
}

function vlmFiles(): Map<string, Buffer> {
  const config = JSON.parse(readFileSync(join(CFG_DIR, 'config.json'), 'utf8'));
  const pre = JSON.parse(readFileSync(join(CFG_DIR, 'preprocessor_config.json'), 'utf8'));
  const scaled = scaleIdefics3Config(config, {
    text: { layers: 2, hidden: 64, heads: 4, kvHeads: 2, inter: 96, vocab: 560, maxPositions: 1024 },
    vision: { hidden: 64, layers: 2, heads: 4, inter: 128, imageSize: 64, patch: 16 },
    scaleFactor: 2, imageTokenId: IMAGE_ID, longestEdge: 128,
  });
  scaled.text_config.bos_token_id = 1;
  scaled.text_config.eos_token_id = 2;
  const files = new Map<string, Buffer>();
  for (const [k, v] of randomVlmFiles(scaled, pre, { seed: 5 })) files.set(k, Buffer.from(v));
  files.set('tokenizer.json', vlmTokenizer());
  files.set('tokenizer_config.json', readFileSync(join(STORIES_DIR, 'tokenizer_config.json')));
  return files;
}

async function serveVlm(page: Page): Promise<string> {
  const files = vlmFiles();
  await page.route('**/fake-vlm/**', (route) => {
    const name = new URL(route.request().url()).pathname.split('/fake-vlm/')[1];
    const body = files.get(name);
    return body ? route.fulfill({ status: 200, body, contentType: name.endsWith('.json') ? 'application/json' : 'application/octet-stream' }) : route.fulfill({ status: 404, body: 'no' });
  });
  return `${BASE}/fake-vlm`;
}

test('a PNG and a JPEG go through Comlink to the vision tower and back as a streamed answer; bad images are typed errors', async ({ page }) => {
  const url = await serveVlm(page);
  await page.goto(`${BASE}/test/harness.html`);
  await page.waitForFunction(() => (globalThis as any).__popReady === true);
  const r = await page.evaluate(async (modelUrl) => {
    const pop = (globalThis as any).pop;
    const canvas = document.createElement('canvas');
    canvas.width = 96;
    canvas.height = 80;
    const g = canvas.getContext('2d')!;
    const grad = g.createLinearGradient(0, 0, 96, 80);
    grad.addColorStop(0, '#c33');
    grad.addColorStop(1, '#33c');
    g.fillStyle = grad;
    g.fillRect(0, 0, 96, 80);
    const png = canvas.toDataURL('image/png');
    const jpegBlob: Blob = await new Promise((res) => canvas.toBlob((b) => res(b!), 'image/jpeg', 0.9));
    const jpeg = new File([jpegBlob], 'photo.jpg', { type: 'image/jpeg' });
    // The pixel limit is an engine option: exactly this PNG's 96 x 80 is allowed.
    const e = await pop.CreateWorkerEngine(modelUrl, { maxImagePixels: 96 * 80 });
    const ask = async (img: unknown) => {
      const chunks = await e.chat.completions.create({ stream: true, stream_options: { include_usage: true }, max_tokens: 6, temperature: 0, ignore_eos: true, messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in this picture? ' }, { type: 'image_url', image_url: { url: img } }] }] });
      let text = '', n = 0, usage: any = null;
      for await (const c of chunks) (text += c.choices[0]?.delta.content ?? ''), n++, c.usage && (usage = c.usage);
      return { text, n, usage };
    };
    const a = await ask(png);
    const b = await ask(jpeg);
    const code = async (p: Promise<unknown>) => p.then(() => 'no error', (x: any) => x.code);
    const bad = await code(ask('data:image/png;base64,AAAAAAAA'));
    // An image URL that cannot be fetched is a typed error too (never an empty image).
    const unreachable = await code(ask('http://127.0.0.1:9/none.png'));
    const big = document.createElement('canvas');
    big.width = 97;
    big.height = 80;
    big.getContext('2d')!.fillRect(0, 0, 97, 80);
    const tooLarge = await code(ask(big.toDataURL('image/png')));
    const after = await ask(png);
    e.terminate();
    const t = await pop.CreateWorkerEngine('/models/stories260K');
    const textOnly = await code(t.chat.completions.create({ max_tokens: 2, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: png } }] }] }));
    t.terminate();
    return { a, b, bad, unreachable, tooLarge, after, textOnly };
  }, url);
  for (const x of [r.a, r.b, r.after]) {
    expect(x.n).toBeGreaterThan(1);
    expect(x.usage.completion_tokens).toBe(6);
    // 96x80 -> longest edge 128 -> 2x2 tiles + the global view, 4 image tokens each.
    expect(x.usage.prompt_tokens).toBeGreaterThan(20);
  }
  expect(r.a.usage.prompt_tokens).toBe(r.b.usage.prompt_tokens);
  expect(r.after.text).toBe(r.a.text);
  expect(r.bad).toBe('IMAGE_DECODE_FAILED');
  expect(r.unreachable).toBe('IMAGE_FETCH_FAILED');
  expect(r.tooLarge).toBe('IMAGE_TOO_LARGE');
  expect(r.textOnly).toBe('INVALID_ARGUMENT');
});
