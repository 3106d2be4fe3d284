// A tiny-random SmolVLM (Idefics3) for the e2e specs: SmolVLM-256M's real config scaled down,
// its real preprocessor_config.json, and the stories260K tokenizer with Idefics3's special
// tokens added (withIdefics3Tokens). Served to a page through page.route, or written to a
// folder for the CLI's `random:<dir>` loader.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { BASE, ROOT, STORIES_DIR } from './helpers.ts';
import { QWEN3_VL_CHAT_TEMPLATE, qwen3VlPreprocessorConfig, randomVlmFiles, scaleIdefics3Config, scaleQwen3VlConfig, withIdefics3Tokens, withQwen3VlTokens } from '../src/vision/random_vlm.ts';

export const VLM_CFG_DIR = join(ROOT, 'configs/HuggingFaceTB__SmolVLM-256M-Instruct');
export const TINY_IMAGE_ID = 520;
const VOCAB = 560;

/** The scaled config.json (2 text layers, a 2-layer 64-wide tower on 64 px tiles, 4 tokens per tile). */
export function tinyVlmConfig(): Record<string, any> {
  const config = JSON.parse(readFileSync(join(VLM_CFG_DIR, 'config.json'), 'utf8'));
  const scaled = scaleIdefics3Config(config, {
    text: { layers: 2, hidden: 64, heads: 4, kvHeads: 2, inter: 96, vocab: VOCAB, maxPositions: 1024 },
    vision: { hidden: 64, layers: 2, heads: 4, inter: 128, imageSize: 64, patch: 16 },
    scaleFactor: 2, imageTokenId: TINY_IMAGE_ID, longestEdge: 128,
  });
  scaled.text_config.bos_token_id = 1;
  scaled.text_config.eos_token_id = 2;
  return scaled;
}

export function tinyVlmTokenizer(): string {
  return withIdefics3Tokens(readFileSync(join(STORIES_DIR, 'tokenizer.json'), 'utf8'), TINY_IMAGE_ID, VOCAB);
}

/** Every file of the tiny VLM, by name. */
export function tinyVlmFiles(seed = 5): Map<string, Buffer> {
  const pre = JSON.parse(readFileSync(join(VLM_CFG_DIR, 'preprocessor_config.json'), 'utf8'));
  const files = new Map<string, Buffer>();
  for (const [k, v] of randomVlmFiles(tinyVlmConfig(), pre, { seed })) files.set(k, Buffer.from(v));
  files.set('tokenizer.json', Buffer.from(tinyVlmTokenizer()));
  files.set('tokenizer_config.json', readFileSync(join(STORIES_DIR, 'tokenizer_config.json')));
  return files;
}

/** Serves the tiny VLM at BASE/fake-vlm/<file> for this page (and its workers); returns the model URL. */
export async function serveTinyVlm(page: Page): Promise<string> {
  const files = tinyVlmFiles();
  await page.route('**/fake-vlm/**', (route) => {
    const name = new URL(route.request().url()).pathname.split('/fake-vlm/')[1];
    const body = files.get(name);
    return body
      ? route.fulfill({ status: 200, body, headers: { 'content-length': String(body.length) }, contentType: name.endsWith('.json') ? 'application/json' : 'application/octet-stream' })
      : route.fulfill({ status: 404, body: 'Entry not found' });
  });
  return `${BASE}/fake-vlm`;
}

/** A config folder for `pop-llm --model random:<dir>`: config, preprocessor config and tokenizer. */
export function tinyVlmConfigDir(): string {
  const dir = join(tmpdir(), `pop-llm-tiny-vlm-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(tinyVlmConfig(), null, 2));
  writeFileSync(join(dir, 'preprocessor_config.json'), readFileSync(join(VLM_CFG_DIR, 'preprocessor_config.json')));
  writeFileSync(join(dir, 'tokenizer.json'), tinyVlmTokenizer());
  writeFileSync(join(dir, 'tokenizer_config.json'), readFileSync(join(STORIES_DIR, 'tokenizer_config.json')));
  return dir;
}

/** Ids of the tiny Qwen3-VL's vision and turn tokens (the stories260K tokenizer has 512). */
export const TINY_QWEN = { imageTokenId: 520, visionStartId: 521, visionEndId: 522, imStartId: 523, imEndId: 524 };

/**
 * A config folder for `pop-llm --model random:<dir>` holding a tiny Qwen3-VL: the 4B config
 * scaled down (5 text layers x 64, head_dim 32, mrope_section [6, 5, 5]; a 5-block tower 32
 * wide, patch 8, DeepStack taps 0 / 2 / 3), the published processor settings at 32^2..64^2
 * pixels, the stories260K tokenizer with Qwen3-VL's tokens, and a Qwen3-VL-style chat template.
 */
export function tinyQwenVlConfigDir(): string {
  const raw = JSON.parse(readFileSync(join(ROOT, 'configs/Qwen__Qwen3-VL-4B-Instruct/config.json'), 'utf8'));
  const config = scaleQwen3VlConfig(raw, {
    text: { layers: 5, hidden: 64, heads: 4, kvHeads: 2, inter: 96, vocab: VOCAB, maxPositions: 1024, headDim: 32 },
    vision: { hidden: 32, layers: 5, heads: 2, inter: 64, patch: 8, positions: 36, deepstack: [0, 2, 3] },
    imageTokenId: TINY_QWEN.imageTokenId, visionStartId: TINY_QWEN.visionStartId, visionEndId: TINY_QWEN.visionEndId,
  });
  Object.assign(config.text_config, { bos_token_id: 1, eos_token_id: 2 });
  const dir = join(tmpdir(), `pop-llm-tiny-qwen3vl-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify({ ...qwen3VlPreprocessorConfig(8, 2, 2), size: { shortest_edge: 1024, longest_edge: 4096 } }, null, 2));
  writeFileSync(join(dir, 'tokenizer.json'), withQwen3VlTokens(readFileSync(join(STORIES_DIR, 'tokenizer.json'), 'utf8'), TINY_QWEN));
  const tc = JSON.parse(readFileSync(join(STORIES_DIR, 'tokenizer_config.json'), 'utf8'));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...tc, chat_template: QWEN3_VL_CHAT_TEMPLATE }));
  return dir;
}

/** Every file of the tiny Qwen3-VL (tinyQwenVlConfigDir's files plus random weights), by name. */
export function tinyQwenVlFiles(): Map<string, Buffer> {
  const dir = tinyQwenVlConfigDir();
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const files = new Map<string, Buffer>();
  for (const [k, v] of randomVlmFiles(config, JSON.parse(readFileSync(join(dir, 'preprocessor_config.json'), 'utf8')), { seed: 5 })) files.set(k, Buffer.from(v));
  for (const name of ['tokenizer.json', 'tokenizer_config.json']) files.set(name, readFileSync(join(dir, name)));
  return files;
}

/** Serves the tiny Qwen3-VL (tinyQwenVlFiles) at BASE/fake-qwen3vl/<file>; returns the model URL. */
export async function serveTinyQwenVl(page: Page): Promise<string> {
  const files = tinyQwenVlFiles();
  await page.route('**/fake-qwen3vl/**', (route) => {
    const body = files.get(new URL(route.request().url()).pathname.split('/fake-qwen3vl/')[1]);
    return body ? route.fulfill({ status: 200, body, contentType: 'application/octet-stream' }) : route.fulfill({ status: 404, body: 'Entry not found' });
  });
  return `${BASE}/fake-qwen3vl`;
}

/** A PNG and a JPEG (96 x 80 gradient + checker) drawn by a page's canvas, as bytes. */
export async function testImages(page: Page): Promise<{ png: Buffer; jpeg: Buffer }> {
  const r = await page.evaluate(`(async () => {
    const c = new OffscreenCanvas(96, 80);
    const g = c.getContext('2d');
    const grad = g.createLinearGradient(0, 0, 96, 80);
    grad.addColorStop(0, '#c33');
    grad.addColorStop(1, '#33c');
    g.fillStyle = grad;
    g.fillRect(0, 0, 96, 80);
    g.fillStyle = '#eee';
    for (let y = 0; y < 80; y += 16) for (let x = (y / 16) % 2 * 16; x < 96; x += 32) g.fillRect(x, y, 16, 16);
    const b64 = async (type) => {
      const bytes = new Uint8Array(await (await c.convertToBlob({ type, quality: 0.9 })).arrayBuffer());
      let s = '';
      for (const v of bytes) s += String.fromCharCode(v);
      return btoa(s);
    };
    return { png: await b64('image/png'), jpeg: await b64('image/jpeg') };
  })()`) as { png: string; jpeg: string };
  return { png: Buffer.from(r.png, 'base64'), jpeg: Buffer.from(r.jpeg, 'base64') };
}
