// Decode fusions (src/kernels/matvec_fused.ts): RMSNorm folded into the next q4 GEMV's load
// (input norm -> QKV, MLP norm -> gate|up) and the gated activation folded into the down
// GEMV's load. The kernels alone on odd shapes: test/kernels.spec.ts (norm_matmul / glu_matmul);
// the probe that chooses them: test/kernel_probe.spec.ts. Here each fused choice is forced
// through a whole tiny quantized model (prefill in chunks, POP exact: the last prompt row runs
// the deep layer alone, M = 1; decode) against
// the CPU twin, which runs the norm / GLU and the matmul apart: a Llama-shaped model (SiLU, no
// sandwich norms) and a Gemma 3-shaped one (GELU-tanh, the post-MLP norm after the down GEMV).
import { readFileSync } from 'node:fs';
import { test, expect } from './fixtures.ts';

const config = (dir: string) => JSON.parse(readFileSync(new URL(`../configs/${dir}/config.json`, import.meta.url), 'utf8'));
// inter 100: down's K is not a multiple of the 32-group; 4 / 2 heads (GQA); pages of 8, chunks of 16.
const SCALE = { layers: 3, hidden: 64, heads: 4, kvHeads: 2, inter: 100, vocab: 300, maxPositions: 512 };
const BOTH = { normMatvec: 'matvec_q4_norm', gluMatvec: 'matvec_q4_glu' };
const MODELS = [
  // Fused beside the other GPU-shaped probe choices (q4 GEMV for the unfused projections, flash-decoding).
  { name: 'SmolLM2 (SiLU)', spec: { config: config('HuggingFaceTB__SmolLM2-135M-Instruct'), scale: SCALE, pageSize: 8, prefillChunk: 16 }, choices: [{ ...BOTH, matvecQ4: 'matvec_q4_wg', attentionDecode: 'flash_decode' }] },
  { name: 'Gemma 3 (GELU-tanh, sandwich norms)', spec: { config: config('google__gemma-3-1b-it'), scale: { ...SCALE, headDim: 16 }, pageSize: 8, prefillChunk: 16 }, choices: [BOTH] },
];
const TOL = 1e-4;

for (const { name, spec, choices } of MODELS) {
  test(`${name}: the fused decode GEMVs forced through a whole q4 model match the CPU twin (${TOL})`, async ({ harness }) => {
    const prompt = Array.from({ length: 21 }, (_, i) => (i * 37 + 11) % 300);
    const { errs, pipelines } = await harness.evaluate(([s, p, c]) => (globalThis as any).pop.decodeCases.choicesVsCpu(s, 'q4', p, [5, 17, 250], c), [spec, prompt, choices] as const);
    test.info().annotations.push({ type: 'fused vs cpu', description: JSON.stringify(errs) });
    expect(Object.keys(errs)).toHaveLength(choices.length);
    for (const [k, e] of Object.entries(errs) as [string, number][]) expect(e, k).toBeLessThan(TOL);
    // The fused kernels really ran (the fresh device compiled them for these decodes).
    for (const k of ['matvec_q4_norm', 'matvec_q4_glu']) expect(pipelines.some((p: string) => p.startsWith(`${k}/`)), k).toBe(true);
  });
}
