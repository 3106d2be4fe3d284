// The SigLIP tower's and its connector's checkpoint tensors, named from the VisionConfig (the
// VLM families' data: tower prefix, connector names). The loader checks them and random
// fixtures draw them; src/vision/siglip.ts routes them to the device.
import type { ExtraTensor } from '../family.ts';
import { patchesPerSide, type SiglipVisionConfig as VisionConfig } from '../vision_config.ts';

/** Every vision and connector tensor with its HF name and shape (as stored in the checkpoint). */
export function visionTensors(v: VisionConfig): ExtraTensor[] {
  const D = v.hiddenSize, F = v.intermediateSize, C = v.numChannels, p = v.patchSize, n = patchesPerSide(v);
  const V = v.towerPrefix;
  const t: ExtraTensor[] = [
    { name: `${V}embeddings.patch_embedding.weight`, shape: [D, C, p, p], kind: 'weight', fanIn: C * p * p },
    { name: `${V}embeddings.patch_embedding.bias`, shape: [D], kind: 'bias' },
    { name: `${V}embeddings.position_embedding.weight`, shape: [n * n, D], kind: 'weight' },
  ];
  for (let l = 0; l < v.numLayers; l++) {
    const e = `${V}encoder.layers.${l}.`;
    for (const ln of ['layer_norm1', 'layer_norm2']) t.push({ name: `${e}${ln}.weight`, shape: [D], kind: 'norm' }, { name: `${e}${ln}.bias`, shape: [D], kind: 'bias' });
    for (const pr of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) t.push({ name: `${e}self_attn.${pr}.weight`, shape: [D, D], kind: 'weight' }, { name: `${e}self_attn.${pr}.bias`, shape: [D], kind: 'bias' });
    t.push({ name: `${e}mlp.fc1.weight`, shape: [F, D], kind: 'weight' }, { name: `${e}mlp.fc1.bias`, shape: [F], kind: 'bias' });
    t.push({ name: `${e}mlp.fc2.weight`, shape: [D, F], kind: 'weight' }, { name: `${e}mlp.fc2.bias`, shape: [D], kind: 'bias' });
  }
  t.push({ name: `${V}post_layernorm.weight`, shape: [D], kind: 'norm' }, { name: `${V}post_layernorm.bias`, shape: [D], kind: 'bias' });
  const cn = v.connector;
  if (cn.kind === 'pixel_shuffle') t.push({ name: cn.weight, shape: [v.textHidden, D * cn.scaleFactor ** 2], kind: 'weight' });
  else t.push({ name: cn.norm, shape: [D], kind: 'norm', normOffset: 1 }, { name: cn.weight, shape: [D, v.textHidden], kind: 'weight', fanIn: D });
  return t;
}
