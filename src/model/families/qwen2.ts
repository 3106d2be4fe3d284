// Qwen2 / Qwen2.5 (Qwen2ForCausalLM): Llama's layout and tensor names plus q/k/v biases
// (always on; o_proj has none). Sliding-window layers only when use_sliding_window is set:
// then layers i >= max_window_layers (or those `layer_types` marks) use `sliding_window`.
import type { FamilySpec } from '../family.ts';
import type { ModelConfig, RopeConfig } from '../config.ts';
import { eosList, llama, readRopeScaling } from './llama.ts';

/** Per-layer windows, HF's Qwen2/Qwen3 rule (the window counts the query token itself). */
export function qwenSlidingWindows(raw: Record<string, any>, layers: number): number[] {
  const window = raw.use_sliding_window ? (raw.sliding_window ?? 4096) : null;
  const types: string[] | undefined = raw.layer_types ?? undefined;
  if (types && types.length < layers) throw new Error(`layer_types has ${types.length} entries for ${layers} layers`);
  return Array.from({ length: layers }, (_, i) => {
    const sliding = types ? types[i] === 'sliding_attention' : window !== null && i >= (raw.max_window_layers ?? 28);
    if (!sliding) return 0;
    if (!window) throw new Error(`layer ${i} is a sliding-window layer but sliding_window is not set`);
    return window;
  });
}

/** The normalized config shared by Qwen2 and Qwen3 (HF defaults where a key is absent). */
export function qwenBase(raw: Record<string, any>, gen: Record<string, any> | undefined, headDim: number): ModelConfig {
  const layers = raw.num_hidden_layers;
  const rope: RopeConfig = { theta: raw.rope_theta ?? 10000, scaling: readRopeScaling(raw) };
  if (raw.hidden_act !== undefined && raw.hidden_act !== 'silu') throw new Error(`hidden_act '${raw.hidden_act}' is not supported (silu only)`);
  return {
    modelType: raw.model_type,
    hiddenSize: raw.hidden_size,
    intermediateSize: raw.intermediate_size,
    numLayers: layers,
    numHeads: raw.num_attention_heads,
    numKvHeads: raw.num_key_value_heads ?? raw.num_attention_heads,
    headDim,
    vocabSize: raw.vocab_size,
    maxPositionEmbeddings: raw.max_position_embeddings ?? 32768,
    rmsNormEps: raw.rms_norm_eps ?? 1e-6,
    rope: Array.from({ length: layers }, () => rope),
    slidingWindow: qwenSlidingWindows(raw, layers),
    activation: 'silu',
    tieWordEmbeddings: raw.tie_word_embeddings ?? false,
    attentionBias: false,
    qkNorm: false,
    postNorms: false,
    embeddingScale: 1,
    attnScale: 1 / Math.sqrt(headDim),
    finalLogitSoftcap: 0,
    bosTokenId: gen?.bos_token_id ?? raw.bos_token_id ?? null,
    eosTokenIds: eosList(raw, gen),
  };
}

export const qwen2: FamilySpec = {
  modelTypes: ['qwen2'],
  normalize(raw, gen): ModelConfig {
    // Qwen2Attention: q/k/v_proj bias=True, o_proj bias=False; head_dim = hidden / heads
    // unless the config names one.
    return { ...qwenBase(raw, gen, raw.head_dim ?? raw.hidden_size / raw.num_attention_heads), attentionBias: true };
  },
  globalTensors: llama.globalTensors,
  layerTensors: llama.layerTensors,
  normGainOffset: 0,
};
