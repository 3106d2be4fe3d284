// Whole-model checks run in the page: the WebGPU engine against the independent CPU
// reference model (src/reference/reference_model.ts), on stories260K and on tiny-random
// fixtures built from real configs.
import { createGpuEngine } from '../src/engine/create.ts';
import { forward } from '../src/engine/forward.ts';
import type { Engine } from '../src/engine/engine.ts';
import type { PopSetting } from '../src/engine/pop.ts';
import { loadCheckpoint, loadModelFiles } from '../src/model/loader.ts';
import { randomModelFiles, scaleConfig } from '../src/model/random_model.ts';
import { memorySource, urlSource, type ModelSource } from '../src/model/source.ts';
import { ReferenceModel } from '../src/reference/reference_model.ts';

const engines = new Map<string, { engine: Engine<GPUBuffer>; ref: ReferenceModel }>();

export interface FixtureSpec {
  /** URL of a real model folder, or a config to build a random model from. */
  url?: string;
  config?: Record<string, any>;
  scale?: Parameters<typeof scaleConfig>[1];
  seed?: number;
  prefillChunk?: number;
  pageSize?: number;
}

async function open(spec: FixtureSpec): Promise<{ engine: Engine<GPUBuffer>; ref: ReferenceModel }> {
  const key = JSON.stringify(spec);
  let e = engines.get(key);
  if (e) return e;
  let source: ModelSource;
  if (spec.url) source = urlSource(spec.url);
  else source = memorySource(randomModelFiles(spec.scale ? scaleConfig(spec.config!, spec.scale) : spec.config!, { seed: spec.seed ?? 7 }));
  const engine = await createGpuEngine(source, { prefillChunk: spec.prefillChunk, pageSize: spec.pageSize });
  const files = await loadModelFiles(source);
  const ck = await loadCheckpoint(source);
  const ref = new ReferenceModel(files.config, (n) => ck.get(n), files.spec.normGainOffset);
  engines.set(key, (e = { engine, ref }));
  return e;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) (d = Math.max(d, Math.abs(a[i] - b[i]))), (m = Math.max(m, Math.abs(b[i])));
  return d / Math.max(1, m);
}

export const engineCases = {
  /** Greedy ids from the GPU engine. */
  async generate(spec: FixtureSpec, prompt: number[], maxTokens: number, pop?: PopSetting): Promise<{ ids: number[]; keep: number }> {
    const { engine } = await open(spec);
    const r = await engine.generate(prompt, { maxTokens, pop, ignoreEos: true });
    return { ids: r.ids, keep: r.stats.keep };
  },
  /** Greedy ids from the reference model with POP keep. */
  async reference(spec: FixtureSpec, prompt: number[], maxTokens: number, keep?: number): Promise<number[]> {
    const { ref, engine } = await open(spec);
    return ref.generateGreedy(prompt, maxTokens, keep ?? engine.config.numLayers);
  },
  /**
   * Teacher-forced logits, engine vs reference, after the prompt and after each decoded
   * token; returns the worst normalized error per step.
   */
  async logitsVsReference(spec: FixtureSpec, prompt: number[], continuation: number[], keep?: number): Promise<number[]> {
    const { engine, ref } = await open(spec);
    const L = engine.config.numLayers;
    const got = await engine.teacherForced(prompt, continuation, keep ?? L);
    ref.reset();
    const want = [ref.feed(prompt, 0, keep ?? L)];
    continuation.forEach((t, i) => want.push(ref.feed([t], prompt.length + i)));
    return got.map((g, i) => maxDiff(g, want[i]));
  },
  /** Max |logits(pop) - logits(off)| normalized, and whether the argmax agrees. */
  async popVsOff(spec: FixtureSpec, prompt: number[], pop: PopSetting): Promise<{ diff: number; sameArgmax: boolean; keep: number }> {
    const { engine } = await open(spec);
    const off = await engine.promptLogits(prompt, 'off');
    const p = await engine.promptLogits(prompt, pop);
    const am = (x: Float32Array) => x.reduce((bi, v, i, a) => (v > a[bi] ? i : bi), 0);
    return { diff: maxDiff(p, off), sameArgmax: am(p) === am(off), keep: engine.resolveKeep(pop) };
  },
  /**
   * POP's independent KV projection: after a POP prefill with `keep`, the K/V pages of every
   * deep layer for the prompt rows (all but the boundary token) against the reference's.
   */
  async deepKvVsReference(spec: FixtureSpec, prompt: number[], keep: number): Promise<{ k: number; v: number; layers: number }> {
    const { engine, ref } = await open(spec);
    const c = engine.config;
    engine.resetChat();
    for (let pos = 0; pos < prompt.length; pos += engine.state.maxRows) {
      const end = Math.min(prompt.length, pos + engine.state.maxRows);
      forward(engine.ops, c, engine.weights, engine.state, engine.cache, { seqId: 0, tokens: prompt.slice(pos, end), startPos: pos, keep, lastRowFullDepth: end === prompt.length });
    }
    ref.reset();
    ref.feed(prompt, 0, keep);
    const view = engine.cache.reserve(0, prompt.length);
    const kvd = c.numKvHeads * c.headDim;
    let k = 0, v = 0, layers = 0;
    for (let l = keep; l < c.numLayers; l++, layers++) {
      const ks = await engine.ops.read(engine.cache.layers[l].k, engine.cache.allocator.numPages * engine.cache.pageSize * kvd);
      const vs = await engine.ops.read(engine.cache.layers[l].v, engine.cache.allocator.numPages * engine.cache.pageSize * kvd);
      for (let t = 0; t < prompt.length - 1; t++) {
        const off = (view.pages[Math.floor(t / view.pageSize)] * view.pageSize + (t % view.pageSize)) * kvd;
        k = Math.max(k, maxDiff(ks.subarray(off, off + kvd), ref.kCache[l][t]));
        v = Math.max(v, maxDiff(vs.subarray(off, off + kvd), ref.vCache[l][t]));
      }
    }
    engine.resetChat();
    return { k, v, layers };
  },
  async layers(spec: FixtureSpec): Promise<number> {
    return (await open(spec)).engine.config.numLayers;
  },
};
