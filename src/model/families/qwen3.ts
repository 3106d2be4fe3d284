// Qwen3 (Qwen3ForCausalLM): Qwen2's layout without the forced biases, plus per-head RMSNorm
// on q and k (self_attn.q_norm / k_norm, before RoPE) and an explicit head_dim that need not
// be hidden / heads. attention_bias (false in the released models) would put a bias on
// o_proj too, which the forward does not have: rejected.
import type { FamilySpec } from '../family.ts';
import type { ModelConfig } from '../config.ts';
import { llama } from './llama.ts';
import { qwenBase } from './qwen2.ts';
import { MalformedFileError } from '../../errors.ts';

export const qwen3: FamilySpec = {
  modelTypes: ['qwen3'],
  normalize(raw, gen): ModelConfig {
    if (raw.attention_bias) throw new MalformedFileError('config.json', 'attention_bias=true (bias on q/k/v and o_proj) is not supported for qwen3');
    return { ...qwenBase(raw, gen, raw.head_dim ?? 128), qkNorm: true };
  },
  globalTensors: llama.globalTensors,
  layerTensors: llama.layerTensors, // q_norm / k_norm are among the shared HF names
  normGainOffset: 0,
};
