// Gemma 3 multimodal (Gemma3ForConditionalGeneration, model_type gemma3): the Gemma 3 text
// model (gemma3.ts) under `model.language_model.*`, a SigLIP tower under
// `model.vision_tower.vision_model.*` and Gemma3MultiModalProjector
// (`model.multi_modal_projector.*`: average pool -> (1+w) RMSNorm -> x @ W, W [D, textHidden]).
// Older checkpoints (the released google/gemma-3-*-it) store `language_model.model.*`,
// `vision_tower.*` and `multi_modal_projector.*`: read through checkpointAliases, as
// transformers' _checkpoint_conversion_mapping does. The LM head is tied to the embeddings.
// text_config and vision_config leave most keys out: Gemma3TextConfig's and
// SiglipVisionConfig's defaults fill them. Image tokens of one image attend to each other
// bidirectionally during prefill (VisionConfig.bidirectionalImages).
import type { FamilySpec, LayerRole } from '../family.ts';
import type { ModelConfig } from '../config.ts';
import { gemma3Text } from './gemma3.ts';
import { normalizeGemma3Vision } from '../vision_config.ts';
import { visionTensors } from './siglip_tensors.ts';
import { MalformedFileError } from '../../errors.ts';

const TEXT = 'model.language_model.';

export const gemma3: FamilySpec = {
  modelTypes: ['gemma3'],
  normalize(raw, gen): ModelConfig {
    // Keys a checkpoint sets on the wrapper only (eos [1, 106] on gemma-3-4b-it) reach the text model.
    const text: Record<string, any> = { ...(raw.text_config ?? {}), model_type: 'gemma3_text' };
    for (const k of ['bos_token_id', 'eos_token_id', 'tie_word_embeddings'] as const) if (text[k] === undefined && raw[k] !== undefined) text[k] = raw[k];
    const c = gemma3Text.normalize(text, gen);
    const vision = normalizeGemma3Vision(raw, c.hiddenSize);
    if (vision.imageTokenId >= c.vocabSize) throw new MalformedFileError('config.json', `image_token_index ${vision.imageTokenId} must be below the text vocab_size ${c.vocabSize}`);
    // The attention kernels apply a sliding window relative to each row, so an image run longer
    // than the window would lose keys HF's mask keeps (it ORs the image block over the window).
    const window = Math.min(...c.slidingWindow.filter((w) => w > 0));
    if (vision.tokensPerTile > window) throw new MalformedFileError('config.json', `mm_tokens_per_image ${vision.tokensPerTile} must not exceed sliding_window ${window}`);
    return { ...c, modelType: 'gemma3', vision };
  },
  globalTensors: { embed: `${TEXT}embed_tokens.weight`, finalNorm: `${TEXT}norm.weight`, lmHead: 'lm_head.weight' },
  layerTensors: Object.fromEntries(Object.entries(gemma3Text.layerTensors).map(([r, n]) => [r, n!.replace('model.layers.', `${TEXT}layers.`)])) as Partial<Record<LayerRole, string>>,
  normGainOffset: 1,
  extraTensors: (c) => (c.vision?.kind === 'siglip' ? visionTensors(c.vision) : []),
  checkpointAliases: [
    [TEXT, 'language_model.model.'],
    ['model.vision_tower.', 'vision_tower.'],
    ['model.multi_modal_projector.', 'multi_modal_projector.'],
    ['lm_head.', 'language_model.lm_head.'],
  ],
};
