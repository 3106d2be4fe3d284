// Qwen3-VL (Qwen3VLForConditionalGeneration, model_type qwen3_vl): the Qwen3 text model
// (qwen3.ts: q/k norms, GQA, tied embeddings) under `model.language_model.*`, with interleaved
// M-RoPE (text_config.rope_scaling.mrope_section; image tokens take 3-D positions from their
// grid, src/vision/mrope.ts), and its vision side from the shared pieces in
// src/vision/qwen3_vl.ts: the Qwen3VLVisionModel tower under `model.visual.*` (Conv3d patches,
// interpolated position embeddings, 2-D vision RoPE, 2x2 patch merger, DeepStack mergers whose
// features the first decoder layers add at the image rows), Qwen2VLImageProcessorFast's
// preprocessing and Qwen3VLProcessor's prompt layout (one <|image_pad|> per merged patch).
import type { FamilySpec, LayerRole } from '../family.ts';
import type { ModelConfig } from '../config.ts';
import { qwen3 } from './qwen3.ts';
import type { Qwen3VisionConfig } from '../../vision/config.ts';
import type { VisionFamily } from '../../vision/family.ts';
import { mropePositions } from '../../vision/mrope.ts';
import { QWEN_IMAGE_PAD, normalizeQwen2VLProcessor, normalizeQwen3Vision, planQwen3Tower, preprocessQwen2VL, qwen3VisionTensors } from '../../vision/qwen3_vl.ts';

const TEXT = 'model.language_model.';

const vision: VisionFamily<Qwen3VisionConfig> = {
  normalize: () => {
    throw new Error('qwen3_vl: the vision config is read with the text config (mrope_section)');
  },
  tensors: qwen3VisionTensors,
  processor: normalizeQwen2VLProcessor,
  preprocess: preprocessQwen2VL,
  tokens: (im, v) => (im.grid ? (im.grid.h * im.grid.w) / v.mergeSize ** 2 : 0),
  placeholder: () => QWEN_IMAGE_PAD,
  expand: (im, v) => QWEN_IMAGE_PAD.repeat(vision.tokens(im, v)),
  planTower: planQwen3Tower,
  ropePositions: (prompt, images, v) => mropePositions(prompt, v.imageTokenId, images.map((im) => ({ h: im.grid!.h / v.mergeSize, w: im.grid!.w / v.mergeSize }))),
};

export const qwen3Vl: FamilySpec = {
  modelTypes: ['qwen3_vl'],
  normalize(raw, gen): ModelConfig {
    const text: Record<string, any> = { ...(raw.text_config ?? {}) };
    if (text.tie_word_embeddings === undefined && raw.tie_word_embeddings !== undefined) text.tie_word_embeddings = raw.tie_word_embeddings;
    // transformers >= 5 writes rope_parameters (with rope_theta inside); 4.57 writes rope_scaling.
    const rope = text.rope_scaling ?? text.rope_parameters ?? {};
    const type = rope.rope_type ?? rope.type ?? 'default';
    if (type !== 'default') throw new Error(`qwen3_vl rope type '${type}' is not supported (default M-RoPE only)`);
    if (rope.mrope_interleaved === false) throw new Error('mrope_interleaved=false (chunked M-RoPE, Qwen2-VL) is not supported');
    const section: [number, number, number] = rope.mrope_section ?? [24, 20, 20];
    const c = qwen3.normalize({ ...text, rope_theta: text.rope_theta ?? rope.rope_theta ?? 5000000, rope_scaling: null, rope_parameters: undefined }, gen);
    if (section.length !== 3 || section.reduce((a, b) => a + b, 0) !== c.headDim / 2) throw new Error(`mrope_section ${JSON.stringify(section)} must be 3 numbers summing to head_dim / 2 = ${c.headDim / 2}`);
    const v = normalizeQwen3Vision(raw, c.hiddenSize, section);
    if (v.imageTokenId >= c.vocabSize) throw new Error(`image_token_id ${v.imageTokenId} must be below the text vocab_size ${c.vocabSize}`);
    if (v.deepstackLayers > c.numLayers) throw new Error(`${v.deepstackLayers} DeepStack taps need as many decoder layers (the model has ${c.numLayers})`);
    return { ...c, modelType: 'qwen3_vl', vision: v };
  },
  globalTensors: { embed: `${TEXT}embed_tokens.weight`, finalNorm: `${TEXT}norm.weight`, lmHead: 'lm_head.weight' },
  layerTensors: Object.fromEntries(Object.entries(qwen3.layerTensors).map(([r, n]) => [r, n!.replace('model.layers.', `${TEXT}layers.`)])) as Partial<Record<LayerRole, string>>,
  normGainOffset: 0,
  vision,
};
