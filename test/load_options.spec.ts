// Load options given straight to createGpuEngine (no API field checks in front of it): a bad
// value is refused by name with INVALID_ARGUMENT, never quietly replaced by a default.
import { test, expect } from './fixtures.ts';

test('createGpuEngine: a bad weightDtype, kvDtype, quantization or embeddingDtype is INVALID_ARGUMENT naming the option; good ones load', async ({ harness }) => {
  const r = await harness.evaluate(async () => {
    const pop = (globalThis as any).pop;
    const out: Record<string, unknown> = {};
    for (const [name, value] of [['weightDtype', 'f8'], ['kvDtype', 'bf16'], ['quantization', 'q3'], ['embeddingDtype', 'q8']]) {
      try {
        (await pop.createGpuEngine('/models/stories260K', { [name]: value })).unload();
        out[name] = 'loaded';
      } catch (x) {
        out[name] = { code: (x as any).code, argument: (x as any).fields?.argument };
      }
    }
    const ok = await pop.createGpuEngine('/models/stories260K', { weightDtype: 'f32', kvDtype: 'auto' });
    out.good = ok.opts.weightDtype;
    ok.unload();
    return out;
  });
  for (const name of ['weightDtype', 'kvDtype', 'quantization', 'embeddingDtype']) expect(r[name], name).toEqual({ code: 'INVALID_ARGUMENT', argument: name });
  expect(r.good).toBe('f32');
});
