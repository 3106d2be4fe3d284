// Idefics3 / SmolVLM (Idefics3ForConditionalGeneration): a Llama (SmolLM2) text model under
// `model.text_model.*` with its own `lm_head`, a SigLIP vision tower under
// `model.vision_model.*` and a pixel-shuffle connector (`model.connector.*`). The text part
// maps like llama; the vision config lands in ModelConfig.vision (src/vision/).
import type { FamilySpec, LayerRole } from '../family.ts';
import type { ModelConfig } from '../config.ts';
import { llama } from './llama.ts';
import { normalizeIdefics3Vision } from '../vision_config.ts';
import { visionTensors } from './siglip_tensors.ts';

export const idefics3: FamilySpec = {
  modelTypes: ['idefics3'],
  normalize(raw, gen): ModelConfig {
    const text = { ...(raw.text_config ?? {}) };
    for (const k of ['vocab_size', 'tie_word_embeddings'] as const) if (raw[k] !== undefined) text[k] = raw[k];
    const c = llama.normalize(text, gen);
    return { ...c, modelType: 'idefics3', vision: normalizeIdefics3Vision(raw, c.hiddenSize) };
  },
  globalTensors: { embed: 'model.text_model.embed_tokens.weight', finalNorm: 'model.text_model.norm.weight', lmHead: 'lm_head.weight' },
  layerTensors: Object.fromEntries(Object.entries(llama.layerTensors).map(([r, n]) => [r, n!.replace('model.layers.', 'model.text_model.layers.')])) as Partial<Record<LayerRole, string>>,
  normGainOffset: 0,
  extraTensors: (c) => (c.vision?.kind === 'siglip' ? visionTensors(c.vision) : []),
};
