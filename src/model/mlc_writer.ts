// Random-weight model folders in MLC / WebLLM layout (src/model/mlc.ts): mlc-chat-config.json,
// ndarray-cache.json and tensor-cache.json (the same record list), params_shard_*.bin. The
// parameter list (names, shapes, dtypes, in load order) is what mlc_llm compiles for the
// config; at Qwen2.5-0.5B's shape it is the wasm_metadata.json list of WebLLM's model library
// (test/mlc.spec.ts checks it), so WebLLM and pop-llm can run the same random weights.
// Also: the dequantized weights of such a folder under Hugging Face names, written apart
// from the loader's mapping, for the reference model in the tests. Plain TS (Node and pages).
import { floatToBf16, floatToHalf, halfToFloat } from '../core/float_bits.ts';
import { InvalidArgumentError } from '../errors.ts';

export interface MlcParam {
  name: string;
  shape: number[];
  dtype: string;
}

/** Formats the writer produces: weight bits (0 = unquantized) and the dtype of the rest. */
const FORMATS: Record<string, { bits: number; dtype: 'float32' | 'float16' }> = {
  q4f32_1: { bits: 4, dtype: 'float32' },
  q4f16_1: { bits: 4, dtype: 'float16' },
  q0f32: { bits: 0, dtype: 'float32' },
  q0f16: { bits: 0, dtype: 'float16' },
};

/** The linear holding [q; k; v] per model_type (mlc_llm's Qwen2 calls it c_attn, with a bias). */
const QKV: Record<string, { name: string; bias: boolean }> = {
  qwen2: { name: 'c_attn', bias: true },
  llama: { name: 'qkv_proj', bias: false },
};

/**
 * mlc-chat-config.json for a Hugging Face config.json (qwen2 or llama), with the fields
 * mlc_llm's gen_config writes and WebLLM reads. Sampling defaults and the chatml template
 * follow Qwen2.5-0.5B-Instruct's.
 */
export function mlcChatConfig(hf: Record<string, any>, quantization = 'q4f32_1', o: { contextWindow?: number; prefillChunk?: number } = {}): Record<string, any> {
  const type = hf.model_type;
  if (!QKV[type]) throw new InvalidArgumentError('writeMlcModel', `mlcChatConfig: model_type '${type}' (qwen2 or llama)`);
  const ctx = o.contextWindow ?? hf.max_position_embeddings ?? 4096;
  const chunk = Math.min(ctx, o.prefillChunk ?? 1024);
  const heads = hf.num_attention_heads;
  const theta = hf.rope_theta ?? 10000;
  const mc: Record<string, any> = {
    hidden_act: hf.hidden_act ?? 'silu',
    hidden_size: hf.hidden_size,
    intermediate_size: hf.intermediate_size,
    num_attention_heads: heads,
    num_hidden_layers: hf.num_hidden_layers,
    num_key_value_heads: hf.num_key_value_heads ?? heads,
    rms_norm_eps: hf.rms_norm_eps ?? 1e-6,
    ...(type === 'llama' ? { position_embedding_base: theta, rope_scaling: hf.rope_scaling ?? null } : { rope_theta: theta }),
    vocab_size: hf.vocab_size,
    tie_word_embeddings: hf.tie_word_embeddings ?? false,
    context_window_size: ctx,
    prefill_chunk_size: chunk,
    tensor_parallel_shards: 1,
    head_dim: hf.head_dim ?? hf.hidden_size / heads,
    dtype: FORMATS[quantization]?.dtype ?? 'float32',
    max_batch_size: 80,
  };
  const eos = hf.eos_token_id ?? [];
  return {
    version: '0.1.0',
    model_type: type,
    quantization,
    model_config: mc,
    vocab_size: hf.vocab_size,
    context_window_size: ctx,
    sliding_window_size: -1,
    prefill_chunk_size: chunk,
    attention_sink_size: -1,
    tensor_parallel_shards: 1,
    pipeline_parallel_stages: 1,
    temperature: 0.7,
    presence_penalty: 0.0,
    frequency_penalty: 0.0,
    repetition_penalty: 1.0,
    top_p: 0.8,
    tokenizer_files: ['tokenizer.json'],
    tokenizer_info: { token_postproc_method: 'byte_level', prepend_space_in_encode: false, strip_space_in_decode: false },
    conv_template: {
      name: 'chatml',
      system_template: '<|im_start|>system\n{system_message}<|im_end|>\n',
      system_message: 'You are a helpful assistant.',
      system_prefix_token_ids: null,
      add_role_after_system_message: true,
      roles: { user: '<|im_start|>user', assistant: '<|im_start|>assistant' },
      role_templates: { user: '{user_message}', assistant: '{assistant_message}', tool: '{tool_message}' },
      messages: [],
      seps: ['<|im_end|>\n'],
      role_content_sep: '\n',
      role_empty_sep: '\n',
      stop_str: ['<|im_end|>'],
      stop_token_ids: Array.isArray(eos) ? eos : [eos],
      function_string: '',
      use_function_calling: false,
    },
    pad_token_id: hf.pad_token_id ?? 0,
    bos_token_id: hf.bos_token_id ?? null,
    eos_token_id: eos,
  };
}

/** The parameters mlc_llm compiles for an mlc-chat-config.json, in load order. */
export function mlcParams(chat: Record<string, any>): MlcParam[] {
  const f = FORMATS[chat.quantization], qkv = QKV[chat.model_type];
  if (!f) throw new InvalidArgumentError('writeMlcModel', `mlcParams: quantization '${chat.quantization}' (${Object.keys(FORMATS).join(', ')})`);
  if (!qkv) throw new InvalidArgumentError('writeMlcModel', `mlcParams: model_type '${chat.model_type}' (qwen2 or llama)`);
  const mc = chat.model_config;
  const H = mc.hidden_size, heads = mc.num_attention_heads, kvHeads = mc.num_key_value_heads ?? heads;
  const D = mc.head_dim ?? H / heads, F = mc.intermediate_size, V = mc.vocab_size ?? chat.vocab_size;
  const out: MlcParam[] = [];
  const linear = (prefix: string, rows: number, cols: number, bias = false) => {
    const g = Math.ceil(cols / 32);
    if (f.bits) out.push({ name: `${prefix}.q_weight`, shape: [rows, g * 4], dtype: 'uint32' }, { name: `${prefix}.q_scale`, shape: [rows, g], dtype: f.dtype });
    else out.push({ name: `${prefix}.weight`, shape: [rows, cols], dtype: f.dtype });
    if (bias) out.push({ name: `${prefix}.bias`, shape: [rows], dtype: f.dtype });
  };
  const norm = (name: string) => out.push({ name, shape: [H], dtype: f.dtype });
  linear('model.embed_tokens', V, H);
  for (let l = 0; l < mc.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    linear(`${p}.self_attn.${qkv.name}`, (heads + 2 * kvHeads) * D, H, qkv.bias);
    linear(`${p}.self_attn.o_proj`, H, heads * D);
    linear(`${p}.mlp.gate_up_proj`, 2 * F, H);
    linear(`${p}.mlp.down_proj`, H, F);
    norm(`${p}.input_layernorm.weight`);
    norm(`${p}.post_attention_layernorm.weight`);
  }
  norm('model.norm.weight');
  if (!mc.tie_word_embeddings) linear('lm_head', V, H);
  return out;
}

export interface MlcWriterOptions {
  seed?: number;
  /** Shard size (default 32 MiB, as mlc_llm's convert_weight); a larger tensor gets a shard of its own. */
  shardBytes?: number;
  /** The parameter list (default: mlcParams(chat)), e.g. a model library's wasm_metadata.json params. */
  params?: MlcParam[];
  /** Let q4 nibbles take 15 as well (MLC's quantizer writes 0..14): exercises the loader's asym path. */
  nibble15?: boolean;
  tokenizerJson?: string;
}

function uniformSource(seed: number): () => number {
  let a = seed >>> 0 || 1;
  return () => {
    a ^= a << 13; a >>>= 0; a ^= a >>> 17; a ^= a << 5; a >>>= 0;
    return a;
  };
}

const elementsOf = (shape: number[]) => shape.reduce((x, y) => x * y, 1);
const BYTES: Record<string, number> = { uint32: 4, float32: 4, float16: 2, bfloat16: 2 };

/** Random contents of one parameter: activations stay O(1) through the layers. */
function randomParam(p: MlcParam, next: () => number, o: MlcWriterOptions): Uint8Array {
  const n = elementsOf(p.shape);
  const u = () => (next() + 0.5) / 4294967296;
  const gauss = () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  if (p.dtype === 'uint32') {
    const w = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      let x = next();
      // A nibble 15 becomes 7: MLC's q stays in 0..2*7.
      if (!o.nibble15) x ^= ((x & (x >>> 1) & (x >>> 2) & (x >>> 3) & 0x11111111) << 3) >>> 0;
      w[i] = x;
    }
    return new Uint8Array(w.buffer);
  }
  const v = new Float32Array(n);
  const cols = p.shape[p.shape.length - 1];
  if (p.name.endsWith('.q_scale')) {
    // (q - 7) with q uniform in 0..14 has std 4.32: weights of std ~ 1/sqrt(in).
    const inFeatures = cols * 32;
    for (let i = 0; i < n; i++) v[i] = (0.5 + u()) / (4.32 * Math.sqrt(inFeatures));
  } else if (p.name.endsWith('norm.weight')) {
    for (let i = 0; i < n; i++) v[i] = 1 + 0.1 * gauss();
  } else if (p.name.endsWith('.bias')) {
    for (let i = 0; i < n; i++) v[i] = 0.02 * gauss();
  } else {
    for (let i = 0; i < n; i++) v[i] = gauss() / Math.sqrt(cols);
  }
  if (p.dtype === 'float32') return new Uint8Array(v.buffer);
  const h = new Uint16Array(n);
  for (let i = 0; i < n; i++) h[i] = p.dtype === 'bfloat16' ? floatToBf16(v[i]) : floatToHalf(v[i]);
  return new Uint8Array(h.buffer);
}

/**
 * A random model folder in MLC layout: mlc-chat-config.json, ndarray-cache.json,
 * tensor-cache.json, params_shard_N.bin (and tokenizer.json when given). Deterministic for a seed.
 */
export function writeMlcModel(chat: Record<string, any>, o: MlcWriterOptions = {}): Map<string, Uint8Array> {
  const params = o.params ?? mlcParams(chat);
  const shardBytes = o.shardBytes ?? 32 * 1024 * 1024;
  const next = uniformSource(o.seed ?? 1234);
  const files = new Map<string, Uint8Array>();
  const shards: { dataPath: string; format: string; nbytes: number; records: object[] }[] = [];
  let parts: Uint8Array[] = [], records: object[] = [], size = 0;
  const close = () => {
    if (!records.length) return;
    const dataPath = `params_shard_${shards.length}.bin`;
    const bytes = new Uint8Array(size);
    let off = 0;
    for (const p of parts) bytes.set(p, off), (off += p.byteLength);
    files.set(dataPath, bytes);
    shards.push({ dataPath, format: 'raw-shard', nbytes: size, records });
    (parts = []), (records = []), (size = 0);
  };
  let total = 0;
  for (const p of params) {
    const data = randomParam(p, next, o);
    if (data.byteLength !== elementsOf(p.shape) * BYTES[p.dtype]) throw new InvalidArgumentError('writeMlcModel', `writeMlcModel: ${p.name} of ${p.dtype}`);
    if (size && size + data.byteLength > shardBytes) close();
    records.push({ name: p.name, shape: p.shape, dtype: p.dtype, format: 'raw', nbytes: data.byteLength, byteOffset: size });
    parts.push(data);
    size += data.byteLength;
    total += data.byteLength;
  }
  close();
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 1));
  const paramSize = params.reduce((a, p) => a + elementsOf(p.shape) * (p.dtype === 'uint32' ? 8 : 1), 0);
  const cache = enc({ metadata: { ParamSize: params.length, ParamBytes: total, BitsPerParam: (total * 8) / paramSize }, records: shards });
  files.set('ndarray-cache.json', cache);
  files.set('tensor-cache.json', cache);
  files.set('mlc-chat-config.json', enc(chat));
  if (o.tokenizerJson) files.set('tokenizer.json', new TextEncoder().encode(o.tokenizerJson));
  return files;
}

/**
 * The weights of an MLC folder dequantized ((q - 7) * scale) under Hugging Face names
 * (q/k/v_proj split from c_attn / qkv_proj, gate/up from gate_up_proj): what
 * src/reference/reference_model.ts reads. Written apart from src/model/mlc.ts on purpose.
 */
export function mlcReferenceTensors(files: Map<string, Uint8Array>): Map<string, Float32Array> {
  const json = (name: string) => JSON.parse(new TextDecoder().decode(files.get(name)!));
  const chat = json('mlc-chat-config.json');
  const cache = files.has('ndarray-cache.json') ? json('ndarray-cache.json') : json('tensor-cache.json');
  const raw = new Map<string, { shape: number[]; dtype: string; bytes: Uint8Array }>();
  for (const s of cache.records) {
    const shard = files.get(s.dataPath)!;
    for (const r of s.records) raw.set(r.name, { shape: r.shape, dtype: r.dtype, bytes: shard.slice(r.byteOffset, r.byteOffset + r.nbytes) });
  }
  const floats = (t: { dtype: string; bytes: Uint8Array }) => {
    if (t.dtype === 'float32') return new Float32Array(t.bytes.buffer);
    const h = new Uint16Array(t.bytes.buffer);
    return Float32Array.from(h, (x) => (t.dtype === 'bfloat16' ? new Float32Array(new Uint32Array([x << 16]).buffer)[0] : halfToFloat(x)));
  };
  const out = new Map<string, Float32Array>();
  for (const [name, t] of raw) {
    if (name.endsWith('.q_scale')) continue;
    if (!name.endsWith('.q_weight')) {
      out.set(name, floats(t));
      continue;
    }
    const prefix = name.slice(0, -'.q_weight'.length);
    const words = new Uint32Array(t.bytes.buffer), scales = floats(raw.get(`${prefix}.q_scale`)!);
    const [rows, rw] = t.shape, groups = rw / 4;
    const cols = prefix.endsWith('down_proj') ? chat.model_config.intermediate_size : prefix.endsWith('o_proj') ? chat.model_config.num_attention_heads * (chat.model_config.head_dim ?? chat.model_config.hidden_size / chat.model_config.num_attention_heads) : chat.model_config.hidden_size;
    const w = new Float32Array(rows * cols);
    for (let n = 0; n < rows; n++) {
      for (let k = 0; k < cols; k++) {
        const q = (words[n * rw + Math.floor(k / 8)] >>> ((k % 8) * 4)) & 0xf;
        w[n * cols + k] = (q - 7) * scales[n * groups + Math.floor(k / 32)];
      }
    }
    out.set(`${prefix}.weight`, w);
  }
  // Split the fused linears into HF's.
  const mc = chat.model_config;
  const H = mc.hidden_size, D = mc.head_dim ?? H / mc.num_attention_heads;
  const Q = mc.num_attention_heads * D, KV = (mc.num_key_value_heads ?? mc.num_attention_heads) * D, F = mc.intermediate_size;
  const qkv = QKV[chat.model_type].name;
  for (let l = 0; l < mc.num_hidden_layers; l++) {
    const a = `model.layers.${l}.self_attn`, m = `model.layers.${l}.mlp`;
    const w = out.get(`${a}.${qkv}.weight`)!;
    out.set(`${a}.q_proj.weight`, w.slice(0, Q * H));
    out.set(`${a}.k_proj.weight`, w.slice(Q * H, (Q + KV) * H));
    out.set(`${a}.v_proj.weight`, w.slice((Q + KV) * H, (Q + 2 * KV) * H));
    const b = out.get(`${a}.${qkv}.bias`);
    if (b) {
      out.set(`${a}.q_proj.bias`, b.slice(0, Q));
      out.set(`${a}.k_proj.bias`, b.slice(Q, Q + KV));
      out.set(`${a}.v_proj.bias`, b.slice(Q + KV, Q + 2 * KV));
    }
    const gu = out.get(`${m}.gate_up_proj.weight`)!;
    out.set(`${m}.gate_proj.weight`, gu.slice(0, F * H));
    out.set(`${m}.up_proj.weight`, gu.slice(F * H));
  }
  if (mc.tie_word_embeddings) out.set('lm_head.weight', out.get('model.embed_tokens.weight')!);
  return out;
}
