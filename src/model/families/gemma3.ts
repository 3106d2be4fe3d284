// Gemma 3 text (Gemma3ForCausalLM, model_type gemma3_text). What differs from Llama, as in
// transformers' modeling_gemma3.py / configuration_gemma3.py:
//  - every RMSNorm (input, post-attention, pre/post-feedforward, final, q/k) scales by (1 + w);
//  - sandwich norms: post_attention_layernorm normalizes the attention output before the
//    residual add, pre_feedforward_layernorm is the pre-MLP norm, post_feedforward_layernorm
//    normalizes the MLP output;
//  - per-head q_norm / k_norm before RoPE; MLP act gelu_pytorch_tanh;
//  - embeddings × sqrt(hidden), the scale a f32 tensor cast to the weights' dtype (f32 here);
//  - scores × query_pre_attn_scalar^-0.5;
//  - local (sliding_attention) and global (full_attention) layers from layer_types, else every
//    sliding_window_pattern-th layer (default 6) is global; local layers use RoPE base
//    rope_local_base_freq without scaling, global layers rope_theta with rope_scaling;
//  - window: key kv is visible to query q when kv > q - sliding_window (masking_utils'
//    sliding_window_overlay), i.e. the last sliding_window tokens including the query, which is
//    exactly the kernels' `window`;
//  - final_logit_softcapping when set; tied embeddings by default.
// Keys a config leaves out take Gemma3TextConfig's defaults.
import type { FamilySpec } from '../family.ts';
import type { ModelConfig, RopeConfig } from '../config.ts';
import { eosList, HF_GLOBAL_TENSORS, HF_LAYER_TENSORS, readRopeScaling } from './llama.ts';
import { MalformedFileError } from '../../errors.ts';

const DEFAULTS = {
  vocab_size: 262208, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8,
  num_key_value_heads: 4, head_dim: 256, hidden_activation: 'gelu_pytorch_tanh', max_position_embeddings: 131072,
  rms_norm_eps: 1e-6, rope_theta: 1_000_000, rope_local_base_freq: 10_000, query_pre_attn_scalar: 256,
  sliding_window: 4096, sliding_window_pattern: 6, tie_word_embeddings: true, bos_token_id: 2, eos_token_id: 1,
} as const;

/** RoPE of local and global layers, from the flat keys or transformers 5's `rope_parameters`. */
function gemmaRope(r: Record<string, any>): { local: RopeConfig; global: RopeConfig } {
  const rp = r.rope_parameters;
  if (rp && (rp.sliding_attention || rp.full_attention)) {
    const one = (p: Record<string, any> | undefined, theta: number): RopeConfig => ({ theta: p?.rope_theta ?? theta, scaling: p ? readRopeScaling({ rope_scaling: p }) : null });
    return { local: one(rp.sliding_attention, r.rope_local_base_freq), global: one(rp.full_attention, r.rope_theta) };
  }
  return { local: { theta: r.rope_local_base_freq, scaling: null }, global: { theta: r.rope_theta, scaling: readRopeScaling(r) } };
}

export const gemma3Text: FamilySpec = {
  modelTypes: ['gemma3_text'],
  normalize(raw, gen): ModelConfig {
    const r: Record<string, any> = { ...DEFAULTS };
    for (const [k, v] of Object.entries(raw)) if (v !== null && v !== undefined) r[k] = v;
    if (raw.attn_logit_softcapping != null) {
      throw new MalformedFileError('config.json', `attn_logit_softcapping=${raw.attn_logit_softcapping} is not supported (the attention kernels have no score soft-capping)`);
    }
    if (r.attention_bias) throw new MalformedFileError('config.json', 'attention_bias=true (bias on q/k/v and o_proj) is not supported for gemma3_text');
    if (r.use_bidirectional_attention) throw new MalformedFileError('config.json', 'use_bidirectional_attention=true (encoder-style Gemma 3) is not supported');
    if (r.hidden_activation !== 'gelu_pytorch_tanh') throw new MalformedFileError('config.json', `hidden_activation '${r.hidden_activation}' is not supported (gelu_pytorch_tanh only)`);
    const layers: number = r.num_hidden_layers;
    const types: string[] = Array.isArray(raw.layer_types)
      ? raw.layer_types
      : Array.from({ length: layers }, (_, i) => ((i + 1) % r.sliding_window_pattern ? 'sliding_attention' : 'full_attention'));
    if (types.length < layers) throw new MalformedFileError('config.json', `layer_types has ${types.length} entries for ${layers} layers`);
    const bad = types.slice(0, layers).find((t) => t !== 'sliding_attention' && t !== 'full_attention');
    if (bad) throw new MalformedFileError('config.json', `layer type '${bad}' is not supported`);
    const local = types.map((t) => t === 'sliding_attention');
    const rope = gemmaRope(r);
    const hidden: number = r.hidden_size;
    return {
      modelType: raw.model_type,
      hiddenSize: hidden,
      intermediateSize: r.intermediate_size,
      numLayers: layers,
      numHeads: r.num_attention_heads,
      numKvHeads: r.num_key_value_heads,
      headDim: r.head_dim,
      vocabSize: r.vocab_size,
      maxPositionEmbeddings: r.max_position_embeddings,
      rmsNormEps: r.rms_norm_eps,
      rope: Array.from({ length: layers }, (_, l) => (local[l] ? rope.local : rope.global)),
      slidingWindow: Array.from({ length: layers }, (_, l) => (local[l] ? r.sliding_window : 0)),
      activation: 'gelu_tanh',
      tieWordEmbeddings: r.tie_word_embeddings,
      attentionBias: false,
      qkNorm: true,
      postNorms: true,
      embeddingScale: Math.fround(Math.sqrt(hidden)),
      attnScale: Math.pow(r.query_pre_attn_scalar, -0.5),
      finalLogitSoftcap: r.final_logit_softcapping ?? 0,
      bosTokenId: gen?.bos_token_id ?? r.bos_token_id ?? null,
      eosTokenIds: eosList(r, gen),
    };
  },
  globalTensors: HF_GLOBAL_TENSORS,
  layerTensors: {
    ...HF_LAYER_TENSORS,
    attnOutNorm: 'model.layers.{layer}.post_attention_layernorm.weight',
    mlpNorm: 'model.layers.{layer}.pre_feedforward_layernorm.weight',
    mlpOutNorm: 'model.layers.{layer}.post_feedforward_layernorm.weight',
  },
  normGainOffset: 1,
};
