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
// What is MLC's here: the config mapping, the record list, MLC's names and fused layouts
// (mlcLayout) and its q4 layout (packMlcQ4, dequantizeMlc); the weights go through the one
// weight path (src/model/weight_plan.ts) like a safetensors checkpoint's. Shards stream
// (src/model/stream.ts): each record is delivered as soon as its bytes are in.
import { MalformedFileError, MissingTensorError, ModelFileMissingError, ShapeMismatchError, UnsupportedDtypeError, UnsupportedModelTypeError, UnsupportedQuantizationError, InternalError } from '../errors.ts';
import type { Ops } from '../ops/ops.ts';
import { GROUP, quantLayout, type QuantInfo } from '../core/quant.ts';
import { kvDim, qDim, type ModelConfig } from './config.ts';
import type { FamilySpec, LayerRole } from './family.ts';
import type { BuildOptions, StreamOptions } from './load_options.ts';
import { halfToFloat } from '../core/float_bits.ts';
import { openModelFile, readJsonObject, type ModelSource } from './source.ts';
import { LoadAccount, ROW_CHUNK_BYTES, streamRecords, type LoadStats } from './stream.ts';
import { planWeights, WeightPlan, type LinearPacking, type PackedRows } from './weight_plan.ts';
import type { Weights } from './weights.ts';

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

/** Where one tensor the model reads (Hugging Face name) lies in an MLC stored tensor: rows [row0, row0 + rows). */
interface MlcPart {
  tensor: string;
  row0: number;
  rows: number;
}

/**
 * A tensor as MLC stores it: a linear `prefix` ([rows, cols]: `.q_weight` + `.q_scale` in q4
 * formats, `.weight` in q0) or a vector record. MLC fuses what HF keeps apart (c_attn /
 * qkv_proj = [q; k; v], gate_up_proj = [gate; up]): `parts` say which HF tensor each row range is.
 */
interface MlcStored {
  name: string;
  linear: boolean;
  rows: number;
  cols: number;
  parts: MlcPart[];
}

/** The MLC tensors that hold the HF-named tensors a family reads, from MLC's parameter names. */
function mlcLayout(c: ModelConfig, spec: FamilySpec, names: MlcNames): MlcStored[] {
  const L = c.numLayers, H = c.hiddenSize, Q = qDim(c), KV = kvDim(c), F = c.intermediateSize, V = c.vocabSize;
  const at = (pattern: string, l: number) => pattern.replace('{layer}', String(l));
  const out: MlcStored[] = [];
  const add = (name: string, linear: boolean, rows: number, cols: number, parts: [string | undefined, number, number][]) =>
    out.push({ name, linear, rows, cols, parts: parts.filter((x): x is [string, number, number] => !!x[0]).map(([tensor, row0, n]) => ({ tensor, row0, rows: n })) });
  const g = spec.globalTensors;
  add(names.embed, true, V, H, [[g.embed, 0, V]]);
  add(names.finalNorm, false, H, 1, [[g.finalNorm, 0, H]]);
  if (!c.tieWordEmbeddings) add(names.lmHead, true, V, H, [[g.lmHead, 0, V]]);
  for (let l = 0; l < L; l++) {
    const t = (role: LayerRole) => spec.layerTensors[role] && at(spec.layerTensors[role]!, l);
    add(at(names.qkv, l), true, Q + 2 * KV, H, [[t('q'), 0, Q], [t('k'), Q, KV], [t('v'), Q + KV, KV]]);
    if (c.attentionBias) add(`${at(names.qkv, l)}.bias`, false, Q + 2 * KV, 1, [[t('qBias'), 0, Q], [t('kBias'), Q, KV], [t('vBias'), Q + KV, KV]]);
    add(at(names.o, l), true, H, Q, [[t('o'), 0, H]]);
    add(at(names.gateUp, l), true, 2 * F, H, [[t('gate'), 0, F], [t('up'), F, F]]);
    add(at(names.down, l), true, H, F, [[t('down'), 0, H]]);
    add(at(names.inputNorm, l), false, H, 1, [[t('inputNorm'), 0, H]]);
    add(at(names.mlpNorm, l), false, H, 1, [[t('mlpNorm'), 0, H]]);
  }
  return out;
}

/**
 * MLC q4 linears on the device: packed rows gathered on the host (the records they come from are
 * whole anyway) and uploaded in our layout (packMlcQ4) once every row is in, or at finish when
 * they take column gains (POP's deep K/V: the gains come with the input norms).
 */
function mlcQ4Packing<T>(p: WeightPlan<T>): LinearPacking<T> {
  return {
    writer(label, rows, cols, gains) {
      const parts: { row0: number; part: HostLinear }[] = [];
      let got = 0, out: T | null = null;
      const upload = () => {
        parts.sort((a, b) => a.row0 - b.row0);
        const { packed, info } = packMlcQ4(parts.map((x) => x.part), gains);
        out = p.uploadPacked(label, packed, info);
        for (const { part } of parts.splice(0)) p.release(hostBytes(part));
      };
      return {
        write(row0, r) {
          // A copy: the rest of the record it came from need not stay.
          const part = { rows: r.rows, cols, words: r.words.slice(), scales: r.scales.slice(), data: null };
          p.hold(hostBytes(part));
          parts.push({ row0, part });
          if ((got += r.rows) === rows && !gains) upload();
        },
        finish() {
          if (got !== rows) throw new InternalError(`MLC linear ${label}: ${got} of ${rows} rows arrived`);
          if (!out) upload();
          return out!;
        },
      };
    },
  };
}

/**
 * Loads an MLC folder's weights while they download, through the one weight path
 * (src/model/weight_plan.ts): MLC's stored tensors are mapped onto the HF-named tensors the
 * family reads (mlcLayout) and checked against the record list before any shard is read
 * (MISSING_TENSOR, SHAPE_MISMATCH name MLC's records); shards stream record by record
 * (src/model/stream.ts) and each record's rows are delivered as soon as it is in (a q4 linear
 * once its words and scales both are): f32 rows (float records; q4 dequantized a row range at a
 * time for the embedding, which the gather reads as f32), or packed rows for the q4 linears,
 * uploaded as they are. A shard shorter than its records is TRUNCATED_FILE naming it. On failure
 * what was uploaded so far is freed.
 */
export async function streamMlcWeights<T>(ops: Ops<T>, c: ModelConfig, spec: FamilySpec, source: ModelSource, opts: BuildOptions, o: StreamOptions = {}): Promise<{ weights: Weights<T>; stats: LoadStats }> {
  const names = MLC_FAMILIES[c.modelType];
  if (!names) throw new UnsupportedModelTypeError(c.modelType, Object.keys(MLC_FAMILIES));
  const shards = await mlcRecordList(source, o.signal);
  const files = shards.map((s) => s.dataPath).join(', ');
  const records = new Map<string, MlcRecord & { file: string }>();
  for (const s of shards) for (const r of s.records) if (!records.has(r.name)) records.set(r.name, { ...r, file: s.dataPath });
  const record = (name: string, shape: number[]): MlcRecord & { file: string } => {
    const r = records.get(name);
    if (!r) throw new MissingTensorError(name, files);
    if (r.shape.length !== shape.length || r.shape.some((d, i) => d !== shape[i])) throw new ShapeMismatchError(name, shape, r.shape);
    return r;
  };
  const account = new LoadAccount();
  const p = new WeightPlan(ops, account);
  try {
    const layout = mlcLayout(c, spec, names);
    // The q4 formats keep every linear packed; q0 linears arrive as floats (stored as `opts` says;
    // MLC folders never took weightDtype f16).
    const q4 = layout.some((t) => t.linear && records.has(`${t.name}.q_weight`));
    const finish = planWeights(p, c, spec, { ...opts, half: false }, q4 ? mlcQ4Packing(p) : undefined);
    const needed = new Set(p.names());
    /** Each record a needed stored tensor reads, and that tensor (a linear's words and scales both point to it). */
    const wanted = new Map<string, { stored: MlcStored; role: 'words' | 'scales' | 'floats' }>();
    for (const t of layout) {
      t.parts = t.parts.filter((x) => needed.has(x.tensor));
      for (const x of t.parts) needed.delete(x.tensor);
      if (!t.parts.length) continue;
      if (t.linear && q4) {
        const G = groupsOf(t.cols);
        wanted.set(record(`${t.name}.q_weight`, [t.rows, G * 4]).name, { stored: t, role: 'words' });
        wanted.set(record(`${t.name}.q_scale`, [t.rows, G]).name, { stored: t, role: 'scales' });
      } else {
        wanted.set(record(t.linear ? `${t.name}.weight` : t.name, t.linear ? [t.rows, t.cols] : [t.rows]).name, { stored: t, role: 'floats' });
      }
    }
    const unmapped = [...needed][0];
    if (unmapped) throw new MissingTensorError(unmapped, `the MLC layout of ${c.modelType}`);

    /** q4 words or scales that came before their partner record. */
    const halves = new Map<MlcStored, { words?: Uint32Array; scales?: Float32Array; bytes: number }>();
    const deliver = (t: MlcStored, lin: HostLinear) => {
      for (const part of t.parts) {
        const rows = sliceRows(lin, part.row0, part.row0 + part.rows);
        const takes = p.takes(part.tensor);
        if (takes.packed) p.deliverPacked(part.tensor, 0, rows as HostLinear & PackedRows);
        if (!takes.rows) continue;
        const per = Math.max(1, Math.floor(ROW_CHUNK_BYTES / (t.cols * 4)));
        for (let r = 0; r < part.rows; r += per) p.deliver(part.tensor, r, dequantizeMlc(sliceRows(rows, r, Math.min(part.rows, r + per))));
      }
    };
    const arrived = (file: string, r: MlcRecord, bytes: Uint8Array) => {
      const { stored: t, role } = wanted.get(r.name)!;
      const tensor = { ...r, file, bytes };
      if (role === 'floats') {
        const v = mlcF32(tensor);
        return deliver(t, t.linear ? { rows: t.rows, cols: t.cols, words: null, scales: null, data: v } : { rows: t.rows, cols: 1, words: null, scales: null, data: v });
      }
      const h = halves.get(t) ?? { bytes: 0 };
      if (role === 'words') h.words = mlcU32(tensor);
      else h.scales = mlcF32(tensor);
      if (!h.words || !h.scales) {
        account.hold(bytes.byteLength);
        h.bytes += bytes.byteLength;
        halves.set(t, h);
        return;
      }
      halves.delete(t);
      account.release(h.bytes);
      deliver(t, { rows: t.rows, cols: t.cols, words: h.words, scales: h.scales, data: null });
    };

    let loadedBytes = 0;
    for (let i = 0; i < shards.length; i++) {
      const s = shards[i];
      const mine = s.records.filter((r) => records.get(r.name)!.file === s.dataPath && wanted.has(r.name));
      if (mine.length) {
        const need = Math.max(s.nbytes, ...s.records.map((r) => r.byteOffset + r.nbytes));
        const stream = (await openModelFile(source, s.dataPath, { signal: o.signal }))!;
        try {
          loadedBytes += await streamRecords(s.dataPath, stream, mine, need, (r, bytes) => arrived(s.dataPath, r, bytes), account, o.signal);
        } catch (e) {
          await stream.cancel(e);
          throw e;
        }
        await stream.finish();
      }
      o.onProgress?.({ file: s.dataPath, loadedFiles: i + 1, totalFiles: shards.length, loadedBytes });
    }
    const missing = p.missing();
    if (missing) throw new MissingTensorError(missing, files);
    return { weights: finish(), stats: account.stats };
  } catch (e) {
    p.discard();
    throw e;
  }
}
