// MLC / WebLLM weight folders (src/model/mlc.ts) on random fixtures from src/model/mlc_writer.ts.
// Node (CPU ops): the writer's parameter list is WebLLM's Qwen2 model library's; MLC's q4
// (nibble order, (q - 7) * scale) maps onto our packed layout exactly; the CpuOps engine on an
// MLC folder matches the independent reference model run on the dequantized weights under HF
// names (qwen2 q4f32_1 / q4f16_1 / q0f32, untied llama, nibbles 15); typed errors (truncated
// shard, unknown quantization, missing tensor, no record list); an MLC q0 folder and the same
// weights as safetensors give identical logits (CPU and GPU). WebGPU: the same fixture's
// teacher-forced logits match the reference and the CpuOps engine within 1e-4 normalized
// (same dequantized weights; f32 accumulation order only), over POP keeps and with the
// embedding split into row parts; POP exact = off.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, expect } from './fixtures.ts';
import { MissingTensorError, ModelFileMissingError, ShapeMismatchError, TruncatedFileError, UnsupportedQuantizationError } from '../src/errors.ts';
import { Engine } from '../src/engine/engine.ts';
import { loadModelFiles } from '../src/model/loader.ts';
import { dequantizeMlc, packMlcQ4 } from '../src/model/mlc.ts';
import { mlcChatConfig, mlcParams, mlcReferenceTensors, writeMlcModel, type MlcWriterOptions } from '../src/model/mlc_writer.ts';
import { scaleConfig } from '../src/model/random_model.ts';
import { memorySource } from '../src/model/source.ts';
import { folderSource } from '../tools/node/fs_source.ts';
import { dequantizeQ4 } from '../src/core/quant.ts';
import { CpuOps } from '../src/reference/cpu_ops.ts';
import { ReferenceModel } from '../src/reference/reference_model.ts';
import { caught, expectPopError } from './fixtures/expect_error.ts';
import { safetensorsTwin } from './fixtures/mlc_twin.ts';
import { REPO } from './fixtures/model_files.ts';

const readJson = (p: string) => JSON.parse(readFileSync(join(REPO, p), 'utf8'));
const QWEN = readJson('configs/Qwen__Qwen2.5-0.5B-Instruct/config.json');
const SMOL = readJson('configs/HuggingFaceTB__SmolLM2-135M-Instruct/config.json');
// inter 100: down_proj's K is not a multiple of the 32-group (MLC pads the words with zeros).
const SCALE = { layers: 4, hidden: 64, heads: 4, kvHeads: 2, inter: 100, vocab: 300, maxPositions: 256 };
const TINY_QWEN = scaleConfig(QWEN, SCALE);
const PROMPT = [1, 17, 200, 33, 5, 99, 250, 42, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18];
const CONT = [5, 17, 250];
const CPU_TOL = 1e-5; // CpuOps (f64 accumulators) vs the reference: same weights
const GPU_TOL = 1e-4; // as test/quant.spec.ts: same dequantized weights, f32 accumulation order only
const SHARD = 20_000; // bytes: a tiny fixture still spans several shards

function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) (d = Math.max(d, Math.abs(a[i] - b[i]))), (m = Math.max(m, Math.abs(b[i])));
  return d / Math.max(1, m);
}

const fixture = (hf: Record<string, any>, quant: string, o: MlcWriterOptions = {}) => writeMlcModel(mlcChatConfig(hf, quant), { seed: 5, shardBytes: SHARD, ...o });
const cpuEngine = (files: Map<string, Uint8Array>) => Engine.load(new CpuOps(), memorySource(files), { pageSize: 8, prefillChunk: 16 });

test('the writer gives WebLLM Qwen2-0.5B q4f32_1 library\'s parameter list (wasm_metadata.json: names, shapes, dtypes, order)', () => {
  const meta = readJson('bench/webllm/wasm_metadata.json');
  const chat = readJson('bench/webllm/mlc-chat-config.template.json');
  expect(mlcParams(chat)).toEqual(meta.params.map((p: any) => ({ name: p.name, shape: p.shape, dtype: p.dtype })));
  // And a config written from Qwen2.5-0.5B's config.json has the same architecture.
  expect(mlcParams(mlcChatConfig(QWEN, 'q4f32_1'))).toEqual(mlcParams(chat));
});

test('MLC q4 -> our packed layout: same nibble order, (q - 7) * s exactly (sym, nibbles + 1) or within an f32 rounding (asym, a nibble 15)', () => {
  const rows = 5, cols = 72, G = 3; // K % 32 != 0: the last group is partial (MLC pads with zeros)
  let s = 99;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s);
  for (const nibble15 of [false, true]) {
    const words = new Uint32Array(rows * G * 4).map(() => {
      const w = rnd();
      return nibble15 ? w : (w ^ (((w & (w >>> 1) & (w >>> 2) & (w >>> 3) & 0x11111111) << 3) >>> 0)) >>> 0;
    });
    const scales = new Float32Array(rows * G).map(() => (rnd() / 2 ** 32 - 0.5) * 0.1);
    const lin = { rows, cols, words, scales, data: null };
    // MLC's convert_uint_to_float + _dequantize: element k is bits 4(k % 8) of word k / 8, value (q - 7) * scale.
    const want = new Float32Array(rows * cols);
    for (let n = 0; n < rows; n++) for (let k = 0; k < cols; k++) want[n * cols + k] = (((words[n * G * 4 + Math.floor(k / 8)] >>> ((k % 8) * 4)) & 15) - 7) * scales[n * G + Math.floor(k / 32)];
    expect(dequantizeMlc(lin)).toEqual(want);
    const { packed, info } = packMlcQ4([lin]);
    expect(info.scheme).toBe(nibble15 ? 'q4-asym' : 'q4');
    const got = dequantizeQ4(packed, info);
    const plus0 = (a: Float32Array) => Array.from(a, (x) => x + 0); // (q - 7) s is -0 for q = 7, s < 0
    if (!nibble15) expect(plus0(got)).toEqual(plus0(want));
    // asym: m = fround(-7 s) is off by up to half an ulp of 7 s, then one more rounding.
    else for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(16 * Math.abs(scales[Math.floor(i / cols) * G + Math.floor((i % cols) / 32)]) * 2 ** -23);
  }
});

test.describe('CpuOps engine on MLC folders vs the reference model on the dequantized HF-named weights', () => {
  const CASES: { label: string; hf: Record<string, any>; quant: string; o?: MlcWriterOptions }[] = [
    { label: 'qwen2 q4f32_1 (tied, c_attn bias)', hf: TINY_QWEN, quant: 'q4f32_1' },
    { label: 'qwen2 q4f16_1 (f16 scales, norms, biases)', hf: TINY_QWEN, quant: 'q4f16_1' },
    { label: 'qwen2 q0f32 (unquantized)', hf: TINY_QWEN, quant: 'q0f32' },
    { label: 'qwen2 q4f32_1 with nibbles 15 (asym path)', hf: TINY_QWEN, quant: 'q4f32_1', o: { nibble15: true } },
    { label: 'llama q4f32_1 (untied lm_head, qkv_proj)', hf: { ...scaleConfig(SMOL, SCALE), tie_word_embeddings: false }, quant: 'q4f32_1' },
  ];
  for (const c of CASES) {
    test(`${c.label}: teacher-forced logits within ${CPU_TOL}, POP keeps included; POP exact = off`, async () => {
      const files = fixture(c.hf, c.quant, c.o);
      const engine = await cpuEngine(files);
      const ref = new ReferenceModel(engine.config, ((t) => (n: string) => t.get(n) ?? null)(mlcReferenceTensors(files)));
      const L = engine.config.numLayers;
      for (const keep of [L, L - 1, 2]) {
        const got = await engine.teacherForced(PROMPT, CONT, keep === L ? 'off' : keep);
        ref.reset();
        const want = [ref.feed(PROMPT, 0, keep)];
        CONT.forEach((t, i) => want.push(ref.feed([t], PROMPT.length + i)));
        const errs = got.map((g, i) => maxDiff(g, want[i]));
        expect(Math.max(...errs), `keep ${keep}: ${errs}`).toBeLessThan(CPU_TOL);
      }
      const off = await engine.generate(PROMPT, { maxTokens: 8, ignoreEos: true, pop: 'off' });
      const exact = await engine.generate(PROMPT, { maxTokens: 8, ignoreEos: true, pop: 'exact' });
      expect(exact.stats.keep).toBe(L - 1);
      expect(exact.ids).toEqual(off.ids);
    });
  }

  test('config mapping: context_window_size -> max positions, rope_theta, tied, BOS/EOS; tensor-cache.json alone loads the same', async () => {
    const files = fixture(TINY_QWEN, 'q4f32_1');
    const mf = await loadModelFiles(memorySource(files));
    expect(mf.mlc?.quantization).toBe('q4f32_1');
    expect(mf.config).toMatchObject({ modelType: 'qwen2', maxPositionEmbeddings: 256, tieWordEmbeddings: true, attentionBias: true, numLayers: 4, hiddenSize: 64, headDim: 16, vocabSize: 300 });
    expect(mf.config.rope[0].theta).toBe(QWEN.rope_theta);
    const a = await (await cpuEngine(files)).promptLogits(PROMPT);
    for (const drop of ['ndarray-cache.json', 'tensor-cache.json']) {
      const only = new Map(files);
      only.delete(drop);
      expect(await (await cpuEngine(only)).promptLogits(PROMPT)).toEqual(a);
    }
  });
});

test.describe('one model through both formats', () => {
  for (const [quant, dtype] of [['q0f32', 'F32'], ['q0f16', 'F16']] as const) {
    test(`qwen2 ${quant} and the same weights as ${dtype} safetensors: identical config and teacher-forced logits (CpuOps), POP keeps included`, async () => {
      const mlc = fixture(TINY_QWEN, quant);
      const viaMlc = await cpuEngine(mlc), viaSafetensors = await cpuEngine(await safetensorsTwin(mlc, dtype));
      expect(viaSafetensors.config).toEqual(viaMlc.config);
      const L = viaMlc.config.numLayers;
      for (const pop of ['off', L - 1, 2] as const) expect(await viaSafetensors.teacherForced(PROMPT, CONT, pop), `pop ${pop}`).toEqual(await viaMlc.teacherForced(PROMPT, CONT, pop));
    });
  }
});

test.describe('MLC folder errors', () => {
  test('a truncated shard on disk: TRUNCATED_FILE naming the shard', async () => {
    const files = fixture(TINY_QWEN, 'q4f32_1');
    const dir = await mkdtemp(join(tmpdir(), 'pop-llm-mlc-'));
    try {
      for (const [name, bytes] of files) await writeFile(join(dir, name), bytes);
      const shard = 'params_shard_2.bin', size = files.get(shard)!.byteLength;
      await truncate(join(dir, shard), size - 100);
      const e = await caught(() => Engine.load(new CpuOps(), folderSource(dir)));
      expectPopError(e, TruncatedFileError, 'TRUNCATED_FILE', { file: shard, expectedBytes: size, actualBytes: size - 100 });
      expect(e.message).toContain(shard);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("an unknown quantization ('q3f16_0'): UNSUPPORTED_QUANTIZATION before any shard is read", async () => {
    const files = fixture(TINY_QWEN, 'q4f32_1');
    const chat = JSON.parse(new TextDecoder().decode(files.get('mlc-chat-config.json')!));
    files.set('mlc-chat-config.json', new TextEncoder().encode(JSON.stringify({ ...chat, quantization: 'q3f16_0' })));
    for (const n of [...files.keys()]) if (n.endsWith('.bin')) files.delete(n);
    const e = await caught(() => cpuEngine(files));
    expectPopError(e, UnsupportedQuantizationError, 'UNSUPPORTED_QUANTIZATION', { quantization: 'q3f16_0' });
    expect(e.message).toContain('q4f32_1');
  });

  test('a missing tensor, a wrong shape, no record list: MISSING_TENSOR, SHAPE_MISMATCH, MODEL_FILE_MISSING', async () => {
    const edit = (f: (recs: any[]) => void) => {
      const files = fixture(TINY_QWEN, 'q4f32_1');
      for (const n of ['ndarray-cache.json', 'tensor-cache.json']) {
        const cache = JSON.parse(new TextDecoder().decode(files.get(n)!));
        f(cache.records.flatMap((s: any) => s.records));
        for (const s of cache.records) s.records = s.records.filter((r: any) => !r.drop);
        files.set(n, new TextEncoder().encode(JSON.stringify(cache)));
      }
      return files;
    };
    const name = 'model.layers.2.self_attn.c_attn.q_scale';
    expectPopError(await caught(() => cpuEngine(edit((rs) => (rs.find((r) => r.name === name).drop = true)))), MissingTensorError, 'MISSING_TENSOR', { tensor: name });
    const bias = 'model.layers.1.self_attn.c_attn.bias';
    const e = await caught(() => cpuEngine(edit((rs) => Object.assign(rs.find((r) => r.name === bias), { shape: [64], nbytes: 256 }))));
    expectPopError(e, ShapeMismatchError, 'SHAPE_MISMATCH', { tensor: bias, expected: '128', actual: '64' });
    const files = fixture(TINY_QWEN, 'q4f32_1');
    files.delete('ndarray-cache.json');
    files.delete('tensor-cache.json');
    expectPopError(await caught(() => cpuEngine(files)), ModelFileMissingError, 'MODEL_FILE_MISSING', { file: 'ndarray-cache.json' });
  });
});

test.describe('WebGPU', () => {
  // Runs in the harness page: builds the fixture there (mlc_writer is plain TS), loads it on
  // WebGPU and with CpuOps, and the reference on the dequantized HF-named weights.
  const inPage = (harness: any, fn: string, args: unknown[]) =>
    harness.evaluate(async ([fn, args]: [string, any[]]) => {
      const g = globalThis as any;
      const pop = g.pop;
      const w = await import(/* @vite-ignore */ ['/src/model', 'mlc_writer.ts'].join('/'));
      g.__mlc ??= new Map();
      const open = async (hf: Record<string, any>, quant: string, o: Record<string, unknown>) => {
        const key = JSON.stringify([hf, quant, o]);
        let e = g.__mlc.get(key);
        if (!e) {
          const { maxBindingBytes, ...writer } = o;
          const files = w.writeMlcModel(w.mlcChatConfig(hf, quant), { seed: 5, shardBytes: 20_000, ...writer });
          const src = pop.memorySource(files);
          const opts = { pageSize: 8, prefillChunk: 16 };
          const gpu = await pop.createGpuEngine(src, { ...opts, maxBindingBytes });
          const cpu = await pop.Engine.load(new pop.CpuOps(), src, opts);
          const t = w.mlcReferenceTensors(files);
          const ref = new pop.ReferenceModel(gpu.config, (n: string) => t.get(n) ?? null);
          g.__mlc.set(key, (e = { gpu, cpu, ref }));
        }
        return e;
      };
      const diff = (a: Float32Array, b: Float32Array) => {
        let d = 0, m = 0;
        for (let i = 0; i < b.length; i++) (d = Math.max(d, Math.abs(a[i] - b[i]))), (m = Math.max(m, Math.abs(b[i])));
        return d / Math.max(1, m);
      };
      if (fn === 'logits') {
        const [hf, quant, o, prompt, cont, keep] = args;
        const { gpu, cpu, ref } = await open(hf, quant, o);
        const L = gpu.config.numLayers;
        const pop_ = keep === L ? 'off' : keep;
        const got: Float32Array[] = await gpu.teacherForced(prompt, cont, pop_);
        const viaCpu: Float32Array[] = await cpu.teacherForced(prompt, cont, pop_);
        ref.reset();
        const want = [ref.feed(prompt, 0, keep)];
        cont.forEach((t: number, i: number) => want.push(ref.feed([t], prompt.length + i)));
        // How the embedding is stored: q4 (whole or every row part), and the tied LM head is the same buffer.
        const ops = gpu.ops, e = gpu.weights.embed, parts = ops.splitInfo(e)?.parts;
        const embed = { q4: parts ? parts.every((p: any) => !!ops.quantInfo(p.buf)) : !!ops.quantInfo(e), parts: parts?.length ?? 1, tied: gpu.weights.lmHead === e };
        return { ref: got.map((x, i) => diff(x, want[i])), cpu: got.map((x, i) => diff(x, viaCpu[i])), layers: L, embed };
      }
      const [hf, quant, o, prompt, n, popSetting] = args;
      const r = await (await open(hf, quant, o)).gpu.generate(prompt, { maxTokens: n, ignoreEos: true, pop: popSetting });
      return { ids: r.ids, keep: r.stats.keep };
    }, [fn, args]);

  // maxBindingBytes 8 KiB: the 300 x 64 q4 embedding (12 KiB, gathered as q4 and shared by the tied
  // LM head) and the larger q4 weights are stored as row parts (src/ops/split.ts).
  for (const [label, o] of [['q4f32_1', {}], ['q4f32_1 with nibbles 15 (asym)', { nibble15: true }], ['q4f32_1, embedding split into row parts', { maxBindingBytes: 8 * 1024 }]] as const) {
    test(`tiny qwen2 ${label}: GPU teacher-forced logits vs the reference and the CpuOps engine (${GPU_TOL}), across prompt lengths and POP keeps`, async ({ harness }) => {
      const L = SCALE.layers;
      for (const n of [1, 9, 20, 40]) {
        const prompt = Array.from({ length: n }, (_, i) => (i * 37 + 11) % 300);
        const r = await inPage(harness, 'logits', [TINY_QWEN, 'q4f32_1', o, prompt, CONT, L]);
        expect(Math.max(...r.ref, ...r.cpu), `prompt ${n}: ${JSON.stringify(r)}`).toBeLessThan(GPU_TOL);
      }
      const r = await inPage(harness, 'logits', [TINY_QWEN, 'q4f32_1', o, [1, 2], [], L]);
      expect(r.embed).toEqual({ q4: true, parts: 'maxBindingBytes' in o ? 2 : 1, tied: true });
      for (const keep of [L - 1, 2, 1]) {
        const r = await inPage(harness, 'logits', [TINY_QWEN, 'q4f32_1', o, PROMPT, CONT, keep]);
        expect(Math.max(...r.ref, ...r.cpu), `keep ${keep}: ${JSON.stringify(r)}`).toBeLessThan(GPU_TOL);
      }
    });
  }

  test('tiny qwen2 q0f32 on GPU: the MLC folder and the same weights as safetensors give identical teacher-forced logits, POP keeps included', async ({ harness }) => {
    const r = await harness.evaluate(async ([hf, prompt, cont]: [Record<string, any>, number[], number[]]) => {
      const pop = (globalThis as any).pop;
      const w = await import(/* @vite-ignore */ ['/src/model', 'mlc_writer.ts'].join('/'));
      const { safetensorsTwin } = await import(/* @vite-ignore */ ['/test/fixtures', 'mlc_twin.ts'].join('/'));
      const mlc = w.writeMlcModel(w.mlcChatConfig(hf, 'q0f32'), { seed: 5, shardBytes: 20_000 });
      const opts = { pageSize: 8, prefillChunk: 16 };
      const a = await pop.createGpuEngine(pop.memorySource(mlc), opts);
      const b = await pop.createGpuEngine(pop.memorySource(await safetensorsTwin(mlc, 'F32')), opts);
      const L = a.config.numLayers, out: Record<string, { same: boolean; steps: number }> = {};
      for (const setting of ['off', L - 1, 2]) {
        const x: Float32Array[] = await a.teacherForced(prompt, cont, setting), y: Float32Array[] = await b.teacherForced(prompt, cont, setting);
        out[String(setting)] = { same: x.length === y.length && x.every((v, i) => v.length === y[i].length && v.every((e, j) => Object.is(e, y[i][j]))), steps: x.length };
      }
      a.unload(), b.unload();
      return out;
    }, [TINY_QWEN, PROMPT, CONT] as [Record<string, any>, number[], number[]]);
    const same = { same: true, steps: CONT.length + 1 };
    expect(r).toEqual({ off: same, [SCALE.layers - 1]: same, 2: same });
  });

  test('tiny qwen2 q4f32_1 on GPU: POP exact gives tokens identical to off', async ({ harness }) => {
    const off = await inPage(harness, 'generate', [TINY_QWEN, 'q4f32_1', {}, PROMPT, 24, 'off']);
    const exact = await inPage(harness, 'generate', [TINY_QWEN, 'q4f32_1', {}, PROMPT, 24, 'exact']);
    expect(exact.keep).toBe(off.keep - 1);
    expect(exact.ids).toEqual(off.ids);
  });
});
