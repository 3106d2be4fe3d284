// `npm run bench:storage`: f32 vs f16 vs int4 weight storage on this adapter (bench/storage.ts),
// kernels at the SmolLM2-135M prefill / decode shapes and a random-weight SmolLM2-135M engine.
// A benchmark: it prints figures (and attaches them to the report), it asserts nothing.
import { readFileSync } from 'node:fs';
import { test } from '../test/fixtures.ts';

const SMOL = JSON.parse(readFileSync(new URL('../configs/HuggingFaceTB__SmolLM2-135M-Instruct/config.json', import.meta.url), 'utf8'));
const SHAPES: [number, number, number][] = [[512, 1536, 576], [128, 576, 576], [1, 3072, 576], [1, 576, 1536], [1, 960, 576], [1, 49152, 576]];

test.setTimeout(1_800_000);

test('weight storage: kernels and engine, f32 / f16 / q4', async ({ harness }) => {
  const kernels = await harness.evaluate(async (shapes) => (await import('/bench/storage.ts' as string)).kernelSpeeds(shapes), SHAPES);
  console.log(JSON.stringify(kernels, null, 1));
  const engine = await harness.evaluate(async (config) => (await import('/bench/storage.ts' as string)).engineSpeeds(config), SMOL);
  console.log(JSON.stringify(engine, null, 1));
  test.info().annotations.push({ type: 'kernels', description: JSON.stringify(kernels) }, { type: 'engine', description: JSON.stringify(engine) });
});
