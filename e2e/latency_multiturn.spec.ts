// Multi-turn KV reuse, measured in the page: a ten-turn conversation where each request
// re-sends the whole history (as a chat app does); the engine keeps the paged KV of the shared
// prefix and prefills only the new tokens. TTFT on the tenth turn is compared with a fresh
// prompt of the same number of new tokens, and written to e2e/results/multiturn.json. Model:
// random weights at SmolLM2-135M's real widths (hidden 576, 9/3 heads of 64, MLP 1536) with 4
// layers and a 2048 vocab for CI: the ratio depends on attention's share of a layer, which the
// widths set, so it is the full model's; narrower stand-ins (hidden 128) inflate it.
// `npm run bench:e2e` (POP_LLM_E2E_FULL=1) runs the full SmolLM2-135M shape.
// Asserts the reuse itself (reused and prefilled token counts); the ratio is recorded.
import { test, expect } from '@playwright/test';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE, ROOT } from './helpers.ts';

const CONFIG = JSON.parse(readFileSync(join(ROOT, 'configs/HuggingFaceTB__SmolLM2-135M-Instruct/config.json'), 'utf8'));
const FULL = !!process.env.POP_LLM_E2E_FULL;
const SCALE = FULL ? {} : { layers: 4, vocab: 2048 };

test('multi-turn: turn 10 prefills only its new tokens; TTFT vs a fresh prompt of that size', async ({ page }) => {
  test.setTimeout(FULL ? 1_200_000 : 240_000);
  await page.goto(`${BASE}/test/harness.html`);
  await page.waitForFunction(() => (globalThis as any).__popReady === true);
  const r = await page.evaluate(async ([config, scale]) => {
    const pop = (globalThis as any).pop;
    const files = pop.randomModelFiles(pop.scaleConfig(config, scale), { seed: 3 });
    const engine = await pop.createGpuEngine(pop.memorySource(files), { contextWindow: 1024, pageSize: 16 });
    let s = 17;
    const rand = (n: number) => Array.from({ length: n }, () => 3 + ((s = (s * 1103515245 + 12345) >>> 0) % 2000));
    const USER = 30, REPLY = 8, TURNS = 10;
    const best: { ttft: number; prefilled: number; reused: number }[] = [];
    for (let rep = 0; rep < 3; rep++) {
      engine.resetChat();
      let history: number[] = [1];
      for (let t = 1; t <= TURNS; t++) {
        const prompt = [...history, ...rand(USER)];
        const out = await engine.generate(prompt, { maxTokens: REPLY, ignoreEos: true, reusePrefix: true, pop: 'off' });
        const st = out.stats;
        if (!best[t - 1] || st.ttftMs < best[t - 1].ttft) best[t - 1] = { ttft: st.ttftMs, prefilled: st.prefilledTokens, reused: st.reusedTokens };
        history = [...prompt, ...out.ids];
      }
    }
    const n = best[TURNS - 1].prefilled;
    let fresh = Infinity;
    for (let rep = 0; rep < 3; rep++) {
      engine.resetChat();
      fresh = Math.min(fresh, (await engine.generate([1, ...rand(n - 1)], { maxTokens: REPLY, ignoreEos: true, pop: 'off' })).stats.ttftMs);
    }
    engine.unload();
    return { turns: best, freshTtft: fresh, newTokens: n };
  }, [CONFIG, SCALE] as const);

  // Each later turn reuses everything but the reply's last token and the new message.
  for (let t = 1; t < r.turns.length; t++) {
    expect(r.turns[t].reused).toBeGreaterThan(r.turns[t - 1].reused);
    expect(r.turns[t].prefilled).toBeLessThanOrEqual(30 + 8);
  }
  const ratio = r.turns[9].ttft / r.freshTtft;
  mkdirSync(join(ROOT, 'e2e/results'), { recursive: true });
  writeFileSync(join(ROOT, 'e2e/results/multiturn.json'), JSON.stringify({
    note: (FULL ? 'Full SmolLM2-135M shape (random weights)' : 'SCALED DOWN FOR CI: random weights at SmolLM2-135M widths (hidden 576, 9/3 heads, MLP 1536) with 4 layers and a 2048 vocab') + '; WebGPU on SwiftShader (CPU). Best of 3 per turn. Target: turn-10 TTFT within 1.2x of a fresh prompt with the same number of new tokens.',
    turns: r.turns.map((x, i) => ({ turn: i + 1, ttft_ms: +x.ttft.toFixed(1), prefilled_tokens: x.prefilled, reused_tokens: x.reused })),
    fresh_prompt_tokens: r.newTokens,
    fresh_ttft_ms: +r.freshTtft.toFixed(1),
    turn10_over_fresh: +ratio.toFixed(3),
  }, null, 2) + '\n');
  console.log(`turn 10: ${r.turns[9].ttft.toFixed(1)} ms for ${r.turns[9].prefilled} new tokens (${r.turns[9].reused} reused); fresh: ${r.freshTtft.toFixed(1)} ms; ratio ${ratio.toFixed(3)}`);
});
