// The loader against good and bad model folders, in Node on the CPU ops: every bad input
// gives its exact typed error (class, code, fields); f32/f16/bf16 and sharded checkpoints
// load to the same model; weights stream (uploads while the file arrives, held bytes far
// below the file, any tensor order, a short stream is TRUNCATED_FILE and stores nothing).
// Browser tests cover the URL source on Vite's dev server and the streamed load on WebGPU
// through the Cache API source.
import { readFileSync } from 'node:fs';
import { rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, expect } from './fixtures.ts';
import {
  MalformedFileError, MissingTensorError, ModelFileMissingError, ShapeMismatchError, TruncatedFileError,
  UnsupportedDtypeError, UnsupportedModelTypeError, InvalidArgumentError,
} from '../src/errors.ts';
import { Engine } from '../src/engine/engine.ts';
import { buildWeights, loadCheckpoint, loadModelFiles, type LoadProgress } from '../src/model/loader.ts';
import { memorySource, type FileStream, type ModelSource } from '../src/model/source.ts';
import type { RowUpload, UploadOptions } from '../src/ops/ops.ts';
import { TextTokenizer } from '../src/model/tokenizer.ts';
import { folderSource } from '../tools/node/fs_source.ts';
import { CpuOps } from '../src/reference/cpu_ops.ts';
import { caught, expectPopError } from './fixtures/expect_error.ts';
import {
  STORIES_DIR, editTensors, headerLength, json, readRawSafetensors, relErr, storiesFiles, storiesTempDir, tinyConfig, tinyFiles, withHeader,
} from './fixtures/model_files.ts';

const cpu = () => new CpuOps();
const load = (files: Map<string, Uint8Array>, contextWindow = 64) => Engine.load(cpu(), memorySource(files), { contextWindow });
const PROMPT = [1, 17, 200, 33, 5, 99, 250, 42];
const STORIES_MODEL = new Uint8Array(readFileSync(join(STORIES_DIR, 'model.safetensors')));
const STORIES_HEADER = headerLength(STORIES_MODEL);

test.describe('missing files', () => {
  test('a model folder that does not exist: MODEL_FILE_MISSING config.json', async () => {
    const e = await caught(() => Engine.load(cpu(), folderSource(join(STORIES_DIR, 'no-such-model'))));
    expectPopError(e, ModelFileMissingError, 'MODEL_FILE_MISSING', { file: 'config.json' });
    expect(e.message).toContain('config.json');
  });

  test('a folder without config.json: MODEL_FILE_MISSING config.json (folder and memory sources)', async () => {
    const dir = await storiesTempDir();
    try {
      await rm(join(dir, 'config.json'));
      expectPopError(await caught(() => loadModelFiles(folderSource(dir))), ModelFileMissingError, 'MODEL_FILE_MISSING', { file: 'config.json' });
      const files = storiesFiles();
      files.delete('config.json');
      expectPopError(await caught(() => Engine.load(cpu(), memorySource(files))), ModelFileMissingError, 'MODEL_FILE_MISSING', { file: 'config.json' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('no model.safetensors and no index: MODEL_FILE_MISSING model.safetensors', async () => {
    const files = storiesFiles();
    files.delete('model.safetensors');
    expectPopError(await caught(() => Engine.load(cpu(), memorySource(files))), ModelFileMissingError, 'MODEL_FILE_MISSING', { file: 'model.safetensors' });
  });

  test('no tokenizer.json: the model loads, text needs TextTokenizer.require -> MODEL_FILE_MISSING tokenizer.json', async () => {
    const engine = await load(tinyFiles());
    expect(engine.tokenizer).toBeNull();
    expectPopError(await caught(() => TextTokenizer.require(engine.tokenizer)), ModelFileMissingError, 'MODEL_FILE_MISSING', { file: 'tokenizer.json' });
    // Token ids still work without a tokenizer.
    expect((await engine.generate(PROMPT, { maxTokens: 3, ignoreEos: true })).ids).toHaveLength(3);
    // With one (stories260K on disk) text encodes.
    const stories = await Engine.load(cpu(), folderSource(STORIES_DIR), { contextWindow: 64 });
    expect(TextTokenizer.require(stories.tokenizer).encode('Once upon a time').length).toBeGreaterThan(1);
  });
});

test.describe('bad config.json', () => {
  test('not JSON: MALFORMED_FILE config.json', async () => {
    const files = storiesFiles();
    files.set('config.json', new TextEncoder().encode('{"model_type": "llama",'));
    const e = await caught(() => loadModelFiles(memorySource(files)));
    expectPopError(e, MalformedFileError, 'MALFORMED_FILE', { file: 'config.json' });
    expect(String(e.fields.detail)).toContain('not valid JSON');
  });

  test('JSON but not an object (null, an array): MALFORMED_FILE config.json', async () => {
    for (const text of ['null', '[1, 2]', '"llama"']) {
      const files = storiesFiles();
      files.set('config.json', new TextEncoder().encode(text));
      expectPopError(await caught(() => loadModelFiles(memorySource(files))), MalformedFileError, 'MALFORMED_FILE', { file: 'config.json' });
    }
  });

  test('unsupported model_type: UNSUPPORTED_MODEL_TYPE with the supported list', async () => {
    const files = storiesFiles();
    files.set('config.json', json({ ...JSON.parse(readFileSync(join(STORIES_DIR, 'config.json'), 'utf8')), model_type: 'gpt2' }));
    const e = await caught(() => Engine.load(cpu(), memorySource(files)));
    expectPopError(e, UnsupportedModelTypeError, 'UNSUPPORTED_MODEL_TYPE', { modelType: 'gpt2' });
    expect(String(e.fields.supported).split(',')).toContain('llama');
    expect(e.message).toContain('gpt2');
    // No model_type at all.
    files.set('config.json', json({ hidden_size: 64 }));
    expectPopError(await caught(() => loadModelFiles(memorySource(files))), UnsupportedModelTypeError, 'UNSUPPORTED_MODEL_TYPE', { modelType: 'undefined' });
  });

  test('implausible sizes and head counts: MALFORMED_FILE config.json', async () => {
    for (const over of [{ hidden_size: 0 }, { num_hidden_layers: 1.5 }, { num_key_value_heads: 3 }]) {
      const e = await caught(() => loadModelFiles(memorySource(tinyFiles().set('config.json', json(tinyConfig(over))))));
      expectPopError(e, MalformedFileError, 'MALFORMED_FILE', { file: 'config.json' });
    }
  });

  test('contextWindow not a positive integer: INVALID_ARGUMENT contextWindow', async () => {
    const e = await caught(() => Engine.load(cpu(), memorySource(tinyFiles()), { contextWindow: 0 }));
    expectPopError(e, InvalidArgumentError, 'INVALID_ARGUMENT', { argument: 'contextWindow' });
  });
});

test.describe('truncated and malformed safetensors', () => {
  test('a shard cut inside its data: TRUNCATED_FILE with expectedBytes/actualBytes (folder source)', async () => {
    const dir = await storiesTempDir();
    try {
      const cut = STORIES_MODEL.byteLength - 1000;
      await truncate(join(dir, 'model.safetensors'), cut);
      const e = await caught(() => Engine.load(cpu(), folderSource(dir)));
      expectPopError(e, TruncatedFileError, 'TRUNCATED_FILE', { file: 'model.safetensors', expectedBytes: STORIES_MODEL.byteLength, actualBytes: cut });
      expect(e.message).toContain(String(cut));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('one byte short: TRUNCATED_FILE', async () => {
    const files = storiesFiles().set('model.safetensors', STORIES_MODEL.slice(0, -1));
    expectPopError(await caught(() => loadCheckpoint(memorySource(files))), TruncatedFileError, 'TRUNCATED_FILE', { expectedBytes: STORIES_MODEL.byteLength, actualBytes: STORIES_MODEL.byteLength - 1 });
  });

  test('a file cut inside its header (or inside the 8-byte length): TRUNCATED_FILE', async () => {
    const files = storiesFiles();
    files.set('model.safetensors', STORIES_MODEL.slice(0, 8 + 100));
    expectPopError(await caught(() => loadCheckpoint(memorySource(files))), TruncatedFileError, 'TRUNCATED_FILE', { file: 'model.safetensors', expectedBytes: 8 + STORIES_HEADER, actualBytes: 108 });
    files.set('model.safetensors', STORIES_MODEL.slice(0, 5));
    expectPopError(await caught(() => loadCheckpoint(memorySource(files))), TruncatedFileError, 'TRUNCATED_FILE', { expectedBytes: 8, actualBytes: 5 });
    files.set('model.safetensors', new Uint8Array(0));
    expectPopError(await caught(() => loadCheckpoint(memorySource(files))), TruncatedFileError, 'TRUNCATED_FILE', { expectedBytes: 8, actualBytes: 0 });
  });

  test('header not JSON: MALFORMED_FILE', async () => {
    const files = storiesFiles().set('model.safetensors', withHeader('{"model.norm.weight": {"dtype": "F32"', [new Uint8Array(256)]));
    const e = await caught(() => loadCheckpoint(memorySource(files)));
    expectPopError(e, MalformedFileError, 'MALFORMED_FILE', { file: 'model.safetensors' });
    expect(String(e.fields.detail)).toContain('not valid JSON');
  });

  test('header JSON that is not a tensor table (null, array, entry not an object, bad offsets): MALFORMED_FILE', async () => {
    const bad = [
      'null', '[1, 2, 3]', '"text"', '{"model.norm.weight": null}', '{"model.norm.weight": 7}',
      '{"model.norm.weight": {"dtype": "F32", "shape": [64]}}',
      '{"model.norm.weight": {"dtype": "F32", "shape": [64], "data_offsets": [0, 200]}}', // span != shape
      '{"model.norm.weight": {"dtype": "F32", "shape": [-64], "data_offsets": [256, 0]}}', // negative
      '{"model.norm.weight": {"dtype": "F32", "shape": [64], "data_offsets": [-256, 0]}}', // before the data
      '{"model.norm.weight": {"dtype": "F32", "shape": [6.4e1, 1.5], "data_offsets": [0, 384]}}',
    ];
    for (const h of bad) {
      const files = storiesFiles().set('model.safetensors', withHeader(h, [new Uint8Array(512)]));
      const e = await caught(() => loadCheckpoint(memorySource(files)));
      expectPopError(e, MalformedFileError, 'MALFORMED_FILE', { file: 'model.safetensors' });
    }
  });

  test('implausible header length (an HTML page or random bytes): MALFORMED_FILE', async () => {
    const html = new TextEncoder().encode('<!DOCTYPE html><html><body>Not found</body></html>');
    const files = storiesFiles().set('model.safetensors', html);
    const e = await caught(() => loadCheckpoint(memorySource(files)));
    expectPopError(e, MalformedFileError, 'MALFORMED_FILE', { file: 'model.safetensors' });
    expect(String(e.fields.detail)).toContain('implausible');
    const huge = new Uint8Array(64);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
    expectPopError(await caught(() => loadCheckpoint(memorySource(files.set('model.safetensors', huge)))), MalformedFileError, 'MALFORMED_FILE');
  });
});

test.describe('checkpoint does not match config.json', () => {
  test('missing tensor: MISSING_TENSOR naming it (and the file)', async () => {
    for (const name of ['model.layers.3.mlp.down_proj.weight', 'model.embed_tokens.weight', 'model.norm.weight', 'model.layers.4.self_attn.v_proj.weight']) {
      const files = editTensors(storiesFiles(), (ts) => ts.filter((t) => t.name !== name));
      const e = await caught(() => Engine.load(cpu(), memorySource(files)));
      expectPopError(e, MissingTensorError, 'MISSING_TENSOR', { tensor: name, file: 'model.safetensors' });
      expect(e.message).toContain(name);
    }
  });

  test('untied model without lm_head.weight: MISSING_TENSOR lm_head.weight', async () => {
    const files = tinyFiles().set('config.json', json(tinyConfig({ tie_word_embeddings: false })));
    expectPopError(await caught(() => load(files)), MissingTensorError, 'MISSING_TENSOR', { tensor: 'lm_head.weight' });
  });

  test('sharded: the index names a tensor its shard lacks: MISSING_TENSOR naming tensor and shard', async () => {
    const files = tinyFiles({ shards: 3 });
    const index = JSON.parse(new TextDecoder().decode(files.get('model.safetensors.index.json')!));
    const name = 'model.layers.1.self_attn.o_proj.weight';
    const shard: string = index.weight_map[name];
    expect(shard).toMatch(/^model-0000\d-of-00003\.safetensors$/);
    const broken = editTensors(files, (ts) => ts.filter((t) => t.name !== name), shard);
    const e = await caught(() => loadCheckpoint(memorySource(broken)));
    expectPopError(e, MissingTensorError, 'MISSING_TENSOR', { tensor: name, file: shard });
    expectPopError(await caught(() => load(broken)), MissingTensorError, 'MISSING_TENSOR', { tensor: name, file: shard });
  });

  test('sharded: a shard the index names is missing: MODEL_FILE_MISSING naming the shard; no weight_map: MALFORMED_FILE', async () => {
    const files = tinyFiles({ shards: 3 });
    files.delete('model-00002-of-00003.safetensors');
    expectPopError(await caught(() => load(files)), ModelFileMissingError, 'MODEL_FILE_MISSING', { file: 'model-00002-of-00003.safetensors' });
    const noMap = tinyFiles({ shards: 3 }).set('model.safetensors.index.json', json({ metadata: {} }));
    expectPopError(await caught(() => load(noMap)), MalformedFileError, 'MALFORMED_FILE', { file: 'model.safetensors.index.json' });
    for (const weight_map of [[1, 2], { 'model.norm.weight': 3 }]) {
      const bad = tinyFiles({ shards: 3 }).set('model.safetensors.index.json', json({ weight_map }));
      expectPopError(await caught(() => load(bad)), MalformedFileError, 'MALFORMED_FILE', { file: 'model.safetensors.index.json' });
    }
    const notJson = tinyFiles({ shards: 3 }).set('model.safetensors.index.json', new TextEncoder().encode('{"weight_map": {'));
    expectPopError(await caught(() => load(notJson)), MalformedFileError, 'MALFORMED_FILE', { file: 'model.safetensors.index.json' });
  });

  test('shape mismatch: SHAPE_MISMATCH with expected/actual', async () => {
    // Same element count, other shape: only the shape check can catch it.
    const files = editTensors(storiesFiles(), (ts) => ts.map((t) => (t.name === 'model.layers.0.self_attn.q_proj.weight' ? { ...t, shape: [32, 128] } : t)));
    const e = await caught(() => Engine.load(cpu(), memorySource(files)));
    expectPopError(e, ShapeMismatchError, 'SHAPE_MISMATCH', { tensor: 'model.layers.0.self_attn.q_proj.weight', expected: '64x64', actual: '32x128' });
    // A config that disagrees with the checkpoint (vocab 500 vs the embedding's 512 rows).
    const cfg = JSON.parse(readFileSync(join(STORIES_DIR, 'config.json'), 'utf8'));
    const wrongVocab = storiesFiles().set('config.json', json({ ...cfg, vocab_size: 500 }));
    expectPopError(await caught(() => Engine.load(cpu(), memorySource(wrongVocab))), ShapeMismatchError, 'SHAPE_MISMATCH', { tensor: 'model.embed_tokens.weight', expected: '500x64', actual: '512x64' });
    // A 1-D norm stored as [1, 64].
    const rank = editTensors(storiesFiles(), (ts) => ts.map((t) => (t.name === 'model.norm.weight' ? { ...t, shape: [1, 64] } : t)));
    expectPopError(await caught(() => Engine.load(cpu(), memorySource(rank))), ShapeMismatchError, 'SHAPE_MISMATCH', { tensor: 'model.norm.weight', expected: '64', actual: '1x64' });
  });

  test('wrong dtype (I32, F64, I64, F8): UNSUPPORTED_DTYPE naming tensor and dtype', async () => {
    const cases: [string, string, number][] = [
      ['model.norm.weight', 'I32', 4], ['model.layers.2.self_attn.q_proj.weight', 'F64', 8],
      ['model.embed_tokens.weight', 'I64', 8], ['model.layers.0.mlp.up_proj.weight', 'F8_E4M3', 1],
    ];
    for (const [name, dtype, width] of cases) {
      const files = editTensors(storiesFiles(), (ts) => ts.map((t) => (t.name === name ? { ...t, dtype, data: new Uint8Array(t.shape.reduce((a, b) => a * b, 1) * width) } : t)));
      const e = await caught(() => Engine.load(cpu(), memorySource(files)));
      expectPopError(e, UnsupportedDtypeError, 'UNSUPPORTED_DTYPE', { tensor: name, dtype });
      expect(e.message).toContain('F32, F16 and BF16');
    }
  });
});

test.describe('good checkpoints', () => {
  test('stories260K from a folder: greedy ids match reference_greedy_200.json (first 24)', async () => {
    const ref = JSON.parse(readFileSync(join(STORIES_DIR, 'reference_greedy_200.json'), 'utf8'));
    const progress: LoadProgress[] = [];
    const engine = await Engine.load(cpu(), folderSource(STORIES_DIR), { contextWindow: 64, onProgress: (p) => progress.push(p) });
    expect(progress).toEqual([{ file: 'model.safetensors', loadedFiles: 1, totalFiles: 1, loadedBytes: STORIES_MODEL.byteLength }]);
    expect(engine.config).toMatchObject({ hiddenSize: 64, numLayers: 5, numHeads: 8, numKvHeads: 4, headDim: 8, vocabSize: 512, tieWordEmbeddings: true });
    const { ids } = await engine.generate([1], { maxTokens: 24, ignoreEos: true });
    expect(ids).toEqual(ref.generated_token_ids.slice(0, 24));
  });

  test('f16 and bf16 checkpoints load and match the f32 model (f16 1e-2, bf16 5e-2 relative)', async () => {
    const f32 = await load(tinyFiles({ dtype: 'F32' }));
    const want = await f32.promptLogits(PROMPT, 'off');
    for (const [dtype, tol] of [['F16', 1e-2], ['BF16', 5e-2]] as const) {
      const files = tinyFiles({ dtype });
      expect(readRawSafetensors(files.get('model.safetensors')!).every((t) => t.dtype === dtype)).toBe(true);
      const got = await (await load(files)).promptLogits(PROMPT, 'off');
      const err = relErr(got, want);
      expect(err, `${dtype} logits`).toBeLessThan(tol);
      expect(err, `${dtype} must differ from f32 (it was converted)`).toBeGreaterThan(0);
    }
  });

  test('f16 and bf16 tensors decode to f32 within half a unit in the last place', async () => {
    const ref = await loadCheckpoint(memorySource(tinyFiles({ dtype: 'F32' })));
    for (const [dtype, ulp] of [['F16', 2 ** -11], ['BF16', 2 ** -8]] as const) {
      const ck = await loadCheckpoint(memorySource(tinyFiles({ dtype })));
      for (const name of ['model.embed_tokens.weight', 'model.layers.1.mlp.down_proj.weight', 'model.norm.weight']) {
        expect(ck.entry(name)!.dtype).toBe(dtype);
        const a = ck.get(name)!, b = ref.get(name)!;
        let worst = 0;
        for (let i = 0; i < b.length; i++) if (Math.abs(b[i]) > 1e-4) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.abs(b[i]));
        expect(worst, `${dtype} ${name}`).toBeLessThanOrEqual(ulp);
      }
    }
  });

  test('a sharded checkpoint (3 shards + index) equals the single file exactly', async () => {
    const single = tinyFiles(), sharded = tinyFiles({ shards: 3 });
    expect(sharded.has('model.safetensors')).toBe(false);
    const progress: LoadProgress[] = [];
    const a = await loadCheckpoint(memorySource(single)), b = await loadCheckpoint(memorySource(sharded), (p) => progress.push(p));
    expect(b.files).toHaveLength(3);
    expect(progress.map((p) => [p.loadedFiles, p.totalFiles])).toEqual([[1, 3], [2, 3], [3, 3]]);
    const names = readRawSafetensors(single.get('model.safetensors')!).map((t) => t.name);
    for (const n of names) expect(b.get(n), n).toEqual(a.get(n));
    const la = await (await load(single)).promptLogits(PROMPT, 'off');
    const lb = await (await load(sharded)).promptLogits(PROMPT, 'off');
    expect(lb).toEqual(la);
    const ga = await (await load(single)).generate(PROMPT, { maxTokens: 6, ignoreEos: true });
    const gb = await (await load(sharded)).generate(PROMPT, { maxTokens: 6, ignoreEos: true });
    expect(gb.ids).toEqual(ga.ids);
  });

  test('tied vs untied lm_head: tied reuses the embedding; untied reads lm_head.weight', async () => {
    const tiedFiles = tinyFiles();
    const tiedNames = readRawSafetensors(tiedFiles.get('model.safetensors')!).map((t) => t.name);
    expect(tiedNames).not.toContain('lm_head.weight');
    const tied = await load(tiedFiles);
    expect(tied.config.tieWordEmbeddings).toBe(true);
    expect(tied.weights.lmHead).toBe(tied.weights.embed);

    // Untied with lm_head = a copy of the embedding: the same model, the same logits.
    const copy = editTensors(tiedFiles, (ts) => [...ts, { ...ts.find((t) => t.name === 'model.embed_tokens.weight')!, name: 'lm_head.weight' }]);
    copy.set('config.json', json(tinyConfig({ tie_word_embeddings: false })));
    const untiedSame = await load(copy);
    expect(untiedSame.weights.lmHead).not.toBe(untiedSame.weights.embed);
    expect(await untiedSame.promptLogits(PROMPT, 'off')).toEqual(await tied.promptLogits(PROMPT, 'off'));

    // A random untied model: lm_head holds its own tensor, and the logits differ from tying it.
    const untiedFiles = tinyFiles({ config: tinyConfig({ tie_word_embeddings: false }) });
    const ck = await loadCheckpoint(memorySource(untiedFiles));
    const lmHead = ck.get('lm_head.weight')!;
    expect(lmHead).toHaveLength(256 * 64);
    const files = await loadModelFiles(memorySource(untiedFiles));
    const w = buildWeights(cpu(), files.config, files.spec, ck, { pop: false, positions: 16 });
    expect(w.lmHead).toEqual(lmHead);
    expect(w.lmHead).not.toEqual(w.embed);
    const forcedTie = new Map(untiedFiles).set('config.json', json(tinyConfig({ tie_word_embeddings: true })));
    expect(await (await load(forcedTie)).promptLogits(PROMPT, 'off')).not.toEqual(await (await load(untiedFiles)).promptLogits(PROMPT, 'off'));
  });
});

/**
 * A source serving `files` with model.safetensors in chunks of `chunk` bytes, logging each
 * chunk handed out; `cut` drops the file's last bytes and `sized` says whether its size is known.
 */
function chunkedSource(files: Map<string, Uint8Array>, chunk: number, log: string[], o: { cut?: number; sized?: boolean } = {}): ModelSource & { finished: number; cancelled: number } {
  const base = memorySource(files);
  const src = {
    id: 'chunked', finished: 0, cancelled: 0,
    fetchFile: base.fetchFile,
    async openFile(name: string, opts: { optional?: boolean } = {}): Promise<FileStream | null> {
      if (name !== 'model.safetensors') return base.openFile!(name, opts);
      const whole = files.get(name)!, bytes = whole.subarray(0, whole.byteLength - (o.cut ?? 0));
      let pos = 0;
      return {
        size: o.sized === false ? null : bytes.byteLength,
        read: async () => {
          await new Promise((r) => setTimeout(r, 0)); // a network: each chunk comes later
          if (pos >= bytes.byteLength) return null;
          const c = bytes.slice(pos, pos + chunk);
          pos += c.byteLength;
          log.push(pos >= bytes.byteLength ? 'last chunk' : 'chunk');
          return c;
        },
        finish: async () => void src.finished++,
        cancel: async () => void src.cancelled++,
      };
    },
  };
  return src;
}

/** CpuOps that logs every row-range write. */
class LoggingOps extends CpuOps {
  constructor(private readonly log: string[]) {
    super();
  }
  override uploadRows(label: string, rows: number, opts: UploadOptions & { cols: number }): RowUpload<Float32Array> {
    const w = super.uploadRows(label, rows, opts);
    return { ...w, write: (r, d) => (this.log.push('write'), w.write(r, d)), finish: () => w.finish(), discard: () => w.discard() };
  }
}

test.describe('streamed load', () => {
  test('a shard in 4 KB chunks: rows are uploaded while it arrives, the loader holds a small part of it, the model is the same', async () => {
    const files = tinyFiles();
    const size = files.get('model.safetensors')!.byteLength;
    const log: string[] = [];
    const src = chunkedSource(files, 4096, log);
    const engine = await Engine.load(new LoggingOps(log), src, { contextWindow: 64, loadChunkBytes: 2048 });
    const last = log.indexOf('last chunk'), writes = log.filter((e) => e === 'write').length;
    expect(last).toBeGreaterThan(0);
    // Most row ranges went up before the file's last chunk arrived.
    const early = log.slice(0, last).filter((e) => e === 'write').length;
    expect(early, log.join(' ')).toBeGreaterThan(0.8 * writes);
    const s = engine.loadStats!;
    expect(s).toMatchObject({ files: 1, bytesRead: size, largestFileBytes: size, writes });
    expect(s.writesBeforeFileEnd).toBe(early);
    // The loader's own accounting: chunks in flight, one row range and its f32 copy, small vectors.
    expect(s.peakHeldBytes, `held ${s.peakHeldBytes} of a ${size}-byte file`).toBeLessThan(size / 8);
    expect(src.finished).toBe(1);
    expect(await engine.promptLogits(PROMPT, 'off')).toEqual(await (await load(files)).promptLogits(PROMPT, 'off'));
  });

  test('any tensor order: K/V rows before their layer norm (POP deep K/V waits for the gain), norms last, bf16', async () => {
    const files = tinyFiles({ dtype: 'BF16' });
    const reversed = editTensors(files, (ts) => [...ts].reverse());
    const names = readRawSafetensors(reversed.get('model.safetensors')!).map((t) => t.name);
    expect(names.indexOf('model.layers.1.self_attn.k_proj.weight')).toBeLessThan(names.indexOf('model.layers.1.input_layernorm.weight'));
    const a = await Engine.load(cpu(), chunkedSource(reversed, 1000, []), { contextWindow: 64, loadChunkBytes: 300 });
    const b = await load(files);
    for (const pop of ['off', 1] as const) expect(await a.promptLogits(PROMPT, pop)).toEqual(await b.promptLogits(PROMPT, pop));
  });

  test('a stream that ends early (size unknown): TRUNCATED_FILE with the bytes received; the file is cancelled, never finished', async () => {
    const files = tinyFiles();
    const size = files.get('model.safetensors')!.byteLength;
    for (const sized of [false, true]) {
      const src = chunkedSource(files, 4096, [], { cut: 1000, sized });
      const e = await caught(() => Engine.load(cpu(), src, { contextWindow: 64 }));
      expectPopError(e, TruncatedFileError, 'TRUNCATED_FILE', { file: 'model.safetensors', expectedBytes: size, actualBytes: size - 1000 });
      expect([src.finished, src.cancelled]).toEqual([0, 1]);
    }
  });
});

// Browser tests: the URL source on Vite's dev server (public/ served at /); the streamed load on WebGPU.
test('browser: urlSource on a missing folder rejects MODEL_FILE_MISSING; on stories260K it loads', async ({ harness }) => {
  // Vite may reload the page once (dependency re-optimization, a file edited meanwhile):
  // wait for the harness again and retry.
  const evaluate = async <R>(f: () => Promise<R>): Promise<R> => {
    try {
      return await harness.evaluate(f);
    } catch (e) {
      if (!/context was destroyed|navigat/i.test(String(e))) throw e;
      await harness.waitForFunction(() => (globalThis as any).__popReady === true, null, { timeout: 60_000 });
      return harness.evaluate(f);
    }
  };
  const r = await evaluate(async () => {
    const pop = (globalThis as any).pop;
    let missing: unknown = null;
    try {
      await pop.loadModelFiles(pop.urlSource('/models/does-not-exist'));
    } catch (e: any) {
      missing = { code: e.code, name: e.name, fields: e.fields, typed: e instanceof pop.errors.ModelFileMissingError, pop: e instanceof pop.errors.PopError };
    }
    const files = await pop.loadModelFiles(pop.urlSource('/models/stories260K'));
    const ck = await pop.loadCheckpoint(pop.urlSource('/models/stories260K/'));
    return {
      missing,
      config: files.config,
      hasTokenizer: files.tokenizerJson !== null,
      bos: files.generationConfig?.bos_token_id,
      ckFiles: ck.files,
      embed: ck.entry('model.embed_tokens.weight')?.shape,
    };
  });
  expect(r.missing).toEqual({ code: 'MODEL_FILE_MISSING', name: 'ModelFileMissingError', fields: { file: 'config.json', status: 404 }, typed: true, pop: true });
  expect(r.config).toMatchObject({ modelType: 'llama', hiddenSize: 64, numLayers: 5, vocabSize: 512 });
  expect(r.hasTokenizer).toBe(true);
  expect(r.bos).toBe(1);
  expect(r.ckFiles).toEqual(['model.safetensors']);
  expect(r.embed).toEqual([512, 64]);
});

test('browser: stories260K streamed in slow 16 KB chunks through the Cache API source: uploads before the last byte, stored once whole, read back from the cache; a short stream stores nothing and frees its GPU buffers', async ({ harness }) => {
  const r = await harness.evaluate(async () => {
    const pop = (globalThis as any).pop;
    const dir = '/models/stories260K/';
    const bytes = new Uint8Array(await (await fetch(`${dir}model.safetensors`)).arrayBuffer());
    let writes = 0, served = 0;
    const writesAtChunk: number[] = [];
    const proto = GPUQueue.prototype as any, orig = proto.writeBuffer;
    proto.writeBuffer = function (this: GPUQueue, ...a: unknown[]) {
      writes++;
      return orig.apply(this, a);
    };
    // A network: model.safetensors in 16 KB chunks 5 ms apart (the last `cut` bytes never come), the rest from Vite.
    const network = (cut: number) => async (url: string) => {
      const name = url.split('/').pop()!;
      if (name !== 'model.safetensors') return fetch(dir + name);
      served++;
      const body = bytes.subarray(0, bytes.byteLength - cut);
      let pos = 0;
      return new Response(new ReadableStream<Uint8Array>({
        async pull(c) {
          await new Promise((res) => setTimeout(res, 5));
          if (pos >= body.byteLength) return c.close();
          writesAtChunk.push(writes);
          c.enqueue(body.slice(pos, pos + 16384));
          pos += 16384;
        },
      }), { headers: { 'content-type': 'application/octet-stream' } });
    };
    const cache = await caches.open('pop-llm-models');
    const stored = async (id: string) => {
      const hit = await cache.match(`${id}/model.safetensors`);
      return hit ? (await hit.arrayBuffer()).byteLength : 0;
    };
    const gpu = await pop.acquireGpu();
    const ops = new pop.GpuOps(gpu, { prefill: 'regblock', decode: 'matvec' }, 64);
    const id = `https://hub.test/stories-stream-${Date.now()}`, bad = `${id}-short`;
    try {
      const w0 = writes;
      const src = pop.cachedSource(id, { fetch: network(0) });
      const e = await pop.Engine.load(ops, src, { contextWindow: 64, loadChunkBytes: 4096 });
      await src.markComplete();
      const streamed = { writesBeforeLastChunk: writesAtChunk[writesAtChunk.length - 1] - w0, chunks: writesAtChunk.length, stats: e.loadStats, ids: (await e.generate([1], { maxTokens: 12, ignoreEos: true })).ids };
      const ref = await pop.Engine.load(ops, pop.urlSource(dir), { contextWindow: 64 });
      const refIds = (await ref.generate([1], { maxTokens: 12, ignoreEos: true })).ids;
      const info = await pop.cachedModelInfo(id);
      const again = await pop.Engine.load(ops, pop.cachedSource(id, { fetch: network(0) }), { contextWindow: 64 });
      const cachedIds = (await again.generate([1], { maxTokens: 12, ignoreEos: true })).ids;
      for (const x of [e, ref, again]) x.unload();
      const before = ops.pool.bytesInUse;
      let code = '', fields: unknown = null;
      try {
        await pop.Engine.load(ops, pop.cachedSource(bad, { fetch: network(1000) }), { contextWindow: 64, loadChunkBytes: 4096 });
      } catch (x) {
        code = (x as any).code;
        fields = (x as any).fields;
      }
      const badInfo = await pop.cachedModelInfo(bad);
      return {
        size: bytes.byteLength, streamed, refIds, cachedIds, served, info: { complete: info?.complete, file: info?.files['model.safetensors'] }, storedBytes: await stored(id),
        short: { code, fields, leakedBytes: ops.pool.bytesInUse - before, storedBytes: await stored(bad), complete: badInfo?.complete ?? false, file: badInfo?.files['model.safetensors'] ?? null },
      };
    } finally {
      proto.writeBuffer = orig;
      await pop.deleteCachedModel(id);
      await pop.deleteCachedModel(bad);
    }
  });
  // Uploads began long before the last chunk (16 KB chunks 5 ms apart), and the loader never held the file.
  expect(r.streamed.chunks).toBeGreaterThan(40);
  expect(r.streamed.writesBeforeLastChunk).toBeGreaterThan(20);
  expect(r.streamed.stats.writesBeforeFileEnd).toBeGreaterThan(0.5 * r.streamed.stats.writes);
  expect(r.streamed.stats.peakHeldBytes).toBeLessThan(r.size / 8);
  expect(r.streamed.ids).toEqual(r.refIds);
  // Stored whole, marked complete, and the next load read it from the cache (the network served it once, then the short one).
  expect(r.info).toEqual({ complete: true, file: r.size });
  expect(r.storedBytes).toBe(r.size);
  expect(r.cachedIds).toEqual(r.refIds);
  expect(r.served).toBe(2);
  expect(r.short).toEqual({ code: 'TRUNCATED_FILE', fields: { file: 'model.safetensors', expectedBytes: r.size, actualBytes: r.size - 1000 }, leakedBytes: 0, storedBytes: 0, complete: false, file: null });
});
