// `npm run bench:sample`: what the request's fields cost (bench/sample.ts): decode tok/s with a
// JSON-schema mask against unconstrained (target: at most 10% slower), and n = 4 against four
// separate requests (target: at most 0.6x their time). Ratios from one run; asserts nothing.
import { test } from '../test/fixtures.ts';

test.setTimeout(900_000);

test('request fields: JSON-schema mask cost, n = 4 vs four requests', async ({ harness }) => {
  const r = await harness.evaluate(async (o) => (await import('/bench/sample.ts' as string)).sampleCosts(o), { maxTokens: 96, promptTokens: 384, choiceTokens: 16, rounds: 3 });
  console.log(JSON.stringify(r, null, 1));
  test.info().annotations.push({ type: 'sample', description: JSON.stringify(r) });
});
