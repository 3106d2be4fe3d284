// NaN / Inf in the weights are caught on load, while they stream (src/model/weight_check.ts):
// MALFORMED_WEIGHTS names the tensor (as the file stores it), the file, the NaN and Inf counts
// of the row range and the first bad element's index in the whole tensor. F32, BF16 and MLC
// records; row ranges (the index is the tensor's, not the chunk's); `checkWeights: false`
// skips the scan. In Node on the CPU ops.
import { test, expect } from './fixtures.ts';
import { MalformedWeightsError } from '../src/errors.ts';
import { Engine } from '../src/engine/engine.ts';
import { memorySource } from '../src/model/source.ts';
import { mlcChatConfig, writeMlcModel } from '../src/model/mlc_writer.ts';
import { scaleConfig } from '../src/model/random_model.ts';
import { CpuOps } from '../src/reference/cpu_ops.ts';
import { caught, expectPopError } from './fixtures/expect_error.ts';
import { editTensors, readRawSafetensors, storiesFiles, tinyFiles, type RawTensor } from './fixtures/model_files.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './fixtures/model_files.ts';

const load = (files: Map<string, Uint8Array>, o: { checkWeights?: boolean; loadChunkBytes?: number } = {}) => Engine.load(new CpuOps(), memorySource(files), { contextWindow: 64, ...o });

/** A copy of tensor `name` with `set` applied to its f32 values. */
function poke(name: string, set: (v: Float32Array) => void) {
  return (ts: RawTensor[]) => ts.map((t) => {
    if (t.name !== name) return t;
    const data = t.data.slice();
    set(new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4));
    return { ...t, data };
  });
}

test('a norm of NaNs (stories260K, F32): MALFORMED_WEIGHTS naming the tensor and file, 64 NaN from element 0', async () => {
  const files = editTensors(storiesFiles(), poke('model.norm.weight', (v) => v.fill(NaN)));
  const e = await caught(() => load(files));
  expectPopError(e, MalformedWeightsError, 'MALFORMED_WEIGHTS', { tensor: 'model.norm.weight', file: 'model.safetensors', nan: 64, inf: 0, firstIndex: 0 });
  expect(e.message).toContain('model.norm.weight');
});

test('64 Infs in one projection: MALFORMED_WEIGHTS with the count and the first index; the clean model loads', async () => {
  const name = 'model.layers.3.mlp.down_proj.weight';
  const files = editTensors(storiesFiles(), poke(name, (v) => v.fill(Infinity, 1000, 1032).fill(-Infinity, 1032, 1064)));
  expectPopError(await caught(() => load(files)), MalformedWeightsError, 'MALFORMED_WEIGHTS', { tensor: name, nan: 0, inf: 64, firstIndex: 1000 });
  const clean = await load(storiesFiles());
  expect((await clean.generate([1, 403, 407], { maxTokens: 4, ignoreEos: true })).ids).toHaveLength(4);
  // The scan saw every value of the checkpoint once (stories260K: every tensor is read).
  const values = readRawSafetensors(storiesFiles().get('model.safetensors')!).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  expect(clean.loadStats!.checkedValues).toBe(values);
  expect(clean.loadStats!.checkMs).toBeGreaterThanOrEqual(0);
});

test('BF16 in small row ranges: the index counts from the tensor start, not the range', async () => {
  const files = tinyFiles({ dtype: 'BF16' });
  const name = 'model.embed_tokens.weight'; // [256, 64]
  const at = 200 * 64 + 5;
  const bad = editTensors(files, (ts) => ts.map((t) => {
    if (t.name !== name) return t;
    const data = t.data.slice();
    new Uint16Array(data.buffer)[at] = 0x7fc0; // a bf16 NaN
    return { ...t, data };
  }));
  // 1 KiB ranges: 8 rows of 64 bf16 values each; row 200 is in the 26th range.
  const e = await caught(() => load(bad, { loadChunkBytes: 1024 }));
  expectPopError(e, MalformedWeightsError, 'MALFORMED_WEIGHTS', { tensor: name, nan: 1, inf: 0, firstIndex: at });
});

test('checkWeights: false skips the scan (a trusted source): the NaN model loads', async () => {
  const files = editTensors(storiesFiles(), poke('model.norm.weight', (v) => v.fill(NaN)));
  const engine = await load(files, { checkWeights: false });
  expect(engine.loadStats!.checkedValues).toBe(0);
  const logits = await engine.promptLogits([1, 403, 407], 'off');
  expect(Number.isNaN(logits[0])).toBe(true); // what the check exists to prevent
});

test('MLC q4f32_1: a NaN group scale in a shard: MALFORMED_WEIGHTS naming the record and its shard', async () => {
  const qwen = JSON.parse(readFileSync(join(REPO, 'configs/Qwen__Qwen2.5-0.5B-Instruct/config.json'), 'utf8'));
  const hf = scaleConfig(qwen, { layers: 2, hidden: 64, heads: 4, kvHeads: 2, inter: 128, vocab: 300, maxPositions: 128 });
  const files = writeMlcModel(mlcChatConfig(hf, 'q4f32_1'), { seed: 3, shardBytes: 20_000 });
  const cache = JSON.parse(new TextDecoder().decode(files.get('ndarray-cache.json')!));
  const name = 'model.layers.1.mlp.down_proj.q_scale';
  const shard = cache.records.find((s: any) => s.records.some((r: any) => r.name === name));
  const rec = shard.records.find((r: any) => r.name === name);
  const bytes = files.get(shard.dataPath)!.slice();
  new DataView(bytes.buffer).setFloat32(rec.byteOffset + 4 * 3, NaN, true);
  files.set(shard.dataPath, bytes);
  const e = await caught(() => Engine.load(new CpuOps(), memorySource(files), { contextWindow: 64 }));
  expectPopError(e, MalformedWeightsError, 'MALFORMED_WEIGHTS', { tensor: name, file: shard.dataPath, nan: 1, inf: 0, firstIndex: 3 });
});
