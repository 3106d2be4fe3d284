// Loads MLC LLM / WebLLM prebuilt weight folders: mlc-chat-config.json (model_config keys
// ~ HF config.json keys), tensor-cache.json or ndarray-cache.json (shards of raw records),
// params_shard_*.bin. Formats q4f32_1 / q4f16_1 (int4 group-quantized, f32 / f16 scales) and
// q0f32 / q0f16 (unquantized). Families: qwen2 and llama.
//
// MLC's group quantization ("_1" = NK layout, python/mlc_llm/quantization/group_quantization.py
// and utils.py): a linear [out, in] is `q_weight` uint32 [out, ceil(in/32) * 4] (element k in
// word k/8 at bits 4 (k % 8), lowest first, zero-padded past `in`) plus `q_scale` [out, ceil(in/32)];
// a value is (q - 7) * scale, and MLC's quantizer writes q in 0..14 (round(w/s + 7) clamped
// to 2 * 7). That is our packed layout (src/ops/quant.ts) word for word, scales included, so
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
import {
  MalformedFileError, MissingTensorError, ModelFileMissingError, ShapeMismatchError, TruncatedFileError, UnsupportedDtypeError,
  UnsupportedModelTypeError, UnsupportedQuantizationError,
} from '../errors.ts';
import type { Ops } from '../ops/ops.ts';
import { GROUP, quantLayout, type QuantInfo } from '../ops/quant.ts';
import { kvDim, qDim, ropeTable, type ModelConfig } from './config.ts';
import type { FamilySpec } from './family.ts';
import type { BuildOptions, LoadProgress } from './loader.ts';
import { halfToFloat } from './safetensors.ts';
import { readJsonObject, type ModelSource } from './source.ts';
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

/** Host-side tensors of an MLC folder, found across its shards. */
export interface MlcCheckpoint {
  tensors: Map<string, MlcTensor>;
  files: string[];
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


/** Fetches the record list and every shard; a shard shorter than its records is TRUNCATED_FILE naming it. */
export async function loadMlcCheckpoint(source: ModelSource, onProgress?: (p: LoadProgress) => void, signal?: AbortSignal): Promise<MlcCheckpoint> {
  let index: string | null = null;
  let json: Record<string, any> | null = null;
  for (const name of MLC_CACHE_FILES) {
    json = await readJsonObject(source, name, true, signal);
    if (json) {
      index = name;
      break;
    }
  }
  if (!json || !index) throw new ModelFileMissingError('ndarray-cache.json');
  const shards = parseMlcCache(index, json);
  const tensors = new Map<string, MlcTensor>();
  let loadedBytes = 0;
  for (let i = 0; i < shards.length; i++) {
    const s = shards[i];
    const buf = (await source.fetchFile(s.dataPath, { signal }))!;
    const bytes = new Uint8Array(buf);
    const need = Math.max(s.nbytes, ...s.records.map((r) => r.byteOffset + r.nbytes));
    if (bytes.byteLength < need) throw new TruncatedFileError(s.dataPath, need, bytes.byteLength);
    for (const r of s.records) tensors.set(r.name, { ...r, file: s.dataPath, bytes: bytes.subarray(r.byteOffset, r.byteOffset + r.nbytes) });
    loadedBytes += bytes.byteLength;
    onProgress?.({ file: s.dataPath, loadedFiles: i + 1, totalFiles: shards.length, loadedBytes });
  }
  return { tensors, files: shards.map((s) => s.dataPath) };
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
  if (parts.some((p) => !p.words || !p.scales || p.cols !== cols)) throw new Error('packMlcQ4: parts must be q4 linears of the same width');
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
 * Checks, maps and uploads an MLC checkpoint into the Weights the one forward reads (the same
 * roles and fused layouts as buildWeights). On failure what was uploaded so far is freed.
 */
export function buildMlcWeights<T>(ops: Ops<T>, c: ModelConfig, spec: FamilySpec, ck: MlcCheckpoint, opts: BuildOptions): Weights<T> {
  const uploaded: T[] = [];
  const track = (t: T) => (uploaded.push(t), t);
  const tracking: Ops<T> = Object.create(ops, {
    upload: { value: (...a: Parameters<Ops<T>['upload']>) => track(ops.upload(...a)) },
    uploadPacked: { value: (...a: Parameters<Ops<T>['uploadPacked']>) => track(ops.uploadPacked(...a)) },
  });
  try {
    return buildOn(tracking, c, spec, ck, opts);
  } catch (e) {
    for (const t of uploaded) ops.free(t);
    throw e;
  }
}

function buildOn<T>(ops: Ops<T>, c: ModelConfig, spec: FamilySpec, ck: MlcCheckpoint, opts: BuildOptions): Weights<T> {
  const names = MLC_FAMILIES[c.modelType];
  if (!names) throw new UnsupportedModelTypeError(c.modelType, Object.keys(MLC_FAMILIES));
  const L = c.numLayers, H = c.hiddenSize, Q = qDim(c), KV = kvDim(c), F = c.intermediateSize;
  const files = ck.files.join(', ');
  const at = (pattern: string, l: number) => pattern.replace('{layer}', String(l));
  const tensor = (name: string, shape: number[]): MlcTensor => {
    const t = ck.tensors.get(name);
    if (!t) throw new MissingTensorError(name, files);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) throw new ShapeMismatchError(name, shape, t.shape);
    return t;
  };
  const vector = (name: string, n: number) => mlcF32(tensor(name, [n]));
  const gainOf = (g: Float32Array) => (spec.normGainOffset ? g.map((v) => v + spec.normGainOffset) : g);
  const linear = (prefix: string, rows: number, cols: number): HostLinear => {
    if (ck.tensors.has(`${prefix}.q_weight`) || !ck.tensors.has(`${prefix}.weight`)) {
      const G = groupsOf(cols);
      const words = mlcU32(tensor(`${prefix}.q_weight`, [rows, G * 4]));
      return { rows, cols, words, scales: mlcF32(tensor(`${prefix}.q_scale`, [rows, G])), data: null };
    }
    return { rows, cols, words: null, scales: null, data: mlcF32(tensor(`${prefix}.weight`, [rows, cols])) };
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

  const embedW = linear(names.embed, c.vocabSize, H);
  // `cols`: a table larger than one binding is stored as row parts (src/ops/split.ts).
  const embed = ops.upload('embed', dequantizeMlc(embedW), { cols: H });
  const finalNorm = ops.upload('final_norm', gainOf(vector(names.finalNorm, H)));
  let lmHead: T;
  if (!c.tieWordEmbeddings) lmHead = put('lm_head', [linear(names.lmHead, c.vocabSize, H)]);
  else if (embedW.words) lmHead = put('lm_head', [embedW]);
  else lmHead = opts.quant && opts.quantLmHead ? ops.upload('lm_head', embedW.data!, { quant: { scheme: opts.quant, cols: H } }) : embed;

  const ropeTables = new Map<string, T>();
  const ropeFor = (l: number) => {
    const key = JSON.stringify(c.rope[l]);
    let t = ropeTables.get(key);
    if (!t) ropeTables.set(key, (t = ops.upload(`rope.${ropeTables.size}`, ropeTable(c.rope[l], c.headDim, opts.positions))));
    return t;
  };
  const deep = opts.pop && L > 1;
  const deepParts: HostLinear[] = [];
  const deepGains = deep ? new Float32Array((L - 1) * H) : null;
  const deepBias = deep && c.attentionBias ? new Float32Array((L - 1) * 2 * KV) : null;
  const layers: LayerWeights<T>[] = [];
  for (let l = 0; l < L; l++) {
    const name = (s: string) => `L${l}.${s}`;
    const qkv = linear(at(names.qkv, l), Q + 2 * KV, H);
    const bias = c.attentionBias ? vector(`${at(names.qkv, l)}.bias`, Q + 2 * KV) : null;
    const inputNorm = gainOf(vector(at(names.inputNorm, l), H));
    layers.push({
      inputNorm: ops.upload(name('input_norm'), inputNorm),
      qkv: put(name('qkv'), [qkv]),
      qkvBias: bias ? ops.upload(name('qkv_bias'), bias) : null,
      qNorm: null,
      kNorm: null,
      o: put(name('o'), [linear(at(names.o, l), H, Q)]),
      attnOutNorm: null,
      mlpNorm: ops.upload(name('mlp_norm'), gainOf(vector(at(names.mlpNorm, l), H))),
      gateUp: put(name('gate_up'), [linear(at(names.gateUp, l), 2 * F, H)]),
      down: put(name('down'), [linear(at(names.down, l), H, F)]),
      mlpOutNorm: null,
      rope: ropeFor(l),
    });
    if (deep && l >= 1) {
      // Block j = L-1-l holds layer l's [K; V] rows (see Weights.deepKv).
      const j = L - 1 - l;
      deepParts[j] = sliceRows(qkv, Q, Q + 2 * KV);
      deepGains!.set(inputNorm, j * H);
      if (deepBias && bias) deepBias.set(bias.subarray(Q, Q + 2 * KV), j * 2 * KV);
    }
  }
  return {
    embed, finalNorm, lmHead, layers,
    deepKv: deep ? put('pop.deep_kv', deepParts, { values: deepGains!, rows: 2 * KV }) : null,
    deepKvBias: deepBias ? ops.upload('pop.deep_kv_bias', deepBias) : null,
  };
}
