// Loads MLC LLM / WebLLM prebuilt weight folders: mlc-chat-config.json (model_config keys
// ~ HF config.json keys), tensor-cache.json or ndarray-cache.json (shards of raw records),
// params_shard_*.bin. Formats q4f32_1 / q4f16_1 (int4 group-quantized, f32 / f16 scales) and
// q0f32 / q0f16 (unquantized). Families: qwen2 and llama.
//
// MLC's group quantization ("_1" = NK layout, python/mlc_llm/quantization/group_quantization.py
// and utils.py): a linear [out, in] is `q_weight` uint32 [out, ceil(in/32) * 4] (element k in
// word k/8 at bits 4 (k % 8), lowest first, zero-padded past `in`) plus `q_scale` [out, ceil(in/32)];
// a value is (q - 7) * scale, and MLC's quantizer writes q in 0..14 (round(w/s + 7) clamped
// to 2 * 7). That is our packed layout (src/core/quant.ts) word for word, scales included, so
// q_weight and q_scale are copied, not re-quantized:
//   - q in 0..14 everywhere (every real MLC checkpoint): our symmetric 'q4' with every nibble
//     + 1 (word + 0x11111111 never carries), w = (q + 1 - 8) s = (q - 7) s exactly;
//   - a nibble 15 somewhere (not MLC's quantizer): 'q4-asym' with m = fround(-7 s), within one
//     f32 rounding of MLC's value.
// Fused layouts come as MLC stores them: c_attn / qkv_proj is already [q; k; v] (+ bias),
// gate_up_proj is [gate; up]. Embeddings are quantized too: the gather reads them
// dequantized to f32, a tied LM head keeps the q4 copy. POP's deep K/V stack takes the K/V
// rows of each layer's packed qkv, in reverse layer order, with that layer's input-norm gain
// as column gains (src/model/weights.ts), so keep = L-1 stays exact.
// Shards stream (src/model/stream.ts): each record is handed over as soon as its bytes are in,
// and one task per weight uploads it once the records it needs have arrived.
import { MalformedFileError, MissingTensorError, ModelFileMissingError, ShapeMismatchError, UnsupportedDtypeError, UnsupportedModelTypeError, UnsupportedQuantizationError, InternalError } from '../errors.ts';
import type { Ops, RowUpload } from '../ops/ops.ts';
import { GROUP, quantLayout, type QuantInfo } from '../core/quant.ts';
import { kvDim, qDim, ropeTablesByLayer, type ModelConfig } from './config.ts';
import type { FamilySpec } from './family.ts';
import type { BuildOptions, StreamOptions } from './load_options.ts';
import { halfToFloat } from '../core/float_bits.ts';
import { openModelFile, readJsonObject, type ModelSource } from './source.ts';
import { LoadAccount, ROW_CHUNK_BYTES, streamRecords, type LoadStats } from './stream.ts';
import type { LayerWeights, Weights } from './weights.ts';

export const MLC_CONFIG = 'mlc-chat-config.json';
/** Newer MLC builds name the record list tensor-cache.json; WebLLM 0.2.79 reads ndarray-cache.json. */
export const MLC_CACHE_FILES = ['tensor-cache.json', 'ndarray-cache.json'] as const;

/** Formats this loader reads: bits of the weights (0: unquantized) and the dtype of scales, norms and biases. */
export const MLC_QUANTIZATIONS: Record<string, { bits: 0 | 4; dtype: 'float32' | 'float16' }> = {
  q4f32_1: { bits: 4, dtype: 'float32' },
  q4f16_1: { bits: 4, dtype: 'float16' },
  q0f32: { bits: 0, dtype: 'float32' },
  q0f16: { bits: 0, dtype: 'float16' },
};

/** MLC parameter names per model_type (`{layer}` is the block index); linears name a prefix. */
export interface MlcNames {
  qkv: string;
  o: string;
  gateUp: string;
  down: string;
  inputNorm: string;
  mlpNorm: string;
  embed: string;
  finalNorm: string;
  lmHead: string;
}

const LLAMA_NAMES: MlcNames = {
  qkv: 'model.layers.{layer}.self_attn.qkv_proj',
  o: 'model.layers.{layer}.self_attn.o_proj',
  gateUp: 'model.layers.{layer}.mlp.gate_up_proj',
  down: 'model.layers.{layer}.mlp.down_proj',
  inputNorm: 'model.layers.{layer}.input_layernorm.weight',
  mlpNorm: 'model.layers.{layer}.post_attention_layernorm.weight',
  embed: 'model.embed_tokens',
  finalNorm: 'model.norm.weight',
  lmHead: 'lm_head',
};

export const MLC_FAMILIES: Record<string, MlcNames> = {
  llama: LLAMA_NAMES,
  // Qwen2Attention in mlc_llm: c_attn = [q; k; v] with a bias.
  qwen2: { ...LLAMA_NAMES, qkv: 'model.layers.{layer}.self_attn.c_attn' },
};

/** What loadModelFiles keeps of an MLC folder. */
export interface MlcModelInfo {
  quantization: string;
  /** mlc-chat-config.json as read. */
  chatConfig: Record<string, any>;
  /** An HF-style config.json built from it, for the family spec. */
  rawConfig: Record<string, any>;
}

const isObject = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;

/**
 * Maps mlc-chat-config.json onto the HF config.json keys the family specs read:
 * model_config is HF's config minus renames (context_window_size -> max_position_embeddings,
 * llama's position_embedding_base -> rope_theta); BOS/EOS come from the top level.
 */
export function mlcModelInfo(chat: Record<string, any>): MlcModelInfo {
  const quantization = chat.quantization;
  if (typeof quantization !== 'string' || !(quantization in MLC_QUANTIZATIONS)) throw new UnsupportedQuantizationError(String(quantization), Object.keys(MLC_QUANTIZATIONS));
  const type = chat.model_type;
  if (typeof type !== 'string' || !MLC_FAMILIES[type]) throw new UnsupportedModelTypeError(String(type), Object.keys(MLC_FAMILIES));
  const mc = chat.model_config;
  if (!isObject(mc)) throw new MalformedFileError(MLC_CONFIG, 'no model_config object');
  const raw: Record<string, any> = { ...mc, model_type: type };
  delete raw.context_window_size;
  delete raw.position_embedding_base;
  raw.max_position_embeddings = chat.context_window_size ?? mc.context_window_size ?? mc.max_position_embeddings;
  raw.rope_theta = mc.rope_theta ?? mc.position_embedding_base;
  raw.vocab_size = mc.vocab_size ?? chat.vocab_size;
  raw.bos_token_id = chat.bos_token_id ?? mc.bos_token_id;
  raw.eos_token_id = chat.eos_token_id ?? mc.eos_token_id;
  const window = chat.sliding_window_size ?? mc.sliding_window_size ?? -1;
  if (window > 0) {
    if (type !== 'qwen2') throw new MalformedFileError(MLC_CONFIG, `sliding_window_size ${window} is not supported for ${type}`);
    Object.assign(raw, { use_sliding_window: true, sliding_window: window, max_window_layers: 0 });
  }
  if (!(Number.isInteger(raw.max_position_embeddings) && raw.max_position_embeddings > 0)) throw new MalformedFileError(MLC_CONFIG, `context_window_size must be a positive integer (got ${raw.max_position_embeddings})`);
  return { quantization, chatConfig: chat, rawConfig: raw };
}

/** One record of a shard: a tensor at [byteOffset, byteOffset + nbytes) of its shard file. */
export interface MlcRecord {
  name: string;
  shape: number[];
  dtype: string;
  /** 'raw', or 'f32-to-bf16' (float32 stored as bf16). */
  format: string;
  nbytes: number;
  byteOffset: number;
}

export interface MlcShard {
  dataPath: string;
  format: string;
  nbytes: number;
  records: MlcRecord[];
}

export interface MlcTensor extends MlcRecord {
  file: string;
  bytes: Uint8Array;
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, float16: 2, bfloat16: 2, uint32: 4 };

/** Parses and checks the record list (tensor-cache.json / ndarray-cache.json). */
export function parseMlcCache(file: string, json: Record<string, any>): MlcShard[] {
  const shards = json.records;
  if (!Array.isArray(shards)) throw new MalformedFileError(file, 'no records array');
  return shards.map((s: any, i: number) => {
    if (!isObject(s) || typeof s.dataPath !== 'string' || !isCount(s.nbytes) || !Array.isArray(s.records)) throw new MalformedFileError(file, `shard ${i} lacks dataPath, nbytes or records`);
    if (s.format !== undefined && s.format !== 'raw-shard') throw new MalformedFileError(file, `shard ${s.dataPath} has format '${s.format}' (expected raw-shard)`);
    const records = s.records.map((r: any) => {
      if (!isObject(r) || typeof r.name !== 'string' || typeof r.dtype !== 'string' || !Array.isArray(r.shape) || !r.shape.every(isCount) || !isCount(r.nbytes) || !isCount(r.byteOffset)) {
        throw new MalformedFileError(file, `a record of ${s.dataPath} lacks name, shape, dtype, nbytes or byteOffset`);
      }
      const format = r.format ?? 'raw';
      const width = format === 'f32-to-bf16' ? (r.dtype === 'float32' ? 2 : undefined) : format === 'raw' ? DTYPE_BYTES[r.dtype] : undefined;
      if (format !== 'raw' && format !== 'f32-to-bf16') throw new MalformedFileError(file, `record '${r.name}' has format '${format}'`);
      if (width === undefined) throw new UnsupportedDtypeError(r.name, format === 'raw' ? r.dtype : `${r.dtype} (${format})`);
      const elements = r.shape.reduce((a: number, b: number) => a * b, 1);
      if (r.nbytes !== elements * width) throw new MalformedFileError(file, `record '${r.name}' spans ${r.nbytes} bytes but shape [${r.shape}] of ${r.dtype} needs ${elements * width}`);
      if (r.byteOffset + r.nbytes > s.nbytes) throw new MalformedFileError(file, `record '${r.name}' ends at byte ${r.byteOffset + r.nbytes}, past its shard's ${s.nbytes}`);
      return { name: r.name, shape: r.shape, dtype: r.dtype, format, nbytes: r.nbytes, byteOffset: r.byteOffset } as MlcRecord;
    });
    return { dataPath: s.dataPath, format: s.format ?? 'raw-shard', nbytes: s.nbytes, records };
  });
}


/** Reads the record list (tensor-cache.json, else ndarray-cache.json). */
async function mlcRecordList(source: ModelSource, signal?: AbortSignal): Promise<MlcShard[]> {
  for (const name of MLC_CACHE_FILES) {
    const json = await readJsonObject(source, name, true, signal);
    if (json) return parseMlcCache(name, json);
  }
  throw new ModelFileMissingError('ndarray-cache.json');
}

/**
 * The records a build takes, each once, as promises resolved when its bytes arrive. Records no
 * one takes are skipped in the stream; a record's bytes count as held (LoadAccount) from
 * arrival until the task that took it is done.
 */
class RecordStore {
  private readonly list = new Map<string, MlcRecord & { file: string }>();
  private readonly taken = new Map<string, { resolve: (t: MlcTensor) => void; reject: (e: unknown) => void; bytes: number }>();
  private readonly arrived = new Set<string>();
  failure: unknown = null;

  constructor(shards: readonly MlcShard[], readonly files: string[], private readonly account: LoadAccount) {
    for (const s of shards) for (const r of s.records) if (!this.list.has(r.name)) this.list.set(r.name, { ...r, file: s.dataPath });
  }
  record(name: string): MlcRecord | undefined {
    return this.list.get(name);
  }
  take(name: string): Promise<MlcTensor> {
    if (this.taken.has(name)) throw new InternalError(`MLC record ${name} taken twice`);
    const p = new Promise<MlcTensor>((resolve, reject) => this.taken.set(name, { resolve, reject, bytes: 0 }));
    p.catch(() => {}); // a failed load reports its own error; a take whose task was never made must not be an unhandled rejection
    return p;
  }
  wanted(file: string, r: MlcRecord): boolean {
    return this.taken.has(r.name) && this.list.get(r.name)!.file === file;
  }
  put(file: string, r: MlcRecord, bytes: Uint8Array): void {
    const d = this.taken.get(r.name)!;
    this.account.hold((d.bytes = bytes.byteLength));
    this.arrived.add(r.name);
    d.resolve({ ...r, file, bytes });
  }
  /** The task that took these records is done with them. */
  release(names: readonly string[]): void {
    for (const n of names) {
      const d = this.taken.get(n);
      if (d) this.account.release(d.bytes), (d.bytes = 0);
    }
  }
  /** Every shard was read: a record still awaited never came (a record list that lies). */
  end(): void {
    for (const [name, d] of this.taken) if (!this.arrived.has(name)) d.reject(new MissingTensorError(name, this.files.join(', ')));
  }
  /** Stops every task still waiting (a failed stream or task). */
  fail(e: unknown): void {
    this.failure ??= e;
    for (const d of this.taken.values()) d.reject(this.failure);
  }
}

/** A record's bytes at a 4-byte aligned offset (records after an odd-length f16 tensor are not). */
function aligned(t: MlcTensor): Uint8Array {
  return t.bytes.byteOffset % 4 ? t.bytes.slice() : t.bytes;
}

export function mlcU32(t: MlcTensor): Uint32Array {
  if (t.dtype !== 'uint32' || t.format !== 'raw') throw new UnsupportedDtypeError(t.name, t.dtype);
  const b = aligned(t);
  return new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

/** float32 / float16 / bfloat16 (raw or f32-to-bf16) as f32. */
export function mlcF32(t: MlcTensor): Float32Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.dtype === 'float32' && t.format === 'raw') {
    const b = aligned(t);
    return new Float32Array(b.buffer, b.byteOffset, n);
  }
  const bf16 = t.dtype === 'bfloat16' || t.format === 'f32-to-bf16';
  if (!bf16 && t.dtype !== 'float16') throw new UnsupportedDtypeError(t.name, t.dtype);
  const dv = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const out = new Float32Array(n);
  if (bf16) {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u[i] = dv.getUint16(2 * i, true) << 16;
  } else {
    for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
  }
  return out;
}

/**
 * A linear weight [rows, cols] on the host: MLC's q4 words and scales (rows of
 * 4 * ceil(cols/32) words and ceil(cols/32) scales), or f32 values (q0 formats).
 */
export interface HostLinear {
  rows: number;
  cols: number;
  words: Uint32Array | null;
  scales: Float32Array | null;
  data: Float32Array | null;
}

const groupsOf = (cols: number) => Math.ceil(cols / GROUP);
const hostBytes = (w: HostLinear) => 4 * ((w.words?.length ?? 0) + (w.scales?.length ?? 0) + (w.data?.length ?? 0));

export function sliceRows(w: HostLinear, r0: number, r1: number): HostLinear {
  const G = groupsOf(w.cols);
  return {
    rows: r1 - r0, cols: w.cols,
    words: w.words ? w.words.subarray(r0 * G * 4, r1 * G * 4) : null,
    scales: w.scales ? w.scales.subarray(r0 * G, r1 * G) : null,
    data: w.data ? w.data.subarray(r0 * w.cols, r1 * w.cols) : null,
  };
}

/** True when some nibble is 15 (outside MLC's 0..14). */
function hasNibble15(words: Uint32Array): boolean {
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w & (w >>> 1) & (w >>> 2) & (w >>> 3) & 0x11111111) return true;
  }
  return false;
}

/**
 * Packs MLC q4 linears (stacked by rows) into our layout: symmetric 'q4' with every nibble
 * + 1 when all are <= 14 (exact), else 'q4-asym' with m = -7 s. Optional column gains.
 */
export function packMlcQ4(parts: readonly HostLinear[], gains?: { values: Float32Array; rows: number }): { packed: Uint32Array; info: QuantInfo } {
  const cols = parts[0].cols, rows = parts.reduce((a, p) => a + p.rows, 0);
  if (parts.some((p) => !p.words || !p.scales || p.cols !== cols)) throw new InternalError('packMlcQ4: parts must be q4 linears of the same width');
  const sym = !parts.some((p) => hasNibble15(p.words!));
  const info = quantLayout(sym ? 'q4' : 'q4-asym', rows, cols, gains?.rows ?? 0);
  const packed = new Uint32Array(info.words);
  const f = new Float32Array(packed.buffer);
  let r = 0;
  for (const p of parts) {
    const w0 = r * info.rowWords, s0 = r * info.groups;
    if (sym) for (let i = 0; i < p.words!.length; i++) packed[w0 + i] = p.words![i] + 0x11111111;
    else packed.set(p.words!, w0);
    f.set(p.scales!, info.scalesOffset + s0);
    if (!sym) for (let i = 0; i < p.scales!.length; i++) f[info.minsOffset + s0 + i] = -7 * p.scales![i];
    r += p.rows;
  }
  if (gains) f.set(gains.values, info.gainsOffset);
  return { packed, info };
}

/** MLC's value of every weight: fround((q - 7) * s), [rows, cols]. */
export function dequantizeMlc(w: HostLinear): Float32Array {
  if (w.data) return w.data;
  const G = groupsOf(w.cols), RW = G * 4, words = w.words!, scales = w.scales!;
  const out = new Float32Array(w.rows * w.cols);
  for (let n = 0; n < w.rows; n++) {
    for (let k = 0; k < w.cols; k++) {
      const q = (words[n * RW + (k >>> 3)] >>> (4 * (k & 7))) & 15;
      out[n * w.cols + k] = (q - 7) * scales[n * G + (k >>> 5)];
    }
  }
  return out;
}

function concatRows(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), (o += p.length);
  return out;
}

/**
 * Loads an MLC folder's weights while they download: shard by shard, each record as soon as its
 * bytes are in (src/model/stream.ts), and every weight uploaded once the records it needs
 * have arrived, into the same roles and fused layouts as the HF loader. q4 records are uploaded
 * as they are (never a whole shard on the host; the embedding is dequantized to f32 by row
 * ranges). A shard shorter than its records is TRUNCATED_FILE naming it. On failure what was
 * uploaded so far is freed.
 */
export async function streamMlcWeights<T>(ops: Ops<T>, c: ModelConfig, spec: FamilySpec, source: ModelSource, opts: BuildOptions, o: StreamOptions = {}): Promise<{ weights: Weights<T>; stats: LoadStats }> {
  const shards = await mlcRecordList(source, o.signal);
  const account = new LoadAccount();
  const store = new RecordStore(shards, shards.map((s) => s.dataPath), account);
  const uploaded: T[] = [];
  const writers = new Set<RowUpload<T>>();
  const track = (t: T) => (uploaded.push(t), t);
  const tracking: Ops<T> = Object.create(ops, {
    upload: { value: (...a: Parameters<Ops<T>['upload']>) => track(ops.upload(...a)) },
    uploadPacked: { value: (...a: Parameters<Ops<T>['uploadPacked']>) => track(ops.uploadPacked(...a)) },
    uploadRows: { value: (...a: Parameters<Ops<T>['uploadRows']>): RowUpload<T> => {
      const w = ops.uploadRows(...a);
      writers.add(w);
      return { write: (r, d) => (w.write(r, d), account.wrote()), finish: () => (writers.delete(w), track(w.finish())), discard: () => (writers.delete(w), w.discard()) };
    } },
  });
  let plan: { tasks: Promise<unknown>[]; assemble: () => Weights<T> } | null = null;
  try {
    plan = planMlc(tracking, c, spec, store, opts, account);
    let loadedBytes = 0;
    for (let i = 0; i < shards.length; i++) {
      const s = shards[i];
      const wanted = s.records.filter((r) => store.wanted(s.dataPath, r));
      if (wanted.length) {
        const need = Math.max(s.nbytes, ...s.records.map((r) => r.byteOffset + r.nbytes));
        const stream = (await openModelFile(source, s.dataPath, { signal: o.signal }))!;
        try {
          loadedBytes += await streamRecords(s.dataPath, stream, wanted, need, (r, bytes) => {
            if (store.failure) throw store.failure;
            store.put(s.dataPath, r, bytes);
          }, account, o.signal);
          if (store.failure) throw store.failure;
        } catch (e) {
          await stream.cancel(e);
          throw e;
        }
        await stream.finish();
      }
      o.onProgress?.({ file: s.dataPath, loadedFiles: i + 1, totalFiles: shards.length, loadedBytes });
    }
    store.end();
    await Promise.all(plan.tasks);
    return { weights: plan.assemble(), stats: account.stats };
  } catch (e) {
    store.fail(e);
    if (plan) await Promise.allSettled(plan.tasks); // nothing uploads after the clean-up
    for (const w of writers) w.discard();
    for (const t of uploaded) ops.free(t);
    throw e;
  }
}

/**
 * Declares the build: which records each weight needs (checked against the record list now:
 * MISSING_TENSOR, SHAPE_MISMATCH before any shard is read) and a task per weight that uploads
 * it once they have arrived. `assemble` gives the Weights after every task is done.
 */
function planMlc<T>(ops: Ops<T>, c: ModelConfig, spec: FamilySpec, store: RecordStore, opts: BuildOptions, account: LoadAccount): { tasks: Promise<unknown>[]; assemble: () => Weights<T> } {
  const names = MLC_FAMILIES[c.modelType];
  if (!names) throw new UnsupportedModelTypeError(c.modelType, Object.keys(MLC_FAMILIES));
  const L = c.numLayers, H = c.hiddenSize, Q = qDim(c), KV = kvDim(c), F = c.intermediateSize;
  const files = store.files.join(', ');
  const at = (pattern: string, l: number) => pattern.replace('{layer}', String(l));
  let scope: string[] = [];
  const tensor = (name: string, shape: number[]): Promise<MlcTensor> => {
    const r = store.record(name);
    if (!r) throw new MissingTensorError(name, files);
    if (r.shape.length !== shape.length || r.shape.some((d, i) => d !== shape[i])) throw new ShapeMismatchError(name, shape, r.shape);
    scope.push(name);
    return store.take(name);
  };
  const vector = (name: string, n: number) => tensor(name, [n]).then(mlcF32);
  const gainOf = (g: Float32Array) => (spec.normGainOffset ? g.map((v) => v + spec.normGainOffset) : g);
  const linear = (prefix: string, rows: number, cols: number): Promise<HostLinear> => {
    if (store.record(`${prefix}.q_weight`) || !store.record(`${prefix}.weight`)) {
      const G = groupsOf(cols);
      const w = tensor(`${prefix}.q_weight`, [rows, G * 4]), s = tensor(`${prefix}.q_scale`, [rows, G]);
      return Promise.all([w, s]).then(([w, s]) => ({ rows, cols, words: mlcU32(w), scales: mlcF32(s), data: null }));
    }
    return tensor(`${prefix}.weight`, [rows, cols]).then((t) => ({ rows, cols, words: null, scales: null, data: mlcF32(t) }));
  };
  const tasks: Promise<unknown>[] = [];
  /** Any failure stops the stream and every other task (and is never an unhandled rejection). */
  const handled = <R>(p: Promise<R>): Promise<R> => (p.catch((e) => store.fail(e)), p);
  /** A task: its inputs (records taken now, in build order), then the upload; their bytes are released after. */
  const task = <R>(inputs: () => Promise<R>, then: (v: R) => void): Promise<R> => {
    scope = [];
    const p = inputs();
    const taken = scope;
    tasks.push(handled(p.then((v) => (then(v), store.release(taken)))));
    return p;
  };
  // Packed q4 is uploaded as is; unquantized (q0 formats) goes the f32 way, or is quantized on
  // load when EngineOptions.quantization asks for it. Gains: one [cols] vector per gains.rows rows.
  const put = (label: string, parts: HostLinear[], gains?: { values: Float32Array; rows: number }): T => {
    if (parts.every((p) => p.words)) {
      const { packed, info } = packMlcQ4(parts, gains);
      return ops.uploadPacked(label, packed, info);
    }
    const cols = parts[0].cols;
    const data = concatRows(parts.map(dequantizeMlc));
    if (opts.quant) return ops.upload(label, data, { quant: { scheme: opts.quant, cols, gains } });
    if (gains) for (let i = 0; i < data.length; i++) data[i] *= gains.values[Math.floor(i / cols / gains.rows) * cols + (i % cols)];
    return ops.upload(label, data, { cols });
  };
  // The embedding as f32 rows (the gather reads f32), dequantized a row range at a time;
  // `cols`: a table larger than one binding is stored as row parts (src/ops/split.ts).
  const embedRows = (w: HostLinear): T => {
    const out = ops.uploadRows('embed', w.rows, { cols: H });
    const per = Math.max(1, Math.floor(ROW_CHUNK_BYTES / (H * 4)));
    for (let r = 0; r < w.rows; r += per) out.write(r, dequantizeMlc(sliceRows(w, r, Math.min(w.rows, r + per))));
    return out.finish();
  };

  let embed!: T, lmHead!: T, finalNorm!: T;
  task(() => linear(names.embed, c.vocabSize, H), (w) => {
    embed = embedRows(w);
    if (!c.tieWordEmbeddings) return;
    if (w.words) lmHead = put('lm_head', [w]);
    else lmHead = opts.quant && opts.quantLmHead ? ops.upload('lm_head', w.data!, { quant: { scheme: opts.quant, cols: H } }) : embed;
  });
  task(() => vector(names.finalNorm, H), (g) => (finalNorm = ops.upload('final_norm', gainOf(g))));
  if (!c.tieWordEmbeddings) task(() => linear(names.lmHead, c.vocabSize, H), (w) => (lmHead = put('lm_head', [w])));

  const ropeFor = ropeTablesByLayer(c, opts.positions, (label, table) => ops.upload(label, table));
  const deep = opts.pop && L > 1;
  /** Layer l's contribution to POP's deep K/V stack: its [K; V] rows (a copy: the rest of qkv goes), norm gain and bias. */
  const deepParts: Promise<{ l: number; part: HostLinear; gain: Float32Array; bias: Float32Array | null }>[] = [];
  const layers: LayerWeights<T>[] = [];
  for (let l = 0; l < L; l++) {
    const name = (s: string) => `L${l}.${s}`;
    const layer = { qkvBias: null, qNorm: null, kNorm: null, attnOutNorm: null, mlpOutNorm: null, rope: ropeFor(l) } as unknown as LayerWeights<T>;
    layers.push(layer);
    const toDeep = deep && l >= 1;
    const qkv = task(() => linear(at(names.qkv, l), Q + 2 * KV, H), (w) => (layer.qkv = put(name('qkv'), [w])));
    const bias = c.attentionBias ? task(() => vector(`${at(names.qkv, l)}.bias`, Q + 2 * KV), (b) => (layer.qkvBias = ops.upload(name('qkv_bias'), b))) : Promise.resolve(null);
    const gain = task(() => vector(at(names.inputNorm, l), H).then(gainOf), (g) => (layer.inputNorm = ops.upload(name('input_norm'), g)));
    if (toDeep) deepParts.push(handled(Promise.all([qkv, gain, bias]).then(([w, gain, bias]) => {
      const s = sliceRows(w, Q, Q + 2 * KV);
      const part = { ...s, words: s.words?.slice() ?? null, scales: s.scales?.slice() ?? null, data: s.data?.slice() ?? null };
      account.hold(hostBytes(part));
      return { l, part, gain, bias: bias ? bias.slice(Q, Q + 2 * KV) : null };
    })));
    task(() => linear(at(names.o, l), H, Q), (w) => (layer.o = put(name('o'), [w])));
    task(() => vector(at(names.mlpNorm, l), H), (g) => (layer.mlpNorm = ops.upload(name('mlp_norm'), gainOf(g))));
    task(() => linear(at(names.gateUp, l), 2 * F, H), (w) => (layer.gateUp = put(name('gate_up'), [w])));
    task(() => linear(at(names.down, l), H, F), (w) => (layer.down = put(name('down'), [w])));
  }
  let deepKv: T | null = null, deepKvBias: T | null = null;
  if (deep) {
    tasks.push(handled(Promise.all(deepParts).then((all) => {
      // Block j = L-1-l holds layer l's [K; V] rows (see Weights.deepKv).
      const blocks: HostLinear[] = [];
      const gains = new Float32Array((L - 1) * H);
      const biases = c.attentionBias ? new Float32Array((L - 1) * 2 * KV) : null;
      for (const { l, part, gain, bias } of all) {
        const j = L - 1 - l;
        blocks[j] = part;
        gains.set(gain, j * H);
        if (biases && bias) biases.set(bias, j * 2 * KV);
      }
      deepKv = put('pop.deep_kv', blocks, { values: gains, rows: 2 * KV });
      if (biases) deepKvBias = ops.upload('pop.deep_kv_bias', biases);
      for (const b of blocks) account.release(hostBytes(b));
    })));
  }
  return { tasks, assemble: () => ({ embed, finalNorm, lmHead, layers, deepKv, deepKvBias }) };
}
