// Qwen3-VL (Qwen3VLForConditionalGeneration, model_type qwen3_vl), as data: the Qwen3 text
// model (qwen3.ts: q/k norms, GQA, tied embeddings) under `model.language_model.*` with
// interleaved M-RoPE (text_config.rope_scaling.mrope_section), and its vision side: the
// Qwen3VLVisionModel tower under `model.visual.*` (Conv3d patches [C, T, p, p], learned
// position grid, LayerNorm blocks, the 2x2 patch merger and one DeepStack merger per tap),
// made of the shared pieces its VisionConfig names (src/vision/pieces.ts: tower 'qwen3_vl',
// processor 'qwen2_vl' = Qwen2VLImageProcessorFast, layout 'qwen_vl' = Qwen3VLProcessor's
// <|image_pad|> run with M-RoPE positions).
import type { ExtraTensor, FamilySpec, LayerRole } from '../family.ts';
import type { ModelConfig } from '../config.ts';
import type { Qwen3VisionConfig } from '../vision_config.ts';
import { qwen3 } from './qwen3.ts';
import { MalformedFileError } from '../../errors.ts';

const TEXT = 'model.language_model.';
export const VISUAL = 'model.visual.';

/** Qwen3VLConfig's vision side (Qwen3VLVisionConfig defaults for absent keys). */
export function normalizeQwen3Vision(raw: Record<string, any>, textHidden: number, mropeSection: [number, number, number]): Qwen3VisionConfig {
  const v = raw.vision_config ?? {};
  const act = v.hidden_act ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh') throw new MalformedFileError('config.json', `vision hidden_act '${act}' is not supported (only gelu_pytorch_tanh)`);
  const hidden = v.hidden_size ?? 1152, heads = v.num_heads ?? 16;
  if (hidden % heads) throw new MalformedFileError('config.json', 'vision hidden_size must be a multiple of num_heads');
  const headDim = hidden / heads;
  if (headDim % 4) throw new MalformedFileError('config.json', `vision head dim ${headDim} must be a multiple of 4 (2-D RoPE halves)`);
  const out = v.out_hidden_size ?? 3584;
  if (out !== textHidden) throw new MalformedFileError('config.json', `vision out_hidden_size ${out} must equal the text hidden_size ${textHidden}`);
  const positions = v.num_position_embeddings ?? 2304, side = Math.round(Math.sqrt(positions));
  if (side * side !== positions) throw new MalformedFileError('config.json', `num_position_embeddings ${positions} must be a square number`);
  const layers = v.depth ?? 27;
  const taps: number[] = v.deepstack_visual_indexes ?? [8, 16, 24];
  for (const t of taps) if (!(Number.isInteger(t) && t >= 0 && t < layers)) throw new MalformedFileError('config.json', `deepstack_visual_indexes holds ${t}, not a vision block below depth ${layers}`);
  if (new Set(taps).size !== taps.length) throw new MalformedFileError('config.json', 'deepstack_visual_indexes must not repeat a block');
  return {
    kind: 'qwen3_vl',
    hiddenSize: hidden,
    intermediateSize: v.intermediate_size ?? 4304,
    numLayers: layers,
    numHeads: heads,
    headDim,
    patchSize: v.patch_size ?? 16,
    numChannels: v.in_channels ?? 3,
    layerNormEps: 1e-6,
    imageTokenId: raw.image_token_id ?? 151655,
    textHidden,
    bidirectionalImages: false,
    deepstackLayers: taps.length,
    temporalPatch: v.temporal_patch_size ?? 2,
    mergeSize: v.spatial_merge_size ?? 2,
    positionSide: side,
    deepstackIndexes: [...taps],
    visionStartId: raw.vision_start_token_id ?? 151652,
    visionEndId: raw.vision_end_token_id ?? 151653,
    mropeSection,
    processor: 'qwen2_vl',
    layout: 'qwen_vl',
  };
}


/** Every tower tensor with its Qwen3VLModel name and stored shape; the linear weights (Conv3d as a GEMM included) are matmul weights, stored as the text projections are. */
export function qwen3VisionTensors(v: Qwen3VisionConfig): ExtraTensor[] {
  const D = v.hiddenSize, F = v.intermediateSize, C = v.numChannels, p = v.patchSize, T = v.temporalPatch, M = D * v.mergeSize ** 2, O = v.textHidden;
  const t: ExtraTensor[] = [
    { name: `${VISUAL}patch_embed.proj.weight`, shape: [D, C, T, p, p], kind: 'weight', fanIn: C * T * p * p, matmul: true },
    { name: `${VISUAL}patch_embed.proj.bias`, shape: [D], kind: 'bias' },
    { name: `${VISUAL}pos_embed.weight`, shape: [v.positionSide ** 2, D], kind: 'weight' },
  ];
  const ln = (n: string, d: number) => t.push({ name: `${n}.weight`, shape: [d], kind: 'norm' }, { name: `${n}.bias`, shape: [d], kind: 'bias' });
  const lin = (n: string, out: number, inp: number) => t.push({ name: `${n}.weight`, shape: [out, inp], kind: 'weight', matmul: true }, { name: `${n}.bias`, shape: [out], kind: 'bias' });
  for (let l = 0; l < v.numLayers; l++) {
    const b = `${VISUAL}blocks.${l}.`;
    ln(`${b}norm1`, D), ln(`${b}norm2`, D);
    lin(`${b}attn.qkv`, 3 * D, D), lin(`${b}attn.proj`, D, D);
    lin(`${b}mlp.linear_fc1`, F, D), lin(`${b}mlp.linear_fc2`, D, F);
  }
  const merger = (m: string, normWidth: number) => (ln(`${m}norm`, normWidth), lin(`${m}linear_fc1`, M, M), lin(`${m}linear_fc2`, O, M));
  merger(`${VISUAL}merger.`, D);
  v.deepstackIndexes.forEach((_, j) => merger(`${VISUAL}deepstack_merger_list.${j}.`, M));
  return t;
}


export const qwen3Vl: FamilySpec = {
  modelTypes: ['qwen3_vl'],
  normalize(raw, gen): ModelConfig {
    const text: Record<string, any> = { ...(raw.text_config ?? {}) };
    if (text.tie_word_embeddings === undefined && raw.tie_word_embeddings !== undefined) text.tie_word_embeddings = raw.tie_word_embeddings;
    // transformers >= 5 writes rope_parameters (with rope_theta inside); 4.57 writes rope_scaling.
    const rope = text.rope_scaling ?? text.rope_parameters ?? {};
    const type = rope.rope_type ?? rope.type ?? 'default';
    if (type !== 'default') throw new MalformedFileError('config.json', `qwen3_vl rope type '${type}' is not supported (default M-RoPE only)`);
    if (rope.mrope_interleaved === false) throw new MalformedFileError('config.json', 'mrope_interleaved=false (chunked M-RoPE, Qwen2-VL) is not supported');
    const section: [number, number, number] = rope.mrope_section ?? [24, 20, 20];
    const c = qwen3.normalize({ ...text, rope_theta: text.rope_theta ?? rope.rope_theta ?? 5000000, rope_scaling: null, rope_parameters: undefined }, gen);
    if (section.length !== 3 || section.reduce((a, b) => a + b, 0) !== c.headDim / 2) throw new MalformedFileError('config.json', `mrope_section ${JSON.stringify(section)} must be 3 numbers summing to head_dim / 2 = ${c.headDim / 2}`);
    const v = normalizeQwen3Vision(raw, c.hiddenSize, section);
    if (v.imageTokenId >= c.vocabSize) throw new MalformedFileError('config.json', `image_token_id ${v.imageTokenId} must be below the text vocab_size ${c.vocabSize}`);
    if (v.deepstackLayers > c.numLayers) throw new MalformedFileError('config.json', `${v.deepstackLayers} DeepStack taps need as many decoder layers (the model has ${c.numLayers})`);
    return { ...c, modelType: 'qwen3_vl', vision: v };
  },
  globalTensors: { embed: `${TEXT}embed_tokens.weight`, finalNorm: `${TEXT}norm.weight`, lmHead: 'lm_head.weight' },
  layerTensors: Object.fromEntries(Object.entries(qwen3.layerTensors).map(([r, n]) => [r, n!.replace('model.layers.', `${TEXT}layers.`)])) as Partial<Record<LayerRole, string>>,
  normGainOffset: 0,
  extraTensors: (c) => (c.vision?.kind === 'qwen3_vl' ? qwen3VisionTensors(c.vision) : []),
};
