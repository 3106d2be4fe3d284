// A lost GPU device surfaces as DeviceLostError (code DEVICE_LOST) on the next call, never a
// hang; a new engine (reload) works again. A terminated worker rejects the calls in flight
// with WORKER_DIED.
import { test, expect } from './fixtures.ts';

test('device lost mid-conversation: DEVICE_LOST, then a reload works', async ({ harness }) => {
  const r = await harness.evaluate(async () => {
    const pop = (globalThis as any).pop;
    const e = await pop.createGpuEngine('/models/stories260K');
    const before = (await e.generate([1, 403, 407], { maxTokens: 6, ignoreEos: true })).ids;
    e.ops.gpu.device.destroy();
    let code = 'no error';
    try {
      await e.generate([1, 403, 407], { maxTokens: 6, ignoreEos: true });
    } catch (x) {
      code = (x as any).code ?? String(x);
    }
    let again = 'no error';
    try {
      await e.generate([1, 403, 407], { maxTokens: 6, ignoreEos: true });
    } catch (x) {
      again = (x as any).code ?? String(x);
    }
    const fresh = await pop.createGpuEngine('/models/stories260K');
    const after = (await fresh.generate([1, 403, 407], { maxTokens: 6, ignoreEos: true })).ids;
    fresh.unload();
    return { before, code, again, after };
  });
  expect(r.code).toBe('DEVICE_LOST');
  expect(r.again).toBe('DEVICE_LOST');
  expect(r.after).toEqual(r.before);
});

test('a terminated worker rejects the request in flight with WORKER_DIED', async ({ harness }) => {
  const r = await harness.evaluate(async () => {
    const pop = (globalThis as any).pop;
    const e = await pop.CreateWorkerEngine('/models/stories260K');
    const p = e.completions.create({ prompt: 'Once upon a time', max_tokens: 300, ignore_eos: true });
    await new Promise((res) => setTimeout(res, 300));
    e.terminate();
    try {
      await p;
      return 'no error';
    } catch (x) {
      return (x as any).code ?? String(x);
    }
  });
  expect(r).toBe('WORKER_DIED');
});
