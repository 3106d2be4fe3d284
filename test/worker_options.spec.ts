// Engine options through the worker API: int4 weights (quantization) reach the worker's
// engine: the model info says so, and a greedy completion equals the same prompt on an
// int4 engine built directly in the page.
import { test, expect } from './fixtures.ts';

test('CreateWorkerEngine with quantization q4 loads int4 weights', async ({ harness }) => {
  const r = await harness.evaluate(async () => {
    const pop = (globalThis as any).pop;
    const prompt = 'Once upon a time';
    const w = await pop.CreateWorkerEngine('/models/stories260K', { quantization: 'q4' });
    const viaWorker = (await w.completions.create({ prompt, max_tokens: 12, temperature: 0, ignore_eos: true })).choices[0].text;
    const info = w.modelInfo;
    w.terminate();
    const direct = await pop.createGpuEngine('/models/stories260K', { quantization: 'q4' });
    const ids = (await direct.generate(direct.tokenizer.encode(prompt, true), { maxTokens: 12, ignoreEos: true })).ids;
    const inPage = direct.tokenizer.decode(ids);
    direct.unload();
    return { viaWorker, inPage, info };
  });
  expect(r.info.quantization).toBe('q4');
  expect(r.viaWorker.length).toBeGreaterThan(0);
  expect(r.viaWorker).toBe(r.inPage);
});
