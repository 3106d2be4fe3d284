// Control that never wedges: a few hundred random aborts across load, prefill and decode
// (POP_LLM_ABORT_ROUNDS=1000 under `npm run bench:e2e`). After each, the next request gives
// the same tokens as a fresh engine and GPU memory in use is back at its baseline.
import { test, expect } from './fixtures.ts';

const ROUNDS = Number(process.env.POP_LLM_ABORT_ROUNDS ?? 200);

test(`${ROUNDS} random aborts across load, prefill and decode leave the engine exact and leak-free`, async ({ harness }) => {
  test.setTimeout(600_000);
  const r = await harness.evaluate((n) => (globalThis as any).pop.abortStress(n, 7), ROUNDS);
  console.log(JSON.stringify(r));
  expect(r.otherErrors).toEqual([]);
  expect(r.mismatches).toBe(0);
  expect(r.leaks).toBe(0);
  for (const stage of ['load', 'prefill', 'decode']) expect(r.aborted[stage] ?? 0, `aborts during ${stage}`).toBeGreaterThan(0);
});
