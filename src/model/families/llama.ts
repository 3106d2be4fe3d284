// Llama family: LlamaForCausalLM (Llama 2/3.x, SmolLM/SmolLM2, TinyStories).
import type { FamilySpec } from '../family.ts';
import type { ModelConfig, RopeConfig } from '../config.ts';
import { MalformedFileError } from '../../errors.ts';

export function readRopeScaling(raw: Record<string, any>): RopeConfig['scaling'] {
  const s = raw.rope_scaling;
  if (!s) return null;
  const type = s.rope_type ?? s.type;
  if (type === 'llama3') {
    return { type: 'llama3', factor: s.factor, lowFreqFactor: s.low_freq_factor, highFreqFactor: s.high_freq_factor, originalMaxPositionEmbeddings: s.original_max_position_embeddings };
  }
  if (type === 'linear') return { type: 'linear', factor: s.factor };
  if (type === 'default') return null;
  throw new MalformedFileError('config.json', `unsupported rope_scaling type '${type}'`);
}

export function eosList(raw: Record<string, any>, gen?: Record<string, any>): number[] {
  const e = gen?.eos_token_id ?? raw.eos_token_id;
  if (e === undefined || e === null) return [];
  return Array.isArray(e) ? e : [e];
}

/** Tensor names shared by HF decoder checkpoints (Llama, Qwen, Gemma): `{layer}` is the block. */
export const HF_GLOBAL_TENSORS: FamilySpec['globalTensors'] = { embed: 'model.embed_tokens.weight', finalNorm: 'model.norm.weight', lmHead: 'lm_head.weight' };
export const HF_LAYER_TENSORS: FamilySpec['layerTensors'] = {
  inputNorm: 'model.layers.{layer}.input_layernorm.weight',
  q: 'model.layers.{layer}.self_attn.q_proj.weight',
  k: 'model.layers.{layer}.self_attn.k_proj.weight',
  v: 'model.layers.{layer}.self_attn.v_proj.weight',
  o: 'model.layers.{layer}.self_attn.o_proj.weight',
  qBias: 'model.layers.{layer}.self_attn.q_proj.bias',
  kBias: 'model.layers.{layer}.self_attn.k_proj.bias',
  vBias: 'model.layers.{layer}.self_attn.v_proj.bias',
  qNorm: 'model.layers.{layer}.self_attn.q_norm.weight',
  kNorm: 'model.layers.{layer}.self_attn.k_norm.weight',
  gate: 'model.layers.{layer}.mlp.gate_proj.weight',
  up: 'model.layers.{layer}.mlp.up_proj.weight',
  down: 'model.layers.{layer}.mlp.down_proj.weight',
};

/**
 * The normalized config of a plain pre-norm decoder (SiLU GLU, one RoPE, full attention, no
 * extra norms), with HF's defaults where a key is absent. Families override what differs.
 */
export function decoderConfig(raw: Record<string, any>, gen: Record<string, any> | undefined, d: { headDim: number; maxPositions: number; slidingWindow?: number[] }): ModelConfig {
  const layers = raw.num_hidden_layers;
  const rope: RopeConfig = { theta: raw.rope_theta ?? 10000, scaling: readRopeScaling(raw) };
  return {
    modelType: raw.model_type,
    hiddenSize: raw.hidden_size,
    intermediateSize: raw.intermediate_size,
    numLayers: layers,
    numHeads: raw.num_attention_heads,
    numKvHeads: raw.num_key_value_heads ?? raw.num_attention_heads,
    headDim: d.headDim,
    vocabSize: raw.vocab_size,
    maxPositionEmbeddings: raw.max_position_embeddings ?? d.maxPositions,
    rmsNormEps: raw.rms_norm_eps ?? 1e-6,
    rope: Array.from({ length: layers }, () => rope),
    slidingWindow: d.slidingWindow ?? Array.from({ length: layers }, () => 0),
    activation: 'silu',
    tieWordEmbeddings: raw.tie_word_embeddings ?? false,
    attentionBias: false,
    qkNorm: false,
    postNorms: false,
    embeddingScale: 1,
    attnScale: 1 / Math.sqrt(d.headDim),
    finalLogitSoftcap: 0,
    bosTokenId: gen?.bos_token_id ?? raw.bos_token_id ?? null,
    eosTokenIds: eosList(raw, gen),
  };
}

export const llama: FamilySpec = {
  modelTypes: ['llama'],
  normalize(raw, gen): ModelConfig {
    // HF Llama puts `attention_bias` on o_proj as well, and `mlp_bias` on the MLP: neither has
    // a slot in the forward, so refuse such checkpoints instead of loading them wrong.
    if (raw.attention_bias) throw new MalformedFileError('config.json', 'attention_bias = true (biases on q/k/v/o) is not supported for llama');
    if (raw.mlp_bias) throw new MalformedFileError('config.json', 'mlp_bias = true is not supported for llama');
    return decoderConfig(raw, gen, { headDim: raw.head_dim ?? raw.hidden_size / raw.num_attention_heads, maxPositions: 2048 });
  },
  globalTensors: HF_GLOBAL_TENSORS,
  layerTensors: { ...HF_LAYER_TENSORS, mlpNorm: 'model.layers.{layer}.post_attention_layernorm.weight' },
  normGainOffset: 0,
};
