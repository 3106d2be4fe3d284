// Normalized vision configuration of a VLM (Idefics3 / SmolVLM): the SigLIP tower, the
// pixel-shuffle connector, the image token, and the image processor settings
// (preprocessor_config.json). The vision code reads only these, never raw keys.

export interface VisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  headDim: number;
  /** Tile side in pixels the tower sees (512 for SmolVLM). */
  imageSize: number;
  patchSize: number;
  numChannels: number;
  layerNormEps: number;
  /** Pixel-shuffle factor of the connector (4 for SmolVLM-256M). */
  scaleFactor: number;
  /** Id of the `<image>` token whose embeddings the image features replace. */
  imageTokenId: number;
  /** Text hidden size the connector projects to. */
  textHidden: number;
  /** `<image>` tokens per tile: (imageSize / patch)^2 / scaleFactor^2 (64 for SmolVLM-256M). */
  tokensPerTile: number;
}

export interface ImageProcessorConfig {
  doResize: boolean;
  /** Longest edge the image is first resized to (size.longest_edge, 2048 for SmolVLM). */
  longestEdge: number;
  doSplit: boolean;
  /** Tile side (max_image_size.longest_edge, 512). */
  tileSize: number;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: [number, number, number];
  std: [number, number, number];
}

/** Patches per side of a tile. */
export function patchesPerSide(v: VisionConfig): number {
  return v.imageSize / v.patchSize;
}

/** Reads Idefics3's config.json (vision_config + scale_factor + image_token_id). */
export function normalizeIdefics3Vision(raw: Record<string, any>, textHidden: number): VisionConfig {
  const v = raw.vision_config ?? {};
  const act = v.hidden_act ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh' && act !== 'gelu_tanh') throw new Error(`vision hidden_act '${act}' is not supported (only gelu_pytorch_tanh)`);
  const hidden = v.hidden_size ?? 1152, heads = v.num_attention_heads ?? 16;
  const imageSize = v.image_size ?? 224, patch = v.patch_size ?? 32, scale = raw.scale_factor ?? 2;
  const side = imageSize / patch;
  if (!Number.isInteger(side) || side % scale) throw new Error(`vision image_size ${imageSize} / patch ${patch} must be a whole multiple of scale_factor ${scale}`);
  if (hidden % heads) throw new Error('vision hidden_size must be a multiple of num_attention_heads');
  return {
    hiddenSize: hidden,
    intermediateSize: v.intermediate_size ?? 3072,
    numLayers: v.num_hidden_layers ?? 12,
    numHeads: heads,
    headDim: hidden / heads,
    imageSize,
    patchSize: patch,
    numChannels: v.num_channels ?? 3,
    layerNormEps: v.layer_norm_eps ?? 1e-6,
    scaleFactor: scale,
    imageTokenId: raw.image_token_id ?? 128257,
    textHidden,
    tokensPerTile: (side * side) / (scale * scale),
  };
}

/** Reads preprocessor_config.json (Idefics3ImageProcessor keys); tile size defaults to the tower's image size. */
export function normalizeImageProcessor(raw: Record<string, any> | null, v: VisionConfig): ImageProcessorConfig {
  const r = raw ?? {};
  const tile = r.max_image_size?.longest_edge ?? v.imageSize;
  const three = (x: unknown, d: number): [number, number, number] => (Array.isArray(x) ? [x[0], x[1], x[2]] : typeof x === 'number' ? [x, x, x] : [d, d, d]);
  return {
    doResize: r.do_resize ?? true,
    longestEdge: r.size?.longest_edge ?? 4 * tile,
    doSplit: r.do_image_splitting ?? true,
    tileSize: tile,
    doRescale: r.do_rescale ?? true,
    rescaleFactor: r.rescale_factor ?? 1 / 255,
    doNormalize: r.do_normalize ?? true,
    mean: three(r.image_mean, 0.5),
    std: three(r.image_std, 0.5),
  };
}
