// Qwen2 / Qwen2.5 (Qwen2ForCausalLM): Llama's layout and tensor names plus q/k/v biases
// (always on; o_proj has none). Sliding-window layers only when use_sliding_window is set:
// then layers i >= max_window_layers (or those `layer_types` marks) use `sliding_window`.
import type { FamilySpec } from '../family.ts';
import type { ModelConfig } from '../config.ts';
import { decoderConfig, llama } from './llama.ts';
import { MalformedFileError } from '../../errors.ts';

/** Per-layer windows, HF's Qwen2/Qwen3 rule (the window counts the query token itself). */
export function qwenSlidingWindows(raw: Record<string, any>, layers: number): number[] {
  const window = raw.use_sliding_window ? (raw.sliding_window ?? 4096) : null;
  const types: string[] | undefined = raw.layer_types ?? undefined;
  if (types && types.length < layers) throw new MalformedFileError('config.json', `layer_types has ${types.length} entries for ${layers} layers`);
  return Array.from({ length: layers }, (_, i) => {
    const sliding = types ? types[i] === 'sliding_attention' : window !== null && i >= (raw.max_window_layers ?? 28);
    if (!sliding) return 0;
    if (!window) throw new MalformedFileError('config.json', `layer ${i} is a sliding-window layer but sliding_window is not set`);
    return window;
  });
}

/** The normalized config shared by Qwen2 and Qwen3 (HF defaults where a key is absent). */
export function qwenBase(raw: Record<string, any>, gen: Record<string, any> | undefined, headDim: number): ModelConfig {
  if (raw.hidden_act !== undefined && raw.hidden_act !== 'silu') throw new MalformedFileError('config.json', `hidden_act '${raw.hidden_act}' is not supported (silu only)`);
  return decoderConfig(raw, gen, { headDim, maxPositions: 32768, slidingWindow: qwenSlidingWindows(raw, raw.num_hidden_layers) });
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
