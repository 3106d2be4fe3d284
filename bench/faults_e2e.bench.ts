// `npm run bench:faults` (and part of `npm run bench:e2e`): random aborts across load, prefill
// and decode from ten concurrent clients through the public API (bench/faults_e2e.ts). Fails
// on a hang (a call past its deadline), an untyped error, a GPU-memory leak or a greedy
// request that differs from the reference. POP_LLM_FAULT_ABORTS sets the count (default 1000),
// POP_LLM_FAULT_CHECK_EVERY the aborts between checks (default 100).
import { test, expect } from '../test/fixtures.ts';

const ABORTS = Number(process.env.POP_LLM_FAULT_ABORTS ?? 1000);
/** A barrier check (GPU bytes, greedy text) every this many aborts. */
const CHECK_EVERY = Number(process.env.POP_LLM_FAULT_CHECK_EVERY ?? 100);

test(`${ABORTS} random aborts (load, prefill, decode) from ten concurrent clients: no hang, no untyped error, no leak, clean greedy text after`, async ({ harness }) => {
  test.setTimeout(3_600_000);
  const r = await harness.evaluate(async ([aborts, checkEvery]) => (await import('/bench/faults_e2e.ts' as string)).faultBench({
    aborts, clients: 10, seed: 15, weights: { load: 0.2, prefill: 0.4, decode: 0.4 }, opDeadlineMs: 120_000, checkEvery, loadWindowMs: 400, model: '/models/stories260K',
  }), [ABORTS, CHECK_EVERY]);
  console.log(JSON.stringify(r, null, 1));
  expect(r.hangs).toEqual([]);
  expect(r.untyped).toEqual([]);
  expect(r.leaks).toEqual([]);
  expect(r.mismatches).toEqual([]);
  expect(r.reference.length).toBeGreaterThan(10);
  for (const s of ['load', 'prefill', 'decode']) expect(r.issued[s], s).toBeGreaterThan(0);
  // Every code is one a user abort or a superseded load may give.
  expect(Object.keys(r.codes).filter((c) => c !== 'ABORTED')).toEqual([]);
});
