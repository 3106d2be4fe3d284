// A model family is data: how its config.json maps to ModelConfig, and which checkpoint
// tensor holds each weight role. The loader and the one forward read only this.
import type { ModelConfig } from './config.ts';

/** Weight roles of one decoder layer. */
export type LayerRole =
  | 'inputNorm' | 'q' | 'k' | 'v' | 'o' | 'qBias' | 'kBias' | 'vBias' | 'qNorm' | 'kNorm'
  /** mlpNorm: the norm before the MLP (Llama's post_attention_layernorm). attnOutNorm and
   *  mlpOutNorm: Gemma's sandwich norms on the attention and MLP outputs. */
  | 'mlpNorm' | 'attnOutNorm' | 'mlpOutNorm' | 'gate' | 'up' | 'down';

export type GlobalRole = 'embed' | 'finalNorm' | 'lmHead';

export interface FamilySpec {
  /** HF `model_type` values this spec handles. */
  modelTypes: readonly string[];
  /** Maps a raw config.json (plus generation_config.json) into the normalized config. */
  normalize(raw: Record<string, any>, generation?: Record<string, any>): ModelConfig;
  /** Tensor names; `{layer}` is the block index. */
  globalTensors: Record<GlobalRole, string>;
  layerTensors: Partial<Record<LayerRole, string>>;
  /** RMSNorm gain is stored as w with the norm computing (1 + w) (Gemma). Folded at load. */
  normGainOffset: number;
  /** Tensors beyond the text decoder (a VLM's vision tower and connector), for random fixtures. */
  extraTensors?(c: ModelConfig): ExtraTensor[];
  /**
   * Other checkpoint layouts of the same model: [canonical prefix, alias prefix] pairs. A name
   * the checkpoint lacks is looked up with its canonical prefix replaced by the alias
   * (Gemma 3: `model.language_model.*` was `language_model.model.*` in older checkpoints).
   */
  checkpointAliases?: readonly (readonly [string, string])[];
}

/**
 * A checkpoint tensor outside the decoder roles; `fanIn` sets a random weight's scale.
 * `normOffset` (norms): the stored value w is used as a gain of normOffset + w (default 0:
 * SigLIP's LayerNorms store the gain itself; Gemma 3's projector RMSNorm stores w: 1).
 */
export interface ExtraTensor {
  name: string;
  shape: number[];
  kind: 'norm' | 'weight' | 'bias';
  fanIn?: number;
  normOffset?: number;
}

/** Expected shape of each weight role, from the normalized config. */
export function layerRoleShape(c: ModelConfig, role: LayerRole): number[] {
  const q = c.numHeads * c.headDim, kv = c.numKvHeads * c.headDim, h = c.hiddenSize, f = c.intermediateSize;
  switch (role) {
    case 'inputNorm': case 'mlpNorm': case 'attnOutNorm': case 'mlpOutNorm': return [h];
    case 'q': return [q, h];
    case 'k': case 'v': return [kv, h];
    case 'o': return [h, q];
    case 'qBias': return [q];
    case 'kBias': case 'vBias': return [kv];
    case 'qNorm': case 'kNorm': return [c.headDim];
    case 'gate': case 'up': return [f, h];
    case 'down': return [h, f];
  }
}

export function globalRoleShape(c: ModelConfig, role: GlobalRole): number[] {
  switch (role) {
    case 'embed': case 'lmHead': return [c.vocabSize, c.hiddenSize];
    case 'finalNorm': return [c.hiddenSize];
  }
}

/** Which layer roles a config actually uses (the rest are absent from the checkpoint). */
export function layerRolesFor(c: ModelConfig): LayerRole[] {
  const roles: LayerRole[] = ['inputNorm', 'q', 'k', 'v', 'o', 'mlpNorm', 'gate', 'up', 'down'];
  if (c.attentionBias) roles.push('qBias', 'kBias', 'vBias');
  if (c.qkNorm) roles.push('qNorm', 'kNorm');
  if (c.postNorms) roles.push('attnOutNorm', 'mlpOutNorm');
  return roles;
}
