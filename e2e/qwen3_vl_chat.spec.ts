// Qwen3-VL through the worker API the demo and <pop-chat> use: an OpenAI image_url part (a PNG
// data URL) on a tiny-random Qwen3-VL (e2e/vlm_fixture.ts), laid out by its chat template
// (<|vision_start|><|image_pad|>..<|vision_end|>), streamed back; a second turn with the image
// in the history; a POP keep below the DeepStack depth is POP_KEEP_TOO_SHALLOW and the chat goes on.
import { test, expect } from '@playwright/test';
import { BASE } from './helpers.ts';
import { serveTinyQwenVl, testImages } from './vlm_fixture.ts';

test('chat.completions with an image on a tiny Qwen3-VL: two turns stream; keep 2 (< 3 DeepStack taps) is POP_KEEP_TOO_SHALLOW', async ({ page }) => {
  const url = await serveTinyQwenVl(page);
  await page.goto(`${BASE}/test/harness.html`);
  await page.waitForFunction(() => (globalThis as any).__popReady === true);
  const png = (await testImages(page)).png.toString('base64');
  const r = await page.evaluate(async ([modelUrl, b64]) => {
    const pop = (globalThis as any).pop;
    const e = await pop.CreateWorkerEngine(modelUrl);
    const image = { type: 'image_url', image_url: { url: `data:image/png;base64,${b64}` } };
    const ask = async (messages: unknown[], extra: Record<string, unknown> = {}) => {
      const chunks = await e.chat.completions.create({ stream: true, stream_options: { include_usage: true }, max_tokens: 4, temperature: 0, ignore_eos: true, messages, ...extra });
      let text = '', n = 0, usage: any = null;
      for await (const ch of chunks) (text += ch.choices[0]?.delta?.content ?? ''), n++, ch.usage && (usage = ch.usage);
      return { text, n, usage };
    };
    try {
      const first = [{ role: 'user', content: [image, { type: 'text', text: 'What is in the picture?' }] }];
      const one = await ask(first);
      const two = await ask([...first, { role: 'assistant', content: one.text }, { role: 'user', content: 'And the colours?' }]);
      let shallow = 'no error';
      try {
        await ask(first, { pop: 2 });
      } catch (err) {
        shallow = (err as { code?: string }).code ?? String(err);
      }
      const after = await ask(first);
      return { one, two, shallow, after };
    } finally {
      e.terminate();
    }
  }, [url, png] as const);
  // 96 x 80 -> 64 x 48 at most 64^2 pixels: 12 image tokens, plus the template's turn and vision markers.
  // prompt_tokens counts what was prefilled (WebLLM's meaning); the whole prompt adds the reused prefix.
  const whole = (u: any) => u.prompt_tokens + u.extra.reused_prompt_tokens;
  expect(r.one.usage.completion_tokens).toBe(4);
  expect(whole(r.one.usage)).toBeGreaterThan(12 + 6);
  expect(r.one.n).toBeGreaterThan(1);
  expect(whole(r.two.usage)).toBeGreaterThan(whole(r.one.usage));
  expect(r.shallow).toBe('POP_KEEP_TOO_SHALLOW');
  expect(whole(r.after.usage)).toBe(whole(r.one.usage));
});
