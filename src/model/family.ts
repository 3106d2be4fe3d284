// A model family is data: how its config.json maps to ModelConfig, and which checkpoint
// tensor holds each weight role. The loader and the one forward read only this.
import { isKvShared, layerShape, type ModelConfig } from './config.ts';

/** Weight roles of one decoder layer. */
export type LayerRole =
  | 'inputNorm' | 'q' | 'k' | 'v' | 'o' | 'qBias' | 'kBias' | 'vBias' | 'qNorm' | 'kNorm'
  /** mlpNorm: the norm before the MLP (Llama's post_attention_layernorm). attnOutNorm and
   *  mlpOutNorm: Gemma's sandwich norms on the attention and MLP outputs. */
  | 'mlpNorm' | 'attnOutNorm' | 'mlpOutNorm' | 'gate' | 'up' | 'down'
  /** Gemma 4's per-layer input: gate [P, hidden], projection [hidden, P], its output norm; the layer's scalar [1]. */
  | 'pleGate' | 'pleProj' | 'pleNorm' | 'layerScalar';

export type GlobalRole = 'embed' | 'finalNorm' | 'lmHead';

/** Gemma 4's per-layer embeddings: the table [vocab, L·P], the projection [L·P, hidden] of the main embedding, its norm [P]. */
export type PerLayerInputRole = 'pleEmbed' | 'pleModelProj' | 'pleProjNorm';

export interface FamilySpec {
  /** HF `model_type` values this spec handles. */
  modelTypes: readonly string[];
  /** Maps a raw config.json (plus generation_config.json) into the normalized config. */
  normalize(raw: Record<string, any>, generation?: Record<string, any>): ModelConfig;
  /** Tensor names; `{layer}` is the block index. */
  globalTensors: Record<GlobalRole, string>;
  layerTensors: Partial<Record<LayerRole, string>>;
  /** Families with per-layer embeddings (ModelConfig.perLayerInput) name their tensors here. */
  perLayerInputTensors?: Record<PerLayerInputRole, string>;
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
  /**
   * Read only as the `w` of a matmul (a tower's linear layers): stored as the text
   * projections are (q4 / f16 when the load asks for it), and counted so by the fit estimate.
   */
  matmul?: boolean;
}

/** Expected shape of each weight role of layer l, from the normalized config. */
export function layerRoleShape(c: ModelConfig, role: LayerRole, l = 0): number[] {
  const s = layerShape(c, l);
  const q = c.numHeads * s.headDim, kv = s.numKvHeads * s.headDim, h = c.hiddenSize, f = s.intermediateSize;
  const P = c.perLayerInput?.dim ?? 0;
  switch (role) {
    case 'pleGate': return [P, h];
    case 'pleProj': return [h, P];
    case 'pleNorm': return [h];
    case 'layerScalar': return [1];
    case 'inputNorm': case 'mlpNorm': case 'attnOutNorm': case 'mlpOutNorm': return [h];
    case 'q': return [q, h];
    case 'k': case 'v': return [kv, h];
    case 'o': return [h, q];
    case 'qBias': return [q];
    case 'kBias': case 'vBias': return [kv];
    case 'qNorm': case 'kNorm': return [s.headDim];
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

export function perLayerInputShape(c: ModelConfig, role: PerLayerInputRole): number[] {
  const p = c.perLayerInput!, LP = c.numLayers * p.dim;
  switch (role) {
    case 'pleEmbed': return [p.vocab, LP];
    case 'pleModelProj': return [LP, c.hiddenSize];
    case 'pleProjNorm': return [p.dim];
  }
}

/**
 * Which roles layer l reads (the rest may be absent from the checkpoint). A KV-shared layer
 * (Gemma 4) has no K/V projection nor k-norm; with kEqV there is no v_proj.
 */
export function layerRolesFor(c: ModelConfig, l = 0): LayerRole[] {
  const shared = isKvShared(c, l), kEqV = layerShape(c, l).kEqV;
  const roles: LayerRole[] = ['inputNorm', 'q', ...(shared ? [] : kEqV ? ['k' as const] : ['k' as const, 'v' as const]), 'o', 'mlpNorm', 'gate', 'up', 'down'];
  if (c.attentionBias) roles.push('qBias', 'kBias', 'vBias');
  if (c.qkNorm) roles.push(...(shared ? ['qNorm' as const] : ['qNorm' as const, 'kNorm' as const]));
  if (c.postNorms) roles.push('attnOutNorm', 'mlpOutNorm');
  if (c.perLayerInput) roles.push('pleGate', 'pleProj', 'pleNorm');
  if (c.layerScalar) roles.push('layerScalar');
  return roles;
}
