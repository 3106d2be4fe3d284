// POP (prefill-only pruning) end to end on WebGPU: off / keep = L / exact are identical to
// plain prefill; every keep in 1..L-1 matches the independent reference implementation of
// the method; the independent KV projection fills deep layers' pages as the reference does;
// the boundary token runs at full depth.
import { readFileSync } from 'node:fs';
import { test, expect } from './fixtures.ts';

const STORIES = { url: '/models/stories260K' };
const SMOL = JSON.parse(readFileSync(new URL('../configs/HuggingFaceTB__SmolLM2-135M-Instruct/config.json', import.meta.url), 'utf8'));
const TINY_LLAMA = { config: SMOL, scale: { layers: 4, hidden: 64, heads: 4, kvHeads: 2, inter: 96, vocab: 300, maxPositions: 256 }, pageSize: 8, prefillChunk: 16 };
const PROMPTS = [
  [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 426, 338, 401, 396, 267, 337, 410],
  [1, 320, 417, 261, 500, 431, 290, 288, 312, 265, 410, 267, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321, 322],
];
const call = (page: any, fn: string, ...args: unknown[]) => page.evaluate(([f, a]: [string, unknown[]]) => (globalThis as any).pop.engineCases[f](...a), [fn, args] as [string, unknown[]]);

for (const [name, spec] of [['stories260K', STORIES], ['tiny-random llama', TINY_LLAMA]] as const) {
  test(`${name}: pop off, keep = L and exact give identical tokens; first-token logits within 1e-4`, async ({ harness }) => {
    const L: number = await call(harness, 'layers', spec);
    for (const prompt of PROMPTS) {
      const p = prompt.map((t) => t % 300);
      const off = await call(harness, 'generate', spec, p, 24, 'off');
      expect(off.keep).toBe(L);
      for (const pop of [L, 'exact']) {
        const r = await call(harness, 'generate', spec, p, 24, pop);
        expect(r.keep).toBe(pop === 'exact' ? L - 1 : L);
        expect(r.ids).toEqual(off.ids);
        const d = await call(harness, 'popVsOff', spec, p, pop);
        expect(d.diff).toBeLessThan(1e-4);
        expect(d.sameArgmax).toBe(true);
      }
    }
  });

  test(`${name}: every keep in 1..L-1 matches the independent reference (greedy ids, boundary logits)`, async ({ harness }) => {
    const L: number = await call(harness, 'layers', spec);
    for (let keep = 1; keep < L; keep++) {
      for (const prompt of PROMPTS) {
        const p = prompt.map((t) => t % 300);
        const got = await call(harness, 'generate', spec, p, 20, keep);
        const want = await call(harness, 'reference', spec, p, 20, keep);
        expect(got.ids, `keep ${keep}`).toEqual(want);
        const errs: number[] = await call(harness, 'logitsVsReference', spec, p, [], keep);
        expect(errs[0], `keep ${keep} boundary logits`).toBeLessThan(1e-4);
      }
    }
  });

  test(`${name}: independent KV projection writes deep layers' pages as the reference (1e-4)`, async ({ harness }) => {
    const L: number = await call(harness, 'layers', spec);
    for (let keep = 1; keep < L; keep++) {
      const r = await call(harness, 'deepKvVsReference', spec, PROMPTS[1].map((t) => t % 300), keep);
      expect(r.layers).toBe(L - keep);
      expect(r.k, `keep ${keep} K`).toBeLessThan(1e-4);
      expect(r.v, `keep ${keep} V`).toBeLessThan(1e-4);
    }
  });
}
