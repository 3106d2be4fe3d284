// The shared vision pieces a VLM family is made of, by the names its VisionConfig gives
// (src/model/vision_config.ts): the tower + connector (`kind`), the image processor
// (`processor`) and the prompt layout (`layout`). visionFamilyOf assembles them into the
// VisionFamily the engine, API and CLI use. A new VLM that reuses pieces needs none of this
// file; a new piece is its module plus one line in its table here.
import type { ImageProcessorConfig, VisionConfig } from '../model/vision_config.ts';
import { normalizeImageProcessor } from '../model/vision_config.ts';
import type { VisionFamily } from './family.ts';
import { mropePositions } from './mrope.ts';
import { preprocessRgba, type PreprocessedImage, type RgbaImage } from './preprocess.ts';
import { GEMMA3_BOI_TOKEN, gemma3ImageString, IMAGE_TOKEN, imagePromptString } from './prompt.ts';
import { normalizeQwen2VLProcessor, planQwen3Tower, preprocessQwen2VL, QWEN_IMAGE_PAD } from './qwen3_vl.ts';
import { planSiglipTower } from './siglip.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- each table entry reads its own config kind */
type Any = any;

const TOWERS: Record<VisionConfig['kind'], VisionFamily<Any>['planTower']> = {
  siglip: planSiglipTower,
  qwen3_vl: planQwen3Tower,
};

interface Processor {
  read(raw: Record<string, any> | null, v: Any): ImageProcessorConfig;
  preprocess(img: RgbaImage, p: ImageProcessorConfig, v: Any): PreprocessedImage;
}

const PROCESSORS: Record<VisionConfig['processor'], Processor> = {
  /** Idefics3ImageProcessor: tiles + global view, Lanczos. */
  idefics3: { read: normalizeImageProcessor, preprocess: (img, p) => preprocessRgba(img, p) },
  /** Gemma3ImageProcessor: one square view, bilinear. */
  gemma3: { read: normalizeImageProcessor, preprocess: (img, p) => preprocessRgba(img, p) },
  /** Qwen2VLImageProcessorFast: smart_resize, torchvision bicubic on uint8, flattened patches. */
  qwen2_vl: { read: normalizeQwen2VLProcessor, preprocess: preprocessQwen2VL },
};

type Layout = Pick<VisionFamily<Any>, 'tokens' | 'placeholder' | 'expand' | 'ropePositions'>;

const qwenTokens = (im: PreprocessedImage, v: Any) => (im.grid ? (im.grid.h * im.grid.w) / v.mergeSize ** 2 : 0);

const LAYOUTS: Record<VisionConfig['layout'], Layout> = {
  /** processing_idefics3: per tile <fake_token_around_image><row_R_col_C> + N <image>, then the global view. */
  idefics3: { tokens: (im, v) => im.tiles * v.tokensPerTile, placeholder: () => IMAGE_TOKEN, expand: (im, v) => imagePromptString(im.rows, im.cols, v.tokensPerTile) },
  /** processing_gemma3: "\n\n<start_of_image>" + N <image_soft_token> + "<end_of_image>\n\n". */
  gemma3: { tokens: (im, v) => im.tiles * v.tokensPerTile, placeholder: () => GEMMA3_BOI_TOKEN, expand: (_im, v) => gemma3ImageString(v.tokensPerTile) },
  /** Qwen3VLProcessor: <|image_pad|> x (merged grid) inside the template's <|vision_start|> .. <|vision_end|>; M-RoPE positions. */
  qwen_vl: {
    tokens: qwenTokens,
    placeholder: () => QWEN_IMAGE_PAD,
    expand: (im, v) => QWEN_IMAGE_PAD.repeat(qwenTokens(im, v)),
    ropePositions: (prompt, images, v) => mropePositions(prompt, v.imageTokenId, images.map((im) => ({ h: im.grid!.h / v.mergeSize, w: im.grid!.w / v.mergeSize }))),
  },
};

/** The VisionFamily a config's pieces make. */
export function visionFamilyOf(v: VisionConfig): VisionFamily {
  const p = PROCESSORS[v.processor];
  return { ...LAYOUTS[v.layout], planTower: TOWERS[v.kind], processor: p.read, preprocess: p.preprocess };
}
