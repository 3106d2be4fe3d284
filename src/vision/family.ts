// A VLM's vision behaviour, assembled from the shared pieces its config names
// (src/vision/pieces.ts: tower = VisionConfig.kind, image processor, prompt layout). The family
// file (src/model/families/) is data: its config normalization puts those names and the tower's
// numbers into ModelConfig.vision, its extraTensors name the checkpoint tensors. The engine,
// the API and the CLI reach a VLM only through this object (src/vision/runtime.ts wraps it).
import type { WeightRoutes } from '../model/loader.ts';
import type { Ops } from '../ops/ops.ts';
import type { ImageProcessorConfig, VisionConfig } from '../model/vision_config.ts';
import type { PreprocessedImage, RgbaImage } from './preprocess.ts';
import type { QuantScheme } from '../core/quant.ts';

/**
 * How a tower stores the weights its family marks as matmul weights (ExtraTensor.matmul):
 * as the load stores the text projections (EngineOptions quantization / weightDtype 'f16').
 * Towers without such marks keep everything f32.
 */
export interface TowerStorage {
  quant?: QuantScheme | null;
  half?: boolean;
}

/** A loaded tower + connector on a device. */
export interface VisionTower<T> {
  /**
   * Encodes one preprocessed image: its `tokens` feature rows go to rows outRow.. of `out`
   * ([*, textHidden]); DeepStack towers write their tap features to the same rows of
   * `deepstack[j]` (one buffer per decoder layer that adds them).
   */
  encode(image: PreprocessedImage, out: T, outRow: number, deepstack: readonly T[]): void;
  /** Every device tensor it holds (memory accounting). */
  tensors(): T[];
  free(): void;
}

/** 3-D M-RoPE positions of a prompt (t, h, w per token) and where text continues after it. */
export interface RopePositions {
  t: Int32Array;
  h: Int32Array;
  w: Int32Array;
  /** Position of the token after the prompt (its max + 1); decode continues from there. */
  next: number;
}

export interface VisionFamily<V extends VisionConfig = VisionConfig> {
  /** preprocessor_config.json (null: the processor's defaults); throws Error for settings it cannot follow. */
  processor(raw: Record<string, any> | null, v: V): ImageProcessorConfig;
  /** Decoded RGBA -> what the tower takes, with the number of image tokens it fills. */
  preprocess(img: RgbaImage, p: ImageProcessorConfig, v: V): PreprocessedImage;
  /** Image tokens (rows of features) this image fills. */
  tokens(image: PreprocessedImage, v: V): number;
  /** What marks an image in the templated text (the chat template writes it for an image item). */
  placeholder(v: V): string;
  /** The text that replaces the placeholder of this image (its image tokens and markers). */
  expand(image: PreprocessedImage, v: V): string;
  /** Declares the streamed tower weights on the loader's plan; the step returned builds the tower once all are in. */
  planTower<T>(p: WeightRoutes<T>, v: V, store?: TowerStorage): (ops: Ops<T>) => VisionTower<T>;
  /** M-RoPE families: the prompt's 3-D positions (image tokens by their grid); absent = 1-D positions. */
  ropePositions?(prompt: readonly number[], images: readonly PreprocessedImage[], v: V): RopePositions;
}
