// `pop-llm bench`: prefill timings with POP off and on, per prompt length, on random prompt
// ids (greedy, EOS ignored), plus the prefill matmul alone on the model's GEMM shapes, so the
// time spent outside the GEMMs is visible. One JSON line per result with --json, else a table.
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { resolve } from 'node:path';
import { InvalidArgumentError, PopError } from '../../src/errors.ts';
import { assertFits, estimateFit } from '../../src/model/fit.ts';
import type { PopSetting } from '../../src/engine/pop.ts';
import { checkKnown, intList, num, popList, type ParsedArgs } from './args.ts';
import type { GemmShape, ModelInfo } from './protocol.ts';
import type { Session } from './session.ts';

export const BENCH_OPTIONS = ['model', 'prompt-tokens', 'pop', 'pop-suite', 'max-tokens', 'context', 'seed', 'repeat', 'gemm', 'json', 'help', 'image-size', 'image-edge', 'image-full', 'quant', 'kv-dtype', 'host'];

export interface BenchModel {
  model: string;
  /** Text-prompt lengths (none: only the image-prompt rows, for a VLM). */
  promptTokens: number[];
  /** Per-model defaults of the default bench (the command line's --quant / --max-tokens win). */
  quant?: 'none' | 'q4' | 'q4-asym';
  maxTokens?: number;
  /** false: no GEMM-alone rows for this model (they are for the runtime-core shapes). */
  gemm?: boolean;
  /** The image-prompt rows' image size for this model (the command line's --image-size wins). */
  image?: { width: number; height: number };
}

/** The image-prompt rows a VLM gets: one image of this size, resized to at most `longestEdge`. */
export interface ImageBench {
  width: number;
  height: number;
  /** The image processor's size.longest_edge for the bench (512: one 512 px tile, no split). */
  longestEdge: number;
  /**
   * Run every POP setting end to end (tower included). Default: the tower once (its time does
   * not depend on POP) and the prompt's prefill per setting; TTFT = preprocess + tower + prefill.
   */
  full: boolean;
}

/** SmolVLM's chat format around one image (the expanded `<image>` is 64 tokens per 512 px tile). */
export const IMAGE_PROMPT = '<|im_start|>User:<image>Describe this image in one sentence.<end_of_utterance>\nAssistant:';

export interface BenchCommand {
  models: BenchModel[];
  pops: { setting: PopSetting; label: string }[];
  maxTokens: number;
  context?: number;
  seed: number;
  /** Runs per (length, pop); the one with the shortest prefill is reported. */
  repeat: number;
  /** Also time the GEMMs alone and the whole prefill's GFLOP/s (default: only without --model). */
  gemm: boolean;
  json: boolean;
  /** `bench --pop` with no value: the POP suite, with quality figures on stories260K. */
  popSuite: boolean;
  /** --quant: int4 weights on load (the memory line shows their bytes). */
  quant: 'none' | 'q4' | 'q4-asym';
  /** --kv-dtype: the KV cache's storage (EngineOptions.kvDtype; default auto = f16 where shader-f16). */
  kvDtype: 'auto' | 'f32' | 'f16';
  image: ImageBench;
}

/** `npm run bench -- --pop`: SmolLM2-135M and Qwen3-0.6B shapes (random weights). */
export const POP_SUITE: BenchModel[] = [
  { model: 'random:configs/HuggingFaceTB__SmolLM2-135M-Instruct', promptTokens: [128, 512] },
  // 0.6 B parameters: a 512-token prefill takes minutes on SwiftShader, so 128 by default.
  { model: 'random:configs/Qwen__Qwen3-0.6B', promptTokens: [128] },
];
export const QUALITY_MODEL = 'public/models/stories260K';
export const QUALITY_TEXT = 'bench/calibration.txt';

/**
 * What `npm run bench` runs: the embedded model, the SmolLM2-135M shape with random weights,
 * an image+text prompt on the SmolVLM-256M shape (random weights), and the real Qwen3-0.6B
 * and Llama-3.2-1B shapes in int4 (random weights streamed into the page) with short prompts:
 * their memory and prefill / decode speed; then Gemma 4, and an image prompt on Qwen3-VL-2B in
 * int4 (TTFT with POP off / exact / 2/3, image tokens, tower time).
 */
export const DEFAULT_BENCH: BenchModel[] = [
  { model: 'public/models/stories260K', promptTokens: [128, 384] },
  // 512 tokens: the issue's whole-prefill check against the GEMM rate (about a minute per run here).
  { model: 'random:configs/HuggingFaceTB__SmolLM2-135M-Instruct', promptTokens: [128, 512] },
  // An image+text prompt only (no text rows): SigLIP 768 x 12 layers on one 512 px tile + SmolLM2-135M text.
  { model: 'random:configs/HuggingFaceTB__SmolVLM-256M-Instruct', promptTokens: [] },
  // Real shapes in int4: 16 prompt tokens and 2 new ones keep each under a few minutes on SwiftShader.
  { model: 'random:configs/Qwen__Qwen3-0.6B', promptTokens: [16], quant: 'q4', maxTokens: 2, gemm: false },
  { model: 'random:configs/meta-llama__Llama-3.2-1B-Instruct', promptTokens: [16], quant: 'q4', maxTokens: 2, gemm: false },
  // Gemma 4 E2B / E4B at their real configs in int4 (both embedding tables q4: 2.9 / 4.7 GB of
  // weights; refused when over the device memory budget), then E2B's layers with a 16,384-row
  // vocabulary: TTFT at full depth against the lossless keep (exact = 14 of 35 layers).
  { model: 'random:configs/google__gemma-4-E2B-it', promptTokens: [16], quant: 'q4', maxTokens: 2, gemm: false },
  { model: 'random:configs/google__gemma-4-E4B-it', promptTokens: [16], quant: 'q4', maxTokens: 2, gemm: false },
  { model: 'random:bench/configs/gemma-4-E2B-it-vocab16384', promptTokens: [16], quant: 'q4', maxTokens: 2, gemm: false },
  // Qwen3-VL-2B in int4 (text projections and the tower's linear weights), image rows only: a
  // 384 x 384 image = 24 x 24 patches through the 24-block tower -> 144 image tokens.
  { model: 'random:bench/qwen3-vl-2b', promptTokens: [], quant: 'q4', maxTokens: 2, gemm: false, image: { width: 384, height: 384 } },
];
const DEFAULT_PROMPT_TOKENS = [128, 512];
// 2/3 as a fraction: keep = ceil(2/3 · L) (20 of 30 layers; 0.667 would round up to 21).
const DEFAULT_POPS = 'off,exact,2/3';

export function parseBench(p: ParsedArgs): BenchCommand {
  checkKnown(p, BENCH_OPTIONS);
  const tokens = intList(p, 'prompt-tokens', 1);
  const model = p.values.get('model');
  const popSuite = p.flags.has('pop-suite');
  // The command line's --quant / --max-tokens apply to every model; else each default model's own.
  const own = (m: BenchModel): BenchModel => ({ ...m, quant: p.values.has('quant') ? undefined : m.quant, maxTokens: p.values.has('max-tokens') ? undefined : m.maxTokens, image: p.values.has('image-size') ? undefined : m.image });
  const models = popSuite && model === undefined ? POP_SUITE.map((m) => ({ ...m, promptTokens: tokens ?? m.promptTokens })) : model !== undefined ? [{ model, promptTokens: tokens ?? DEFAULT_PROMPT_TOKENS }] : DEFAULT_BENCH.map((m) => own({ ...m, promptTokens: m.promptTokens.length ? tokens ?? m.promptTokens : [] }));
  const size = p.values.get('image-size') ?? '512x512';
  const wh = /^(\d+)x(\d+)$/.exec(size);
  if (!wh || +wh[1] < 1 || +wh[2] < 1) throw new InvalidArgumentError('--image-size', `expected WIDTHxHEIGHT in pixels (got '${size}')`);
  const quant = p.values.get('quant') ?? 'none';
  if (quant !== 'none' && quant !== 'q4' && quant !== 'q4-asym') throw new InvalidArgumentError('--quant', `must be none, q4 or q4-asym (got '${quant}')`);
  const kvDtype = p.values.get('kv-dtype') ?? 'auto';
  if (kvDtype !== 'auto' && kvDtype !== 'f32' && kvDtype !== 'f16') throw new InvalidArgumentError('--kv-dtype', `must be auto, f32 or f16 (got '${kvDtype}')`);
  const pops = popList(p.values.get('pop') ?? DEFAULT_POPS);
  // 'off' first: the others' speedups are measured against it.
  pops.sort((a, b) => Number(b.setting === 'off') - Number(a.setting === 'off'));
  if (new Set(pops.map((x) => x.label)).size !== pops.length) throw new InvalidArgumentError('--pop', 'lists a setting twice');
  return {
    models, pops,
    maxTokens: num(p, 'max-tokens', { integer: true, min: 1 }) ?? 4,
    context: num(p, 'context', { integer: true, min: 1 }),
    seed: num(p, 'seed', { integer: true, min: 0 }) ?? 1,
    repeat: num(p, 'repeat', { integer: true, min: 1 }) ?? 1,
    gemm: (model === undefined && !popSuite) || p.flags.has('gemm'),
    json: p.flags.has('json'),
    popSuite, quant, kvDtype,
    image: { width: +wh[1], height: +wh[2], longestEdge: num(p, 'image-edge', { integer: true, min: 1 }) ?? 512, full: p.flags.has('image-full') },
  };
}

/** Deterministic prompt ids in 3..vocab-1 (never `avoid`, a VLM's image token), BOS first when the model has one. */
export function benchPromptIds(n: number, vocab: number, bos: number | null, seed: number, avoid = -1): number[] {
  let s = (seed * 2654435761 + n) >>> 0 || 1;
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const id = 3 + (s % Math.max(1, vocab - 3));
    ids.push(id === avoid ? id - 1 : id);
  }
  if (bos !== null && n > 0) ids[0] = bos;
  return ids;
}

/** The per-layer GEMMs of a prefill of m tokens: fused QKV, O, fused gate/up, down. */
export function gemmShapes(info: ModelInfo, m: number): GemmShape[] {
  const H = info.hiddenSize, Q = info.numHeads * info.headDim, KV = info.numKvHeads * info.headDim, F = info.intermediateSize;
  return [
    { m, n: Q + 2 * KV, k: H },
    { m, n: H, k: Q },
    { m, n: 2 * F, k: H },
    { m, n: H, k: F },
  ];
}

/** FLOPs of a full-depth prefill: 2·params_in_layers·tokens + causal attention (QK^T and PV). */
export function prefillFlops(info: ModelInfo, tokens: number): number {
  const H = info.hiddenSize, Q = info.numHeads * info.headDim, KV = info.numKvHeads * info.headDim, F = info.intermediateSize;
  const paramsInLayers = info.layers * (H * (Q + 2 * KV) + Q * H + 2 * F * H + F * H);
  return 2 * paramsInLayers * tokens + (2 * 2 * info.layers * info.numHeads * info.headDim * tokens * tokens) / 2;
}

const r2 = (x: number) => Math.round(x * 100) / 100;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

class Table {
  private header = false;
  constructor(private readonly cols: [string, number][]) {}
  row(values: (string | number | null)[]): void {
    if (!this.header) {
      this.header = true;
      process.stdout.write(this.cols.map(([h, w]) => h.padStart(w)).join('  ') + '\n');
    }
    process.stdout.write(values.map((v, i) => String(v ?? '-').padStart(this.cols[i][1])).join('  ') + '\n');
  }
}

const mb = (x: number | null) => (x === null ? '-' : `${(x / 1e6).toFixed(1)} MB`);

/** The load's memory (tools/cli/memory.ts): one JSON line, or one text line. */
function printMemory(model: string, b: BenchCommand, quant: BenchCommand['quant'], info: ModelInfo, loadMs: number): void {
  const m = info.memory, l = m.loader;
  const row = {
    model, kind: 'memory', quant, context: info.contextWindow, load_ms: Math.round(loadMs),
    gpu_bytes: m.gpuBytes, gpu_peak_bytes: m.gpuPeakBytes, weight_bytes: m.weightBytes, kv_bytes: m.kvBytes, kv_dtype: m.kvDtype, deep_kv_bytes: m.deepKvBytes, embed_bytes: m.embedBytes, ple_bytes: m.pleBytes,
    lm_head_bytes: m.lmHeadBytes, embed_storage: m.embedStorage, lm_head_storage: m.lmHeadStorage,
    projection_bytes: m.weightBytes - m.embedBytes - m.pleBytes - m.lmHeadBytes - m.deepKvBytes,
    scratch_bytes: m.gpuBytes - m.weightBytes - m.kvBytes,
    js_heap_peak_bytes: m.jsHeapPeakBytes, js_heap_base_bytes: m.jsHeapBaseBytes, js_heap_after_bytes: m.jsHeapAfterBytes,
    js_heap_covers: 'performance.memory.usedJSHeapSize of the page during load, ArrayBuffers included (stream chunks, f32 row ranges, packing; random models are drawn while read, not held); base: before load after GC, after: after load after GC',
    model_bytes: m.modelBytes, params: m.params,
    // The loader's own accounting (src/model/stream.ts): bytes it held at once, against the files it streamed.
    loader_peak_held_bytes: l?.peakHeldBytes ?? null, loader_bytes_read: l?.bytesRead ?? null, largest_file_bytes: l?.largestFileBytes ?? null,
    loader_writes: l?.writes ?? null, loader_writes_before_file_end: l?.writesBeforeFileEnd ?? null,
    // The NaN / Inf scan of every weight value (EngineOptions.checkWeights; src/model/weight_check.ts).
    weight_check_ms: l ? Math.round(l.checkMs * 10) / 10 : null, weight_check_values: l?.checkedValues ?? null,
  };
  // GPU bytes as users count them (issue 18's target: at most 1.25 x (weight files + KV cache + 64 MB of scratch)).
  const budget = (l?.bytesRead ?? m.modelBytes) + m.kvBytes + 64e6;
  Object.assign(row, { gpu_vs_files_kv_64mb: r3(m.gpuBytes / budget) });
  if (b.json) return void process.stdout.write(JSON.stringify(row) + '\n');
  process.stdout.write(`memory (${quant === 'none' ? 'f32' : quant}, context ${info.contextWindow}): GPU ${mb(m.gpuBytes)} in use, peak ${mb(m.gpuPeakBytes)} = weights ${mb(m.weightBytes)} (embedding ${mb(m.embedBytes)} ${m.embedStorage}, LM head ${m.lmHeadStorage === 'tied' ? 'tied to it' : `${mb(m.lmHeadBytes)} ${m.lmHeadStorage}`}${m.pleBytes ? `, per-layer embeddings ${mb(m.pleBytes)}` : ''}, POP deep K/V ${mb(m.deepKvBytes)}, layers and the rest ${mb(row.projection_bytes)}) + KV cache ${mb(m.kvBytes)} (${m.kvDtype}) + scratch ${mb(row.scratch_bytes)}; `
    + `JS heap peak ${mb(m.jsHeapPeakBytes)} during load (before ${mb(m.jsHeapBaseBytes)}, after ${mb(m.jsHeapAfterBytes)}; ArrayBuffers included); parameters ${(m.params / 1e6).toFixed(2)} M = ${mb(m.modelBytes)} f32\n`);
  process.stdout.write(`GPU bytes / (weight files ${mb(budget - m.kvBytes - 64e6)} + KV cache + 64 MB) = ${r3(m.gpuBytes / budget)} (target <= 1.25)\n`);
  if (l) process.stdout.write(`loader: streamed ${mb(l.bytesRead)} (largest file ${mb(l.largestFileBytes)}), held at most ${mb(l.peakHeldBytes)} at once; ${l.writesBeforeFileEnd} of ${l.writes} row-range uploads before their file had fully arrived; NaN/Inf check ${l.checkMs.toFixed(1)} ms over ${(l.checkedValues / 1e6).toFixed(2)} M values (${(100 * l.checkMs / Math.max(loadMs, 1e-9)).toFixed(1)}% of the ${Math.round(loadMs)} ms load)\n`);
}

/**
 * The fit check (src/model/fit.ts) of a random model before it is drawn: SwiftShader's device
 * memory is the host's, so the budget is half the host's free memory (the page's own copies
 * and other processes need the rest). The typed refusal's code, message and fields, or null.
 */
function fitRefusal(model: string, context: number | undefined, quant: BenchCommand['quant']): { code: string; message: string; fields: Record<string, unknown>; budget_bytes: number } | null {
  if (!model.startsWith('random:')) return null;
  const raw = JSON.parse(readFileSync(resolve(model.slice('random:'.length), 'config.json'), 'utf8'));
  const budget = Math.floor(freemem() / 2);
  // Bindings are the page's to check (row parts); here only the memory budget.
  const big = Number.MAX_SAFE_INTEGER;
  try {
    assertFits(estimateFit(raw, 0, context, { maxBufferSize: big, maxStorageBufferBindingSize: big, memoryBytes: budget }, { quantization: quant }));
    return null;
  } catch (e) {
    if (!(e instanceof PopError)) throw e;
    return { code: e.code, message: e.message, fields: e.fields, budget_bytes: budget };
  }
}

/** Each kernel family's choice on this adapter and every candidate's timing (the load-time probes). */
function printKernels(model: string, b: BenchCommand, info: ModelInfo): void {
  for (const k of info.kernels ?? []) {
    if (b.json) {
      process.stdout.write(JSON.stringify({ model, kind: 'kernel_choice', family: k.family, choice: k.choice, shape: k.shape, unit: k.unit, timings: k.timings, failed: k.failed, cached: k.cached }) + '\n');
      continue;
    }
    const cands = Object.entries(k.timings).map(([n, v]) => `${n} ${v}`).join(', ');
    process.stdout.write(`kernels: ${k.family}: ${k.choice} (${k.unit} on ${k.shape}${k.cached ? ', cached' : ''}: ${cands}${k.failed.length ? `; failed its check: ${k.failed.join(', ')}` : ''})\n`);
  }
}

export async function runBench(s: Session, b: BenchCommand): Promise<void> {
  const print = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify(o) + '\n');
  for (const bm of b.models) {
    const t0 = performance.now();
    const quant = bm.quant ?? b.quant, maxTokens = bm.maxTokens ?? b.maxTokens;
    const refusal = fitRefusal(bm.model, b.context, quant);
    if (refusal) {
      if (b.json) print({ model: bm.model, kind: 'refused', quant, ...refusal });
      else process.stdout.write(`\n${bm.model} (${quant}): not loaded: ${refusal.code} ${refusal.message}\n`);
      continue;
    }
    const info = await s.load({ arg: bm.model, model: s.modelSpec(bm.model), contextWindow: b.context, quantization: quant, kvDtype: b.kvDtype, probePrefill: true });
    const loadMs = performance.now() - t0;
    if (!b.json) process.stdout.write(`\n${bm.model}: ${info.layers} layers, hidden ${info.hiddenSize}, vocab ${info.vocabSize}; matmul ${info.variants.matmul}, matvec ${info.variants.matvec}; loaded in ${(loadMs / 1000).toFixed(1)} s\n`);
    printMemory(bm.model, b, quant, info, loadMs);
    // What ran it (bench/gpu.sh names the device and picks its peak from this).
    if (b.json) print({ model: bm.model, kind: 'engine', quant, adapter: info.adapter, weight_dtype: info.weightDtype, f16_arithmetic: info.f16Arithmetic, features: info.features, variants: info.variants });
    printKernels(bm.model, b, info);

    const avoid = info.vision?.imageTokenId ?? -1;
    // Warm-up: compile every pipeline a timed run uses (full depth, and POP's deep-KV path).
    const warm = benchPromptIds(Math.min(8, info.contextWindow - 1), info.vocabSize, info.bosTokenId, b.seed + 1, avoid);
    await s.generate({ promptIds: warm, maxTokens: 2, ignoreEos: true, pop: 'off' });
    const popOn = b.pops.find((x) => x.setting !== 'off');
    if (popOn) await s.generate({ promptIds: warm, maxTokens: 2, ignoreEos: true, pop: info.layers > 1 ? 'exact' : 'off' });

    const table = b.json ? null : new Table([['tokens', 6], ['pop', 7], ['keep', 7], ['prefill ms', 11], ['ttft ms', 9], ['decode tok/s', 12], ['speedup', 7]]);
    const offMs = new Map<number, number>();
    for (const n of bm.promptTokens) {
      const ids = benchPromptIds(n, info.vocabSize, info.bosTokenId, b.seed, avoid);
      for (const pop of b.pops) {
        let r = await s.generate({ promptIds: ids, maxTokens, temperature: 0, ignoreEos: true, pop: pop.setting });
        for (let i = 1; i < b.repeat; i++) {
          const again = await s.generate({ promptIds: ids, maxTokens, temperature: 0, ignoreEos: true, pop: pop.setting });
          if (again.prefillMs < r.prefillMs) r = again;
        }
        if (pop.setting === 'off') offMs.set(n, r.prefillMs);
        const off = offMs.get(n);
        const speedup = off !== undefined ? r3(off / r.prefillMs) : null;
        const row = { model: bm.model, quant, prompt_tokens: n, max_tokens: maxTokens, pop: pop.label, keep: r.keep, layers: r.layers, prefill_ms: r2(r.prefillMs), ttft_ms: r2(r.ttftMs), decode_tokens_per_s: r2(r.decodeTokensPerS), speedup_vs_off: speedup, full_depth_prefill_flops: prefillFlops(info, n) };
        if (table) table.row([n, pop.label, `${r.keep}/${r.layers}`, row.prefill_ms, row.ttft_ms, row.decode_tokens_per_s, speedup === null ? null : `${speedup}x`]);
        else print(row);
      }
    }

    if (info.vision) await runImagePrompt(s, bm.image ? { ...b, image: { ...b.image, ...bm.image } } : b, bm.model, info);
    if (!b.gemm || bm.gemm === false || !bm.promptTokens.length) continue;
    // The prefill matmul alone, on this model's GEMM shapes at each prompt length: one
    // dispatch per layer in one submission, as a prefill records them.
    // The reference shape (tokens x out x in = 512 x 1536 x 576: SmolLM2-135M's MLP) first.
    const target = { m: 512, n: 1536, k: 576 };
    const gemm = await s.gemm([target, ...bm.promptTokens.flatMap((n) => gemmShapes(info, n))], { batch: info.layers });
    const t = gemm.results[0];
    if (b.json) print({ model: bm.model, kind: 'gemm_target', variant: gemm.variant, m: t.m, n: t.n, k: t.k, gflops: r2(t.gflops) });
    else process.stdout.write(`gemm ${t.m}x${t.n}x${t.k} (${gemm.variant}): ${r2(t.gflops)} GFLOP/s\n`);
    gemm.results.shift();
    const flops = (x: GemmShape) => 2 * x.m * x.n * x.k;
    const total = gemm.results.reduce((a, x) => a + flops(x), 0);
    const totalMs = gemm.results.reduce((a, x) => a + x.ms, 0);
    const gemmGflops = total / (totalMs / 1000) / 1e9;
    if (b.json) print({ model: bm.model, kind: 'gemm', variant: gemm.variant, shapes: gemm.results.map((x) => ({ m: x.m, n: x.n, k: x.k, ms: r3(x.ms), gflops: r2(x.gflops) })), gflops: r2(gemmGflops) });
    else {
      process.stdout.write(`gemm (${gemm.variant}): ${gemm.results.map((x) => `${x.m}x${x.n}x${x.k} ${r2(x.gflops)}`).join(', ')} GFLOP/s; overall ${r2(gemmGflops)} GFLOP/s\n`);
    }
    for (const n of bm.promptTokens) {
      const off = offMs.get(n);
      if (off === undefined) continue;
      const shapes = gemm.results.filter((x) => x.m === n);
      const only = shapes.reduce((a, x) => a + flops(x), 0) / (shapes.reduce((a, x) => a + x.ms, 0) / 1000) / 1e9;
      const whole = prefillFlops(info, n) / (off / 1000) / 1e9;
      const row = { model: bm.model, kind: 'prefill', prompt_tokens: n, gflops_prefill: r2(whole), gflops_gemm_only: r2(only), ratio: r3(whole / only) };
      if (b.json) print(row);
      else process.stdout.write(`prefill ${n} tokens (pop off): ${row.gflops_prefill} GFLOP/s vs GEMMs alone ${row.gflops_gemm_only} GFLOP/s (ratio ${row.ratio})\n`);
    }
  }
}

/**
 * TTFT of an image+text prompt on a VLM, per POP setting. The tower (+ connector) runs once,
 * timed alone (it does not depend on POP); each setting's prefill runs on the same prompt with
 * the image rows as text ids (the same rows through the same layers), so
 * TTFT = preprocess + tower + prefill. With --image-full every setting runs end to end.
 */
export async function runImagePrompt(s: Session, b: BenchCommand, model: string, info: ModelInfo): Promise<void> {
  const im = b.image;
  const req = { text: IMAGE_PROMPT, images: [{ kind: 'pattern' as const, width: im.width, height: im.height }], longestEdge: im.longestEdge, maxTokens: 1 };
  const table = b.json ? null : new Table([['image', 9], ['tiles', 5], ['img tok', 7], ['tokens', 6], ['pop', 7], ['keep', 7], ['vision ms', 10], ['prefill ms', 11], ['ttft ms', 10], ['speedup', 7]]);
  let vision: number | null = null;
  if (!im.full) {
    // The tower's pipelines compile on this first run; a tile costs far more than compiling them.
    vision = (await s.imagePrompt({ ...req, part: 'vision' })).ttftMs;
  }
  let off: { ttft: number; prefill: number } | null = null;
  for (const pop of b.pops) {
    let r = await s.imagePrompt({ ...req, pop: pop.setting, part: im.full ? 'full' : 'text' });
    for (let i = 1; i < b.repeat; i++) {
      const again = await s.imagePrompt({ ...req, pop: pop.setting, part: im.full ? 'full' : 'text' });
      if (again.ttftMs < r.ttftMs) r = again;
    }
    const prefill = im.full ? null : r.ttftMs;
    const ttft = im.full ? r.ttftMs : r.preprocessMs + vision! + r.ttftMs;
    if (pop.setting === 'off') off = { ttft, prefill: prefill ?? ttft };
    const row = {
      model, kind: 'image_prompt', image: `${im.width}x${im.height}`, longest_edge: im.longestEdge, tiles: r.tiles, image_tokens: r.imageTokens, prompt_tokens: r.promptTokens,
      pop: pop.label, keep: r.keep, layers: r.layers, vision_layers: info.vision!.layers, ttft_ms: r2(ttft), vision_ms: vision === null ? null : r2(vision),
      prefill_ms: prefill === null ? null : r2(prefill), preprocess_ms: r2(r.preprocessMs), ttft_source: im.full ? 'measured' : 'preprocess+vision+prefill',
      speedup_vs_off: off ? r3(off.ttft / ttft) : null, prefill_speedup_vs_off: off && prefill !== null ? r3(off.prefill / prefill) : null,
    };
    if (table) table.row([row.image, row.tiles, row.image_tokens, row.prompt_tokens, pop.label, `${r.keep}/${r.layers}`, row.vision_ms, row.prefill_ms, row.ttft_ms, row.speedup_vs_off === null ? null : `${row.speedup_vs_off}x`]);
    else process.stdout.write(JSON.stringify(row) + '\n');
  }
}

/** POP's quality on a real model: first-token KL and greedy agreement against full depth. */
export async function runPopQuality(s: Session, b: BenchCommand, promptsText: string): Promise<void> {
  const info = await s.load({ arg: QUALITY_MODEL, model: s.modelSpec(QUALITY_MODEL) });
  // Prompts: growing prefixes of the calibration text, as token ids (BOS first).
  const all = (await s.generate({ prompt: promptsText, maxTokens: 1, ignoreEos: true })).promptIds;
  const lengths = [16, 24, 32, 48, 64, 80].filter((n) => n < all.length && n + 32 < info.contextWindow);
  const prompts = lengths.map((n) => all.slice(0, n));
  const pops = b.pops.filter((p) => p.setting !== 'off');
  for (const extra of [{ setting: 'auto' as const, label: 'auto' }, { setting: 1, label: '1' }]) if (!pops.some((p) => p.label === extra.label)) pops.push(extra);
  const rows = await s.popQuality({ prompts, pops, maxTokens: 32 });
  for (const r of rows) {
    const row = { model: QUALITY_MODEL, kind: 'pop_quality', pop: r.pop, keep: r.keep, layers: r.layers, prompts: prompts.length, first_token_kl_mean: r3(r.firstTokenKlMean * 1000) / 1000, first_token_kl_max: r3(r.firstTokenKlMax * 1000) / 1000, first_token_agreement: r3(r.firstTokenAgreement), greedy_agreement_32: r3(r.greedyAgreement) };
    if (b.json) process.stdout.write(JSON.stringify(row) + '\n');
    else process.stdout.write(`quality ${QUALITY_MODEL} pop ${r.pop} keep ${r.keep}/${r.layers}: first-token KL mean ${row.first_token_kl_mean} max ${row.first_token_kl_max}, first-token agreement ${row.first_token_agreement}, greedy agreement over 32 tokens ${row.greedy_agreement_32}\n`);
  }
}
