// VLMs in the CLI and in calibration, on a tiny-random SmolVLM (e2e/vlm_fixture.ts):
// `pop-llm bench` image-prompt rows (random:<config-dir> with model_type idefics3),
// `pop-llm calibrate --image FILE` (image+text samples), and calibrate() in the page with
// image samples (the image changes the loss; keep = L-1 stays exact).
import { test, expect } from '@playwright/test';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASE, ROOT } from './helpers.ts';
import { serveTinyVlm, testImages, tinyQwenVlConfigDir, tinyVlmConfigDir, TINY_QWEN } from './vlm_fixture.ts';

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(process.execPath, ['bin/pop-llm.mjs', ...args], { cwd: ROOT, timeout: 170_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      ok({ code: err ? (typeof (err as any).code === 'number' ? (err as any).code : -1) : 0, stdout, stderr });
    });
  });
}
const lines = (s: string) => s.trim().split('\n').map((l) => JSON.parse(l));

const TEXT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her red ball.\n\nOne day, a big dog came to the park. The dog was happy and wanted to play with Lily and her friends.\n';
const dir = join(tmpdir(), `pop-llm-cli-vlm-${process.pid}`);
let model = '';
const files = { png: '', jpeg: '', bad: '', text: '' };

test.beforeAll(async ({ browser }) => {
  mkdirSync(dir, { recursive: true });
  model = 'random:' + tinyVlmConfigDir();
  const page = await browser.newPage();
  const im = await testImages(page);
  await page.close();
  for (const [k, name, body] of [['png', 'a.png', im.png], ['jpeg', 'b.jpg', im.jpeg], ['bad', 'bad.png', Buffer.from('not an image')], ['text', 'calib.txt', Buffer.from(TEXT)]] as const) {
    files[k] = join(dir, name);
    writeFileSync(files[k], body);
  }
});

test('cli generate --image on a tiny Qwen3-VL: the chat template lays the image out, the JSON holds the prompt ids; a keep below the DeepStack depth is POP_KEEP_TOO_SHALLOW', async () => {
  const qwen = 'random:' + tinyQwenVlConfigDir();
  const r = await cli(['generate', '--model', qwen, '--image', files.png, '--prompt', 'What is in the picture?', '--max-tokens', '3', '--ignore-eos', '--pop', 'exact', '--json']);
  expect(r.code, r.stderr + r.stdout).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out.ids).toHaveLength(3);
  expect([out.keep, out.layers]).toEqual([4, 5]);
  // 96 x 80 -> smart_resize (factor 16, at most 64^2 pixels) -> 64 x 48: a 4 x 3 merged grid, 12 image tokens.
  const ids: number[] = out.prompt_ids;
  const at = ids.indexOf(TINY_QWEN.visionStartId);
  expect(ids.slice(at, at + 14)).toEqual([TINY_QWEN.visionStartId, ...Array(12).fill(TINY_QWEN.imageTokenId), TINY_QWEN.visionEndId]);
  expect(ids[0]).toBe(TINY_QWEN.imStartId);
  expect(ids.filter((t) => t === TINY_QWEN.imageTokenId)).toHaveLength(12);
  const shallow = await cli(['generate', '--model', qwen, '--image', files.png, '--prompt', 'What is in the picture?', '--max-tokens', '2', '--pop', '2', '--json']);
  expect(shallow.code).toBe(1);
  expect(JSON.parse(shallow.stdout).error).toMatchObject({ code: 'POP_KEEP_TOO_SHALLOW', fields: { keep: 2, minKeep: 3 } });
});

test('cli bench on a VLM: image-prompt rows with POP off, exact and 2/3', async () => {
  const r = await cli(['bench', '--model', model, '--prompt-tokens', '16', '--pop', 'off,exact,0.667', '--image-edge', '64', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const all = lines(r.stdout);
  expect(all.filter((l) => !l.kind).map((l) => l.pop)).toEqual(['off', 'exact', '0.667']);
  const img = all.filter((l) => l.kind === 'image_prompt');
  expect(img.map((l) => [l.pop, l.keep, l.layers])).toEqual([['off', 2, 2], ['exact', 1, 2], ['0.667', 2, 2]]);
  for (const l of img) {
    // 512 x 512 at longest edge 64 = one 64 px tile: 4 image tokens.
    expect([l.tiles, l.image_tokens, l.image, l.longest_edge, l.vision_layers]).toEqual([1, 4, '512x512', 64, 2]);
    expect(l.prompt_tokens).toBeGreaterThan(l.image_tokens);
    expect(l.vision_ms).toBeGreaterThan(0);
    expect(l.prefill_ms).toBeGreaterThan(0);
    expect(l.ttft_ms).toBeGreaterThanOrEqual(l.vision_ms + l.prefill_ms);
    expect(l.ttft_source).toBe('preprocess+vision+prefill');
  }
  expect(img[0].speedup_vs_off).toBe(1);
});

test('cli bench --image-full: every POP setting end to end', async () => {
  const r = await cli(['bench', '--model', model, '--prompt-tokens', '8', '--pop', 'off,exact', '--image-edge', '128', '--image-size', '96x80', '--image-full', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const img = lines(r.stdout).filter((l) => l.kind === 'image_prompt');
  expect(img).toHaveLength(2);
  for (const l of img) {
    expect([l.tiles, l.image_tokens, l.ttft_source, l.vision_ms]).toEqual([5, 20, 'measured', null]);
    expect(l.ttft_ms).toBeGreaterThan(0);
  }
});

test('cli calibrate --image: image+text samples, the recommendation is written', async () => {
  const r = await cli(['calibrate', '--model', model, '--text', files.text, '--image', files.png, '--image', files.jpeg, '--budget', '0.05', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out.samples).toBe(2);
  expect(out.image_samples).toBe(2);
  expect(out.num_layers).toBe(2);
  // Each sample's context holds its image's 20 tokens (2 x 2 tiles + global, 4 each) and text.
  expect(out.context_tokens).toBeGreaterThan(2 * 20);
  expect(out.predicted_tokens).toBeGreaterThan(2);
  expect(Math.abs(out.pop_loss.find((p: any) => p.keep === 1).delta)).toBeLessThan(1e-3); // keep = L-1 is exact
  expect(out.recommended_keep).toBeGreaterThanOrEqual(1);
  expect(out.written).toMatch(/\.json$/);
});

test('cli calibrate --image: typed errors for a bad image and for a text-only model', async () => {
  const bad = await cli(['calibrate', '--model', model, '--text', files.text, '--image', files.bad, '--json']);
  expect(bad.code).toBe(1);
  expect(JSON.parse(bad.stdout).error.code).toBe('IMAGE_DECODE_FAILED');
  const textOnly = await cli(['calibrate', '--model', 'public/models/stories260K', '--text', files.text, '--image', files.png, '--json']);
  expect(textOnly.code).toBe(1);
  expect(JSON.parse(textOnly.stdout).error.code).toBe('INVALID_ARGUMENT');
  expect(textOnly.stderr).toContain('text-only');
  const missing = await cli(['calibrate', '--model', model, '--text', files.text, '--image', join(dir, 'nope.png'), '--json']);
  expect(missing.code).toBe(1);
  expect(JSON.parse(missing.stdout).error.code).toBe('MODEL_FILE_MISSING');
});

test('calibrate() in the page with image samples: images change the loss, keep = L-1 is exact', async ({ page }) => {
  const url = await serveTinyVlm(page);
  await page.goto(`${BASE}/test/harness.html`);
  await page.waitForFunction(() => (globalThis as any).__popReady === true);
  const r = await page.evaluate(async (url) => {
    const pop = (globalThis as any).pop;
    const { expandImageTokens } = await import('/src/vision/prompt.ts' as string);
    const { preprocessImages } = await import('/src/vision/runtime.ts' as string);
    const e = await pop.createGpuEngine(url);
    const rt = e.vision;
    const rgba = (f: (x: number, y: number) => number[]) => {
      const w = 96, h = 80, data = new Uint8ClampedArray(w * h * 4);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([...f(x, y), 255], (y * w + x) * 4);
      return { width: w, height: h, data };
    };
    const a = rgba((x, y) => [x * 2, y * 3, 40]);
    const b = rgba((x, y) => [255 - x * 2, ((x >> 3) + (y >> 3)) % 2 ? 230 : 20, y * 3]);
    const [pa] = await preprocessImages([a], rt);
    const text = e.tokenizer.encode(' Once upon a time there was a little girl who loved to play in the park', false);
    const ctx = e.tokenizer.encode(expandImageTokens('<image>', [pa], rt.config.tokensPerTile));
    const sample = (img: unknown) => ({ context: [...ctx, ...text.slice(0, 10)], continuation: text.slice(10), images: [img] });
    const ra = await pop.calibrate(e, [sample(a)], { budget: 0.05 });
    const rb = await pop.calibrate(e, [sample(b)], { budget: 0.05 });
    const rp = await pop.calibrate(e, [sample(pa)], { budget: 0.05 });
    const code = await pop.calibrate(e, [sample(new Uint8Array([1, 2, 3]))]).then(() => 'no error', (x: any) => x.code);
    e.unload();
    return { ra, rb, rp, code };
  }, url);
  expect(r.ra.samples).toBe(1);
  expect(r.ra.imageSamples).toBe(1);
  expect(r.ra.layers).toBe(2);
  // Preprocessed or raw, the same image gives the same loss; another image gives another.
  expect(Math.abs(r.rp.baseLoss - r.ra.baseLoss)).toBeLessThan(1e-5);
  expect(Math.abs(r.rb.baseLoss - r.ra.baseLoss)).toBeGreaterThan(1e-4);
  for (const x of [r.ra, r.rb]) expect(Math.abs(x.popLoss.find((p: any) => p.keep === 1).delta)).toBeLessThan(1e-3);
  expect(r.code).toBe('IMAGE_DECODE_FAILED');
});
