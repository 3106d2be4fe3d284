// Idefics3 / SmolVLM (Idefics3ForConditionalGeneration): a Llama (SmolLM2) text model under
// `model.text_model.*` with its own `lm_head`, and its vision side from the shared pieces:
// a SigLIP tower under `model.vision_model.*` (src/vision/siglip.ts), the pixel-shuffle
// connector (`model.connector.*`), Idefics3ImageProcessor's tiling (split into tiles plus a
// global view, Lanczos; src/vision/preprocess.ts) and processing_idefics3's prompt layout
// (`<image>` -> per tile `<fake_token_around_image><row_R_col_C>` + N `<image>`; src/vision/prompt.ts).
import type { FamilySpec, LayerRole } from '../family.ts';
import type { ModelConfig } from '../config.ts';
import { llama } from './llama.ts';
import { normalizeIdefics3Vision, normalizeImageProcessor, type SiglipVisionConfig } from '../../vision/config.ts';
import type { VisionFamily } from '../../vision/family.ts';
import { preprocessRgba } from '../../vision/preprocess.ts';
import { IMAGE_TOKEN, imagePromptString } from '../../vision/prompt.ts';
import { planSiglipTower, visionTensors } from '../../vision/siglip.ts';

const vision: VisionFamily<SiglipVisionConfig> = {
  normalize: normalizeIdefics3Vision,
  tensors: visionTensors,
  processor: normalizeImageProcessor,
  preprocess: (img, p) => preprocessRgba(img, p),
  tokens: (im, v) => im.tiles * v.tokensPerTile,
  placeholder: () => IMAGE_TOKEN,
  expand: (im, v) => imagePromptString(im.rows, im.cols, v.tokensPerTile),
  planTower: planSiglipTower,
};

export const idefics3: FamilySpec = {
  modelTypes: ['idefics3'],
  normalize(raw, gen): ModelConfig {
    const text = { ...(raw.text_config ?? {}) };
    for (const k of ['vocab_size', 'tie_word_embeddings'] as const) if (raw[k] !== undefined) text[k] = raw[k];
    const c = llama.normalize(text, gen);
    return { ...c, modelType: 'idefics3', vision: vision.normalize(raw, c.hiddenSize) };
  },
  globalTensors: { embed: 'model.text_model.embed_tokens.weight', finalNorm: 'model.text_model.norm.weight', lmHead: 'lm_head.weight' },
  layerTensors: Object.fromEntries(Object.entries(llama.layerTensors).map(([r, n]) => [r, n!.replace('model.layers.', 'model.text_model.layers.')])) as Partial<Record<LayerRole, string>>,
  normGainOffset: 0,
  vision,
};
