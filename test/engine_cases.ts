// Whole-model checks run in the page: the WebGPU engine against the independent CPU
// reference model (src/reference/reference_model.ts), on stories260K and on tiny-random
// fixtures built from real configs.
import { createGpuEngine, type GpuEngineOptions } from '../src/engine/create.ts';
import { forward } from '../src/engine/forward.ts';
import type { Engine } from '../src/engine/engine.ts';
import type { PopSetting } from '../src/engine/pop.ts';
import { loadCheckpoint, loadModelFiles } from '../src/model/loader.ts';
import { randomModelFiles, scaleConfig } from '../src/model/random_model.ts';
import { memorySource, urlSource, type ModelSource } from '../src/model/source.ts';
import { ReferenceModel } from '../src/reference/reference_model.ts';
import { CpuOps } from '../src/reference/cpu_ops.ts';
import { Engine as EngineClass, type EngineOptions } from '../src/engine/engine.ts';
import type { GpuOps } from '../src/ops/gpu_ops.ts';

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
  // The reference reads Gemma4ForCausalLM-style `model.*` names; a wrapper stores its text tower under `model.language_model.*`.
  const ref = new ReferenceModel(files.config, (n) => ck.get(n) ?? ck.get(n.replace(/^model\./, 'model.language_model.')), files.spec.normGainOffset);
  engines.set(key, (e = { engine, ref }));
  return e;
}

type Quantization = NonNullable<EngineOptions['quantization']>;
const quantEngines = new Map<string, { gpu: Engine<GPUBuffer>; cpu: EngineClass<Float32Array> }>();

/** A GPU engine and a CpuOps engine (the dequantized reference) loaded with the same quantization. */
async function openQuant(spec: FixtureSpec, quantization: Quantization, quantizeLmHead = false): Promise<{ gpu: Engine<GPUBuffer>; cpu: EngineClass<Float32Array> }> {
  const key = JSON.stringify([spec, quantization, quantizeLmHead]);
  let e = quantEngines.get(key);
  if (e) return e;
  const source = spec.url ? urlSource(spec.url) : memorySource(randomModelFiles(spec.scale ? scaleConfig(spec.config!, spec.scale) : spec.config!, { seed: spec.seed ?? 7 }));
  const opts = { prefillChunk: spec.prefillChunk, pageSize: spec.pageSize, quantization, quantizeLmHead };
  const gpu = await createGpuEngine(source, opts);
  const cpu = await EngineClass.load(new CpuOps(), source, opts);
  quantEngines.set(key, (e = { gpu, cpu }));
  return e;
}

const optEngines = new Map<string, { gpu: Engine<GPUBuffer>; cpu: EngineClass<Float32Array> }>();

/** A GPU engine and a CpuOps engine loaded with the same options (e.g. embeddingDtype / lmHeadDtype). */
async function openWith(spec: FixtureSpec, o: GpuEngineOptions): Promise<{ gpu: Engine<GPUBuffer>; cpu: EngineClass<Float32Array> }> {
  const key = JSON.stringify([spec, o]);
  let e = optEngines.get(key);
  if (e) return e;
  const source = spec.url ? urlSource(spec.url) : memorySource(randomModelFiles(spec.scale ? scaleConfig(spec.config!, spec.scale) : spec.config!, { seed: spec.seed ?? 7 }));
  const opts = { prefillChunk: spec.prefillChunk, pageSize: spec.pageSize, ...o };
  const gpu = await createGpuEngine(source, opts);
  const cpu = await EngineClass.load(new CpuOps(), source, opts);
  optEngines.set(key, (e = { gpu, cpu }));
  return e;
}

/** How a GPU tensor is stored: 'q4' / 'q4-asym' / 'f16' / 'f32' (every row part alike, else 'mixed'), and its parts. */
function storageOf(ops: GpuOps, t: GPUBuffer): { kind: string; parts: number; bytes: number } {
  const bufs = ops.splitInfo(t)?.parts.map((p) => p.buf) ?? [t];
  const kinds = new Set(bufs.map((b) => ops.quantInfo(b)?.scheme ?? (ops.halfInfo(b) ? 'f16' : 'f32')));
  return { kind: kinds.size === 1 ? [...kinds][0] : 'mixed', parts: bufs.length, bytes: ops.bytesOf(t) };
}

const splitEngines = new Map<string, Engine<GPUBuffer>>();

const argmax = (x: Float32Array) => x.reduce((bi, v, i, a) => (v > a[bi] ? i : bi), 0);

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
  /**
   * Quantized weights: teacher-forced logits of the GPU engine vs the CPU engine with the same
   * quantization (both compute with the same dequantized weights); worst normalized error per step.
   */
  async quantLogitsVsCpu(spec: FixtureSpec, quantization: Quantization, prompt: number[], continuation: number[], pop?: PopSetting, quantizeLmHead = false): Promise<number[]> {
    const { gpu, cpu } = await openQuant(spec, quantization, quantizeLmHead);
    const got = await gpu.teacherForced(prompt, continuation, pop);
    const want = await cpu.teacherForced(prompt, continuation, pop);
    return got.map((g, i) => maxDiff(g, want[i]));
  },
  /** Greedy ids and keep from the quantized GPU engine. */
  async quantGenerate(spec: FixtureSpec, quantization: Quantization, prompt: number[], maxTokens: number, pop?: PopSetting): Promise<{ ids: number[]; keep: number; decodeTokensPerS: number }> {
    const { gpu } = await openQuant(spec, quantization);
    const r = await gpu.generate(prompt, { maxTokens, pop, ignoreEos: true });
    return { ids: r.ids, keep: r.stats.keep, decodeTokensPerS: r.stats.decodeTokensPerS };
  },
  /**
   * Quantized vs f32 on the GPU (test/quant.spec.ts bounds it): greedy ids of both, the length of
   * their common prefix, and on the f32 greedy continuation (teacher-forced) the worst
   * normalized logit error and the fraction of steps whose argmax agrees; weight bytes of both.
   */
  async quantVsF32(spec: FixtureSpec, quantization: Quantization, prompt: number[], maxTokens: number, quantizeLmHead = false): Promise<Record<string, unknown>> {
    const { engine } = await open(spec);
    const { gpu } = await openQuant(spec, quantization, quantizeLmHead);
    const f = await engine.generate(prompt, { maxTokens, ignoreEos: true, pop: 'off' });
    const q = await gpu.generate(prompt, { maxTokens, ignoreEos: true, pop: 'off' });
    let common = 0;
    while (common < maxTokens && f.ids[common] === q.ids[common]) common++;
    const cont = f.ids.slice(0, -1);
    const lf = await engine.teacherForced(prompt, cont, 'off');
    const lq = await gpu.teacherForced(prompt, cont, 'off');
    const errs = lq.map((l, i) => maxDiff(l, lf[i]));
    const agree = lq.filter((l, i) => argmax(l) === argmax(lf[i])).length / lq.length;
    const bytes = (e: Engine<GPUBuffer>) => {
      const w = e.weights;
      const all = [w.embed, w.finalNorm, w.lmHead, w.deepKv, w.deepKvBias, ...w.layers.flatMap((l) => Object.values(l))];
      return [...new Set(all.filter((t): t is GPUBuffer => !!t))].reduce((a, t) => a + t.size, 0);
    };
    return {
      greedyCommonPrefix: common, greedyTokens: maxTokens, sameGreedy: common === maxTokens,
      teacherForcedArgmaxAgreement: agree, maxLogitErr: Math.max(...errs), meanLogitErr: errs.reduce((a, b) => a + b, 0) / errs.length,
      weightBytesF32: bytes(engine), weightBytesQuant: bytes(gpu),
    };
  },
  /**
   * Tensors split into row parts: an engine whose GpuOps splits everything over
   * `maxBindingBytes` (embedding, LM head, projections, deep K/V) against the same model
   * unsplit. Teacher-forced logits (max |split - whole| per step) and the part counts.
   */
  async splitVsWhole(spec: FixtureSpec, maxBindingBytes: number, prompt: number[], continuation: number[], pop?: PopSetting, quantization?: Quantization): Promise<{ diffs: number[]; parts: Record<string, number>; gpuBytes: number; wholeGpuBytes: number }> {
    const whole = quantization ? (await openQuant(spec, quantization, true)).gpu : (await open(spec)).engine;
    const key = JSON.stringify([spec, maxBindingBytes, quantization]);
    let split = splitEngines.get(key);
    if (!split) {
      const source = spec.url ? urlSource(spec.url) : memorySource(randomModelFiles(spec.scale ? scaleConfig(spec.config!, spec.scale) : spec.config!, { seed: spec.seed ?? 7 }));
      split = await createGpuEngine(source, { prefillChunk: spec.prefillChunk, pageSize: spec.pageSize, maxBindingBytes, quantization, quantizeLmHead: !!quantization });
      splitEngines.set(key, split);
    }
    // Both engines run the same kernels (each probed at its own load, and close timings can pick
    // differently), unfused (a fused GEMV needs its weight in one buffer, so the split engine
    // would fall back): then the parts alone explain any difference, and there should be none.
    const wholeOps = whole.ops as GpuOps, splitOps = split.ops as GpuOps;
    const before = { whole: [wholeOps.kernelChoice, wholeOps.matmulVariants] as const, split: [splitOps.kernelChoice, splitOps.matmulVariants] as const };
    const same = { ...wholeOps.kernelChoice, normMatvec: 'separate', gluMatvec: 'separate' } as GpuOps['kernelChoice'];
    wholeOps.kernelChoice = splitOps.kernelChoice = same;
    splitOps.matmulVariants = wholeOps.matmulVariants;
    let got: Float32Array[], want: Float32Array[];
    try {
      got = await split.teacherForced(prompt, continuation, pop);
      want = await whole.teacherForced(prompt, continuation, pop);
    } finally {
      [wholeOps.kernelChoice, wholeOps.matmulVariants] = before.whole;
      [splitOps.kernelChoice, splitOps.matmulVariants] = before.split;
    }
    const diffs = got.map((g, i) => g.reduce((d, v, j) => Math.max(d, Math.abs(v - want[i][j])), g.length === want[i].length ? 0 : Infinity));
    const ops = split.ops as GpuOps, w = split.weights;
    const count = (t: GPUBuffer | null) => (t ? ops.splitInfo(t)?.parts.length ?? 1 : 0);
    const parts = { embed: count(w.embed), lmHead: count(w.lmHead), qkv: count(w.layers[0].qkv), gateUp: count(w.layers[0].gateUp), down: count(w.layers[0].down), deepKv: count(w.deepKv) };
    return { diffs, parts, gpuBytes: ops.pool.bytesInUse, wholeGpuBytes: (whole.ops as GpuOps).pool.bytesInUse };
  },
  /**
   * Vocabulary tables as EngineOptions says (embeddingDtype, lmHeadDtype, quantization): the
   * GPU engine's teacher-forced logits against the CpuOps engine loaded the same way (the CPU
   * twin keeps the same dequantized / f16-rounded values), under `pop`; worst normalized
   * error per step, whether every step's argmax agrees, the GPU's distance from its own full
   * depth, and how each table is stored on the GPU.
   */
  async tablesVsCpu(spec: FixtureSpec, o: GpuEngineOptions, prompt: number[], continuation: number[], pop?: PopSetting): Promise<{ errs: number[]; argmaxAgree: boolean; keep: number; offDiff: number; sameArgmaxAsOff: boolean; embed: unknown; lmHead: unknown; headIsEmbed: boolean; ple: unknown; weightBytes: number }> {
    const { gpu, cpu } = await openWith(spec, o);
    const got = await gpu.teacherForced(prompt, continuation, pop);
    const want = await cpu.teacherForced(prompt, continuation, pop);
    // The same GPU engine at full depth: how far `pop` is from it (0 for a lossless keep).
    const off = pop === undefined || pop === 'off' ? got : await gpu.teacherForced(prompt, continuation, 'off');
    const ops = gpu.ops as GpuOps, w = gpu.weights;
    const all = [w.embed, w.finalNorm, w.lmHead, w.deepKv, w.deepKvBias, ...w.layers.flatMap((l) => Object.values(l)), ...(w.ple ? Object.values(w.ple) : [])];
    return {
      errs: got.map((x, i) => maxDiff(x, want[i])), argmaxAgree: got.every((x, i) => argmax(x) === argmax(want[i])), keep: gpu.resolveKeep(pop ?? 'off'),
      offDiff: Math.max(...got.map((x, i) => maxDiff(x, off[i]))), sameArgmaxAsOff: got.every((x, i) => argmax(x) === argmax(off[i])),
      embed: storageOf(ops, w.embed), lmHead: storageOf(ops, w.lmHead), headIsEmbed: w.lmHead === w.embed,
      ple: w.ple ? storageOf(ops, w.ple.table) : null,
      weightBytes: [...new Set(all.filter((t): t is GPUBuffer => !!t && typeof t === 'object' && 'size' in t))].reduce((a, t) => a + ops.bytesOf(t), 0),
    };
  },
  async layers(spec: FixtureSpec): Promise<number> {
    return (await open(spec)).engine.config.numLayers;
  },
  /**
   * The per-model kernel probe of a quantized GPU engine (src/ops/kernel_probe.ts): its report
   * from load, and a second probe of the same shapes with the IndexedDB cache (`cached`).
   * `prefill`: the first probe is a fresh one that also times prefill's kernels (software
   * adapters skip them at load).
   */
  async kernelProbe(spec: FixtureSpec, quantization: Quantization, prefill = false): Promise<{ atLoad: unknown; again: unknown; choice: unknown; variants: Record<string, string>; matmulVariants: unknown; loadPrefill: string }> {
    const { gpu } = await openQuant(spec, quantization);
    const ops = gpu.ops as GpuOps, c = gpu.config, loadPrefill = ops.matmulVariants.prefill;
    const shapes = { hidden: c.hiddenSize, intermediate: c.intermediateSize, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, context: gpu.contextWindow };
    const atLoad = prefill ? await ops.probeModelKernels(shapes, { useCache: true, prefill }) : ops.kernelProbe;
    if (!prefill) await ops.probeModelKernels(shapes, { useCache: true });
    const again = await ops.probeModelKernels(shapes, { useCache: true, prefill });
    return { atLoad, again, choice: ops.kernelChoice, variants: ops.variants, matmulVariants: ops.matmulVariants, loadPrefill };
  },
  /**
   * Every forced per-model kernel choice in turn (q4 GEMV and GEMM, decode and prefill
   * attention; fields left out keep the load's choice): teacher-forced logits of the GPU engine
   * vs the CPU dequantized engine (both under `pop`); worst normalized error per choice.
   */
  async kernelChoicesVsCpu(spec: FixtureSpec, quantization: Quantization, prompt: number[], continuation: number[], choices: Partial<GpuOps['kernelChoice']>[], pop?: PopSetting): Promise<Record<string, number>> {
    const { gpu, cpu } = await openQuant(spec, quantization);
    const ops = gpu.ops as GpuOps, before = ops.kernelChoice;
    const want = await cpu.teacherForced(prompt, continuation, pop);
    const out: Record<string, number> = {};
    try {
      for (const ch of choices) {
        ops.kernelChoice = { ...before, ...ch };
        const got = await gpu.teacherForced(prompt, continuation, pop);
        out[Object.values(ch).join('+')] = Math.max(...got.map((g, i) => maxDiff(g, want[i])));
      }
    } finally {
      ops.kernelChoice = before;
    }
    return out;
  },
};
