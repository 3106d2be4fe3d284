// Gemma 4 text: Gemma4ForCausalLM (model_type gemma4_text, tensors under `model.`) and the
// text tower of Gemma4ForConditionalGeneration (model_type gemma4, text_config, tensors under
// `model.language_model.`; the vision and audio towers are not read). What differs from
// Gemma 3, as in transformers' modeling_gemma4.py / configuration_gemma4.py:
//  - RMSNorm scales by w itself (not 1 + w); V gets an unscaled per-head RMSNorm (v_norm);
//    q_norm / k_norm per head before RoPE; attention scale 1.0 (no query_pre_attn_scalar);
//  - full_attention layers have global_head_dim (512) instead of head_dim (256) for Q, K, V
//    and o_proj's input; with attention_k_eq_v (31B) they also have num_global_key_value_heads
//    and no v_proj: V is the raw k_proj output (before k_norm), then v_norm;
//  - RoPE per layer type (rope_parameters): `default` on sliding layers (every pair rotates),
//    `proportional` on full layers: inv_freq[i] = theta^(-2i / head_dim) for
//    i < floor(partial_rotary_factor · head_dim / 2), 0 past it (those pairs do not rotate);
//  - KV sharing: the last num_kv_shared_layers layers have no K/V projection; each attends the
//    K/V of the last earlier non-shared layer of its own type (HF's store_full_length_kv);
//  - use_double_wide_mlp: the KV-shared layers' MLPs are 2 × intermediate_size wide;
//  - per-layer embeddings (PLE, hidden_size_per_layer_input P > 0): per token,
//    (rmsnorm_P(W_proj · e · hidden^-0.5) + T[id] · bf16(sqrt P)) · 2^-0.5 gives each layer a
//    P-vector p_l (e the scaled main embedding, T the [vocab, L·P] table); after the MLP
//    block each layer adds rmsnorm(W_up · (gelu_tanh(W_gate · h) ⊙ p_l));
//  - then the whole hidden state is multiplied by the layer's learned `layer_scalar`;
//  - embeddings × sqrt(hidden) rounded to bf16 (the checkpoints' dtype: 39.25 for E2B);
//    GeGLU (gelu_pytorch_tanh); final_logit_softcapping; tied head.
// Not supported (refused by name): the MoE block (enable_moe_block, 26B-A4B),
// use_bidirectional_attention 'all' (text stays causal with 'vision', which concerns images).
import { UnsupportedFeatureError, MalformedFileError } from '../../errors.ts';
import type { FamilySpec, LayerRole } from '../family.ts';
import type { LayerShape, ModelConfig, RopeConfig } from '../config.ts';
import { eosList, HF_LAYER_TENSORS } from './llama.ts';

/** Gemma4TextConfig's defaults for keys a config leaves out. */
const DEFAULTS = {
  vocab_size: 262144, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 30, num_attention_heads: 8,
  num_key_value_heads: 4, head_dim: 256, global_head_dim: 512, num_global_key_value_heads: null, hidden_activation: 'gelu_pytorch_tanh',
  max_position_embeddings: 131072, rms_norm_eps: 1e-6, sliding_window: 512, tie_word_embeddings: true, final_logit_softcapping: null,
  vocab_size_per_layer_input: 262144, hidden_size_per_layer_input: 256, attention_k_eq_v: false, num_kv_shared_layers: 0,
  enable_moe_block: false, use_double_wide_mlp: false, attention_bias: false, bos_token_id: 2, eos_token_id: 1,
  rope_parameters: {
    sliding_attention: { rope_type: 'default', rope_theta: 10_000 },
    full_attention: { rope_type: 'proportional', partial_rotary_factor: 0.25, rope_theta: 1_000_000 },
  },
} as const;

/** x rounded to bfloat16 (round to nearest even), as torch casts the embedding scale to the weights' dtype. */
export function roundBf16(x: number): number {
  const f = new Float32Array([x]), u = new Uint32Array(f.buffer);
  u[0] = (u[0] + 0x7fff + ((u[0] >>> 16) & 1)) & 0xffff0000;
  return f[0];
}

function readRope(p: Record<string, any> | undefined, type: string): RopeConfig {
  if (!p) throw new MalformedFileError('config.json', `rope_parameters.${type} is missing`);
  const kind = p.rope_type ?? 'default';
  if (kind === 'default') return { theta: p.rope_theta, scaling: null };
  if (kind === 'proportional') return { theta: p.rope_theta, scaling: { type: 'proportional', partialRotaryFactor: p.partial_rotary_factor ?? 1, factor: p.factor ?? 1 } };
  if (kind === 'linear') return { theta: p.rope_theta, scaling: { type: 'linear', factor: p.factor } };
  throw new MalformedFileError('config.json', `rope_type '${kind}' (${type}) is not supported`);
}

/** The normalized config of a Gemma 4 text model from its (text) config keys. */
function normalizeText(raw: Record<string, any>, gen: Record<string, any> | undefined, modelType: string): ModelConfig {
  const r: Record<string, any> = { ...DEFAULTS };
  for (const [k, v] of Object.entries(raw)) if (v !== null && v !== undefined) r[k] = v;
  if (r.enable_moe_block) throw new UnsupportedFeatureError('enable_moe_block', 'the Gemma 4 mixture-of-experts block (26B-A4B) has no path in the forward');
  if (r.use_bidirectional_attention === 'all') throw new UnsupportedFeatureError('use_bidirectional_attention', "'all' (encoder-style Gemma 4) is not supported; text is causal");
  if (r.attention_bias) throw new UnsupportedFeatureError('attention_bias', 'Gemma 4 with biases on q/k/v/o is not supported');
  if (r.hidden_activation !== 'gelu_pytorch_tanh') throw new UnsupportedFeatureError('hidden_activation', `'${r.hidden_activation}' (gelu_pytorch_tanh only)`);
  const L: number = r.num_hidden_layers;
  const types: string[] = Array.isArray(raw.layer_types)
    ? raw.layer_types.slice(0, L)
    : Array.from({ length: L }, (_, i) => ((i + 1) % 6 ? 'sliding_attention' : 'full_attention'));
  if (types.length < L) throw new MalformedFileError('config.json', `layer_types has ${types.length} entries for ${L} layers`);
  const bad = types.find((t) => t !== 'sliding_attention' && t !== 'full_attention');
  if (bad) throw new MalformedFileError('config.json', `layer type '${bad}' is not supported`);
  types[L - 1] = 'full_attention'; // Gemma4TextConfig forces the last layer to full attention
  const rp = r.rope_parameters;
  const rope = { sliding_attention: readRope(rp.sliding_attention, 'sliding_attention'), full_attention: readRope(rp.full_attention, 'full_attention') };

  // KV sharing: layers [first, L) reuse the K/V of the last layer of their type before `first`.
  const shared: number = r.num_kv_shared_layers;
  if (!Number.isInteger(shared) || shared < 0 || shared >= L) throw new MalformedFileError('config.json', `num_kv_shared_layers ${shared} must be in 0..${L - 1}`);
  const first = L - shared;
  const kvSource = types.map((t, l) => {
    if (l < first) return l;
    const src = types.slice(0, first).lastIndexOf(t);
    if (src < 0) throw new MalformedFileError('config.json', `KV-shared layer ${l} (${t}) has no earlier ${t} layer to share`);
    return src;
  });
  const kEqV = !!r.attention_k_eq_v;
  const globalKv = kEqV && r.num_global_key_value_heads ? r.num_global_key_value_heads : r.num_key_value_heads;
  const layerShapes: LayerShape[] = types.map((t, l) => {
    const full = t === 'full_attention';
    const wide = r.use_double_wide_mlp && shared > 0 && l >= first;
    return {
      headDim: full && r.global_head_dim ? r.global_head_dim : r.head_dim,
      numKvHeads: full ? globalKv : r.num_key_value_heads,
      intermediateSize: r.intermediate_size * (wide ? 2 : 1),
      kEqV: kEqV && full,
    };
  });
  for (const [l, s] of layerShapes.entries()) if (r.num_attention_heads % s.numKvHeads) throw new MalformedFileError('config.json', `num_attention_heads must be a multiple of layer ${l}'s ${s.numKvHeads} K/V heads`);
  const hidden: number = r.hidden_size;
  const P: number = r.hidden_size_per_layer_input;
  return {
    modelType,
    hiddenSize: hidden,
    intermediateSize: Math.max(...layerShapes.map((s) => s.intermediateSize)),
    numLayers: L,
    numHeads: r.num_attention_heads,
    numKvHeads: r.num_key_value_heads,
    headDim: r.head_dim,
    vocabSize: r.vocab_size,
    maxPositionEmbeddings: r.max_position_embeddings,
    rmsNormEps: r.rms_norm_eps,
    rope: types.map((t) => rope[t as keyof typeof rope]),
    slidingWindow: types.map((t) => (t === 'sliding_attention' ? r.sliding_window : 0)),
    activation: 'gelu_tanh',
    tieWordEmbeddings: r.tie_word_embeddings,
    attentionBias: false,
    qkNorm: true,
    postNorms: true,
    embeddingScale: roundBf16(Math.sqrt(hidden)),
    attnScale: 1,
    finalLogitSoftcap: r.final_logit_softcapping ?? 0,
    bosTokenId: gen?.bos_token_id ?? r.bos_token_id ?? null,
    eosTokenIds: eosList(r, gen),
    layerShapes,
    kvSource,
    valueNorm: true,
    perLayerInput: P > 0 ? { dim: P, vocab: r.vocab_size_per_layer_input, tableScale: roundBf16(Math.sqrt(P)) } : undefined,
    layerScalar: true,
  };
}

function tensors(prefix: string): Pick<FamilySpec, 'globalTensors' | 'layerTensors' | 'perLayerInputTensors'> {
  const layer = (s: string) => `${prefix}layers.{layer}.${s}`;
  const base = Object.fromEntries(Object.entries(HF_LAYER_TENSORS).map(([role, n]) => [role, n!.replace('model.layers.', `${prefix}layers.`)])) as Partial<Record<LayerRole, string>>;
  return {
    globalTensors: { embed: `${prefix}embed_tokens.weight`, finalNorm: `${prefix}norm.weight`, lmHead: 'lm_head.weight' },
    layerTensors: {
      ...base,
      attnOutNorm: layer('post_attention_layernorm.weight'),
      mlpNorm: layer('pre_feedforward_layernorm.weight'),
      mlpOutNorm: layer('post_feedforward_layernorm.weight'),
      pleGate: layer('per_layer_input_gate.weight'),
      pleProj: layer('per_layer_projection.weight'),
      pleNorm: layer('post_per_layer_input_norm.weight'),
      layerScalar: layer('layer_scalar'),
    },
    perLayerInputTensors: {
      pleEmbed: `${prefix}embed_tokens_per_layer.weight`,
      pleModelProj: `${prefix}per_layer_model_projection.weight`,
      pleProjNorm: `${prefix}per_layer_projection_norm.weight`,
    },
  };
}

export const gemma4Text: FamilySpec = {
  modelTypes: ['gemma4_text'],
  normalize: (raw, gen) => normalizeText(raw, gen, raw.model_type ?? 'gemma4_text'),
  ...tensors('model.'),
  normGainOffset: 0,
};

/** Gemma4ForConditionalGeneration: its text tower only (vision and audio are not loaded). */
export const gemma4: FamilySpec = {
  modelTypes: ['gemma4'],
  normalize(raw, gen) {
    const text: Record<string, any> = { ...(raw.text_config ?? {}) };
    for (const k of ['bos_token_id', 'eos_token_id', 'tie_word_embeddings'] as const) if (text[k] === undefined && raw[k] !== undefined) text[k] = raw[k];
    return normalizeText(text, gen, 'gemma4');
  },
  ...tensors('model.language_model.'),
  normGainOffset: 0,
};
