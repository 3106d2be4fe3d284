import { MalformedFileError } from '../errors.ts';
// Normalized vision configuration of a VLM: the SigLIP tower, the connector that turns its
// patches into image tokens, the image token and prompt format, and the image processor
// settings (preprocessor_config.json). Two families fill it:
//   - Idefics3 / SmolVLM: pixel-shuffle connector, tiled images (split + global view);
//   - Gemma 3 (Gemma3ForConditionalGeneration): average-pool projector with an RMSNorm,
//     one square image per `<start_of_image>`, image tokens bidirectional within an image.
// The vision code reads only these, never raw keys; tensor names are part of the data.

/** How tower patches become image tokens (and which checkpoint tensors hold the connector). */
export type VisionConnector =
  /** Idefics3: pixel shuffle by `scaleFactor`, then `weight` [textHidden, D s^2]. */
  | { kind: 'pixel_shuffle'; scaleFactor: number; weight: string }
  /**
   * Gemma3MultiModalProjector: average pool of `kernel` x `kernel` patches, RMSNorm with
   * (1 + w) gain `norm` (eps `normEps`), then x @ `weight` stored [D, textHidden].
   */
  | { kind: 'avg_pool'; kernel: number; norm: string; normEps: number; weight: string };

/** What every vision tower config has (the rest is the tower's own: SigLIP, Qwen3-VL). */
export interface VisionConfigBase {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  headDim: number;
  patchSize: number;
  numChannels: number;
  layerNormEps: number;
  /** Id of the image token whose embeddings the image features replace. */
  imageTokenId: number;
  /** Text hidden size the connector projects to. */
  textHidden: number;
  /**
   * Gemma 3: during prefill the image tokens of one image (one contiguous run of them) attend
   * to each other in both directions (token_type_ids mask); text stays causal.
   */
  bidirectionalImages: boolean;
  /** DeepStack (Qwen3-VL): decoder layers [0, n) add the tower's tap features at the image rows (0: none). */
  deepstackLayers: number;
  /**
   * The shared vision pieces the family is made of (src/vision/pieces.ts), besides its tower
   * (`kind`): the image processor, and how an image's tokens sit in the prompt (and take positions).
   */
  processor: 'idefics3' | 'gemma3' | 'qwen2_vl';
  layout: 'idefics3' | 'gemma3' | 'qwen_vl';
}

/** SigLIP towers on fixed square tiles (Idefics3 / SmolVLM, Gemma 3). */
export interface SiglipVisionConfig extends VisionConfigBase {
  kind: 'siglip';
  /** Tile side in pixels the tower sees (512 for SmolVLM, 896 for Gemma 3). */
  imageSize: number;
  /** Checkpoint name prefix of the SigLIP tower ('model.vision_model.', 'model.vision_tower.vision_model.'). */
  towerPrefix: string;
  connector: VisionConnector;
  /** Image tokens per tile (64 for SmolVLM-256M, mm_tokens_per_image = 256 for Gemma 3). */
  tokensPerTile: number;
  /** How an image placeholder in the text expands (src/vision/prompt.ts). */
  prompt: 'idefics3' | 'gemma3';
}

/**
 * Qwen3-VL's tower (Qwen3VLVisionModel): Conv3d patches of temporalPatch x patch x patch on a
 * grid the processor chose per image, learned position embeddings interpolated to that grid,
 * 2-D vision RoPE, LayerNorm blocks, a 2x2 patch merger into the text width, and DeepStack
 * taps. Tensor names are Qwen3VLModel's (`model.visual.*`).
 */
export interface Qwen3VisionConfig extends VisionConfigBase {
  kind: 'qwen3_vl';
  temporalPatch: number;
  mergeSize: number;
  /** Learned position embeddings: a side x side grid (num_position_embeddings = side^2). */
  positionSide: number;
  /** Vision blocks whose outputs feed the DeepStack mergers, in order (need not be contiguous). */
  deepstackIndexes: number[];
  visionStartId: number;
  visionEndId: number;
  /** Text M-RoPE: frequency pairs per axis (t, h, w), interleaved as mrope_interleaved says. */
  mropeSection: [number, number, number];
}

export type VisionConfig = SiglipVisionConfig | Qwen3VisionConfig;

/** PIL resampling filters the processors use (PIL codes: 1 LANCZOS, 2 BILINEAR, 3 BICUBIC). */
export type Resample = 'lanczos' | 'bilinear' | 'bicubic';

export interface ImageProcessorConfig {
  doResize: boolean;
  /** Longest edge the image is first resized to (size.longest_edge, 2048 for SmolVLM). */
  longestEdge: number;
  /** Qwen2-VL processors: smart_resize bounds (size.shortest_edge / longest_edge, in pixels). */
  minPixels?: number;
  maxPixels?: number;
  /** Idefics3's tiling; false = the image is resized to one square tile (Gemma 3). */
  doSplit: boolean;
  /** Tile side (max_image_size.longest_edge, 512; Gemma 3: size.height = 896). */
  tileSize: number;
  resample: Resample;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: [number, number, number];
  std: [number, number, number];
}

/** Patches per side of a tile. */
export function patchesPerSide(v: SiglipVisionConfig): number {
  return v.imageSize / v.patchSize;
}

/** The SigLIP tower keys, with the given defaults where a config leaves them out. */
function siglipTower(v: Record<string, any>, d: { hidden: number; inter: number; layers: number; heads: number; imageSize: number; patch: number }) {
  const act = v.hidden_act ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh' && act !== 'gelu_tanh') throw new MalformedFileError('config.json', `vision hidden_act '${act}' is not supported (only gelu_pytorch_tanh)`);
  const hidden = v.hidden_size ?? d.hidden, heads = v.num_attention_heads ?? d.heads;
  if (hidden % heads) throw new MalformedFileError('config.json', 'vision hidden_size must be a multiple of num_attention_heads');
  const imageSize = v.image_size ?? d.imageSize, patch = v.patch_size ?? d.patch;
  if (!Number.isInteger(imageSize / patch)) throw new MalformedFileError('config.json', `vision image_size ${imageSize} must be a multiple of patch_size ${patch}`);
  return {
    hiddenSize: hidden,
    intermediateSize: v.intermediate_size ?? d.inter,
    numLayers: v.num_hidden_layers ?? d.layers,
    numHeads: heads,
    headDim: hidden / heads,
    imageSize,
    patchSize: patch,
    numChannels: v.num_channels ?? 3,
    layerNormEps: v.layer_norm_eps ?? 1e-6,
  };
}

/** Reads Idefics3's config.json (vision_config + scale_factor + image_token_id); Idefics3VisionConfig defaults. */
export function normalizeIdefics3Vision(raw: Record<string, any>, textHidden: number): SiglipVisionConfig {
  const tower = siglipTower(raw.vision_config ?? {}, { hidden: 1152, inter: 3072, layers: 12, heads: 16, imageSize: 224, patch: 32 });
  const scale = raw.scale_factor ?? 2;
  const side = tower.imageSize / tower.patchSize;
  if (side % scale) throw new MalformedFileError('config.json', `vision image_size ${tower.imageSize} / patch ${tower.patchSize} must be a whole multiple of scale_factor ${scale}`);
  return {
    ...tower,
    kind: 'siglip',
    processor: 'idefics3',
    layout: 'idefics3',
    deepstackLayers: 0,
    towerPrefix: 'model.vision_model.',
    connector: { kind: 'pixel_shuffle', scaleFactor: scale, weight: 'model.connector.modality_projection.proj.weight' },
    imageTokenId: raw.image_token_id ?? 128257,
    textHidden,
    tokensPerTile: (side * side) / (scale * scale),
    prompt: 'idefics3',
    bidirectionalImages: false,
  };
}

/**
 * Reads Gemma3Config's vision side: vision_config with SiglipVisionConfig's defaults,
 * mm_tokens_per_image (default 256) and image_token_index (default 262144). The projector
 * pools (image_size / patch) / sqrt(mm_tokens_per_image) patches per side; its RMSNorm uses
 * the tower's layer_norm_eps. Names are the newer layout (model.vision_tower.*,
 * model.multi_modal_projector.*); the family maps the older one onto them.
 */
export function normalizeGemma3Vision(raw: Record<string, any>, textHidden: number): SiglipVisionConfig {
  const v = raw.vision_config ?? {};
  if (v.vision_use_head) throw new MalformedFileError('config.json', 'vision_use_head=true (SigLIP attention-pooling head) is not used by Gemma 3 and is not supported');
  const tower = siglipTower(v, { hidden: 768, inter: 3072, layers: 12, heads: 12, imageSize: 224, patch: 16 });
  const tokens = raw.mm_tokens_per_image ?? 256;
  const perSide = Math.round(Math.sqrt(tokens)), side = tower.imageSize / tower.patchSize;
  if (perSide * perSide !== tokens) throw new MalformedFileError('config.json', `mm_tokens_per_image ${tokens} must be a square number`);
  if (side % perSide) throw new MalformedFileError('config.json', `vision patches per side ${side} must be a multiple of sqrt(mm_tokens_per_image) = ${perSide}`);
  return {
    ...tower,
    kind: 'siglip',
    processor: 'gemma3',
    layout: 'gemma3',
    deepstackLayers: 0,
    towerPrefix: 'model.vision_tower.vision_model.',
    connector: { kind: 'avg_pool', kernel: side / perSide, norm: 'model.multi_modal_projector.mm_soft_emb_norm.weight', normEps: tower.layerNormEps, weight: 'model.multi_modal_projector.mm_input_projection_weight' },
    imageTokenId: raw.image_token_index ?? raw.image_token_id ?? 262144,
    textHidden,
    tokensPerTile: tokens,
    prompt: 'gemma3',
    bidirectionalImages: true,
  };
}

const RESAMPLE: Record<number, Resample> = { 1: 'lanczos', 2: 'bilinear', 3: 'bicubic' };

export function resampleOf(code: unknown, fallback: Resample): Resample {
  if (code === undefined || code === null) return fallback;
  const r = RESAMPLE[code as number];
  if (!r) throw new MalformedFileError('config.json', `resample ${JSON.stringify(code)} is not supported (1 LANCZOS, 2 BILINEAR, 3 BICUBIC)`);
  return r;
}

export const three = (x: unknown, d: number): [number, number, number] => (Array.isArray(x) ? [x[0], x[1], x[2]] : typeof x === 'number' ? [x, x, x] : [d, d, d]);

/**
 * Reads preprocessor_config.json for the model's processor (null: the processor's defaults
 * at the tower's image size). Idefics3ImageProcessor: tiling keys, Lanczos. Gemma3ImageProcessor:
 * size {height, width} (must equal the tower's image_size), bilinear, no pan-and-scan.
 * Throws Error (the caller names the file) for settings the runtime cannot follow.
 */
export function normalizeImageProcessor(raw: Record<string, any> | null, v: SiglipVisionConfig): ImageProcessorConfig {
  const r = raw ?? {};
  const common = {
    doRescale: r.do_rescale ?? true,
    rescaleFactor: r.rescale_factor ?? 1 / 255,
    doNormalize: r.do_normalize ?? true,
    mean: three(r.image_mean, 0.5),
    std: three(r.image_std, 0.5),
  };
  if (v.prompt === 'gemma3') {
    if (r.do_pan_and_scan) throw new MalformedFileError('config.json', 'do_pan_and_scan=true is not supported (one view per image)');
    const size = r.size ?? { height: v.imageSize, width: v.imageSize };
    const h = size.height ?? size.shortest_edge, w = size.width ?? size.shortest_edge;
    if (h !== v.imageSize || w !== v.imageSize) throw new MalformedFileError('config.json', `size ${JSON.stringify(size)} must be ${v.imageSize} x ${v.imageSize} (vision_config.image_size)`);
    return { ...common, doResize: r.do_resize ?? true, longestEdge: v.imageSize, doSplit: false, tileSize: v.imageSize, resample: resampleOf(r.resample, 'bilinear') };
  }
  const tile = r.max_image_size?.longest_edge ?? v.imageSize;
  if (tile !== v.imageSize) throw new MalformedFileError('config.json', `max_image_size.longest_edge ${tile} must equal vision_config.image_size ${v.imageSize}`);
  return {
    ...common,
    doResize: r.do_resize ?? true,
    longestEdge: r.size?.longest_edge ?? 4 * tile,
    doSplit: r.do_image_splitting ?? true,
    tileSize: tile,
    resample: resampleOf(r.resample, 'lanczos'),
  };
}
