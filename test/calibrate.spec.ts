// Stage-aware calibration on WebGPU (stories260K): the virtual gates measure per-layer
// importance for context and predicted tokens, and the recommended keep respects the budget.
import { test, expect } from './fixtures.ts';

const TEXT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high. Lily asked her mom to help her.';

test('calibration: gates, POP loss sweep and recommended keep', async ({ harness }) => {
  const r = await harness.evaluate(async (text) => {
    const pop = (globalThis as any).pop;
    const engine = await pop.createGpuEngine('/models/stories260K');
    const ids = engine.tokenizer.encode(text);
    const report = await pop.calibrate(engine, ids, { context: 32, continuation: 8, budget: 0.05 });
    engine.unload();
    return report;
  }, TEXT);
  expect(r.layers).toBe(5);
  expect(r.prefillImportance).toHaveLength(5);
  expect(r.decodeImportance).toHaveLength(5);
  // The last layer's output for context tokens feeds nothing but their own logits.
  expect(Math.abs(r.prefillImportance[4])).toBeLessThan(1e-4);
  // keep = L-1 is exact, so its loss rise is zero.
  expect(Math.abs(r.popLoss.find((p: any) => p.keep === 4).delta)).toBeLessThan(1e-4);
  // Closing a layer for the predicted token costs more than closing it for the context.
  expect(r.decodeImportance[0]).toBeGreaterThan(r.prefillImportance[4]);
  expect(r.keep).toBeGreaterThanOrEqual(1);
  expect(r.keep).toBeLessThanOrEqual(5);
  for (const p of r.popLoss) if (p.keep >= r.keep) expect(p.delta).toBeLessThanOrEqual(r.budget);
});
