// Stage-aware calibration (POP's "virtual gates"). Each layer has two gates: one over the
// context (prompt) tokens and one over the token being predicted. A layer's importance for a
// stage is the rise in next-token loss when its gate is closed (its residual update dropped
// for those tokens), measured by ablation in the engine on a calibration text. The keep to
// recommend is then found by running POP itself at every keep and taking the smallest whose
// loss rise stays within the budget. Samples come from a token stream (text), or are given
// one by one, each optionally with images (VLMs: the context holds the expanded `<image>`
// tokens, the images are preprocessed once here and encoded by the engine on every pass).
import { InvalidArgumentError } from '../errors.ts';
import type { ImageInput } from '../vision/image_input.ts';
import type { PreprocessedImage } from '../vision/preprocess.ts';
import { preprocessImages } from '../vision/runtime.ts';
import type { Engine } from './engine.ts';
import type { PopCalibration } from './pop.ts';

/** One calibration sample: the loss is measured on `continuation` given `context` (and its images). */
export interface CalibrationSample {
  context: number[];
  continuation: number[];
  /** VLMs: one image per run of image tokens in `context`, in order. */
  images?: readonly (ImageInput | PreprocessedImage)[];
}

export interface CalibrationOptions {
  /** Allowed rise in mean next-token loss (nats) for the recommended keep. */
  budget?: number;
  /** Tokens predicted (teacher-forced) after each sample's context. */
  continuation?: number;
  /** Context tokens per sample. */
  context?: number;
}

export interface CalibrationReport extends PopCalibration {
  budget: number;
  samples: number;
  /** Samples that carried images. */
  imageSamples: number;
  contextTokens: number;
  predictedTokens: number;
  baseLoss: number;
  /** Per layer: loss rise with the context-token gate closed. */
  prefillImportance: number[];
  /** Per layer: loss rise with the predicted-token gate closed. */
  decodeImportance: number[];
  /** Loss rise of POP at each keep in 1..L. */
  popLoss: { keep: number; loss: number; delta: number }[];
}

function nll(logits: Float32Array, target: number): number {
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  let z = 0;
  for (const v of logits) z += Math.exp(v - m);
  return Math.log(z) + m - logits[target];
}

/** Splits a token stream into (context, continuation) samples. */
export function calibrationSamples(ids: readonly number[], context: number, continuation: number): { context: number[]; continuation: number[] }[] {
  const n = context + continuation;
  const out: { context: number[]; continuation: number[] }[] = [];
  for (let s = 0; s + n <= ids.length; s += n) out.push({ context: ids.slice(s, s + context), continuation: ids.slice(s + context, s + n) });
  if (out.length === 0 && ids.length >= 4) {
    const c = Math.max(2, Math.floor(ids.length * 0.75));
    out.push({ context: ids.slice(0, c), continuation: ids.slice(c) });
  }
  return out;
}

function isPreprocessed(x: unknown): x is PreprocessedImage {
  return typeof x === 'object' && x !== null && 'pixels' in x && 'tiles' in x && 'tileSize' in x;
}

/**
 * Calibrates POP on `input`: a token stream (split into up to 4 samples of `context` +
 * `continuation` tokens), or explicit samples (all of them are used; image samples need a VLM).
 */
export async function calibrate<T>(engine: Engine<T>, input: readonly number[] | readonly CalibrationSample[], o: CalibrationOptions = {}, onProgress?: (done: number, total: number) => void): Promise<CalibrationReport> {
  const L = engine.config.numLayers;
  const budget = o.budget ?? 0.01;
  const contextLen = Math.min(o.context ?? 96, engine.contextWindow - 1);
  const contLen = o.continuation ?? 16;
  let samples: CalibrationSample[];
  if (input.length > 0 && typeof input[0] === 'object') {
    samples = [];
    for (const [i, s] of (input as readonly CalibrationSample[]).entries()) {
      if (!s.context?.length || !s.continuation?.length) throw new InvalidArgumentError(`samples[${i}]`, 'needs at least one context and one continuation token');
      if (s.context.length + s.continuation.length > engine.contextWindow) throw new InvalidArgumentError(`samples[${i}]`, `${s.context.length + s.continuation.length} tokens exceed the context window ${engine.contextWindow}`);
      let images = s.images?.length ? s.images : undefined;
      if (images) {
        const rt = engine.vision;
        if (!rt) throw new InvalidArgumentError(`samples[${i}].images`, `model type '${engine.config.modelType}' is text-only: it does not accept images`);
        // Preprocess once: every pass below feeds the same tiles to the tower.
        if (!images.every(isPreprocessed)) images = await preprocessImages(images as readonly ImageInput[], rt);
      }
      samples.push({ context: [...s.context], continuation: [...s.continuation], images });
    }
  } else {
    const ids = input as readonly number[];
    samples = calibrationSamples(ids, contextLen, contLen).slice(0, 4);
    if (samples.length === 0) throw new InvalidArgumentError('calibration text', `needs at least 4 tokens (got ${ids.length})`);
  }

  const total = samples.length * (1 + 2 * L + (L - 1));
  let done = 0;
  /** Mean NLL of the continuation given the context, under a gate or a POP keep. */
  const loss = async (run: (s: CalibrationSample) => Promise<Float32Array[]>) => {
    let sum = 0, count = 0;
    for (const s of samples) {
      const logits = await run(s);
      // logits[i] predicts continuation[i] (logits[0] comes from the last context token).
      s.continuation.forEach((t, i) => ((sum += nll(logits[i], t)), count++));
      onProgress?.(++done, total);
    }
    return sum / count;
  };
  const feed = (s: CalibrationSample) => s.continuation.slice(0, -1);
  // The engine takes preprocessed images as well (it skips preprocessing for them).
  const imgs = (s: CalibrationSample) => s.images as readonly ImageInput[] | undefined;

  const baseLoss = await loss((s) => engine.teacherForced(s.context, feed(s), 'off', undefined, imgs(s)));
  const prefillImportance: number[] = [];
  const decodeImportance: number[] = [];
  for (let l = 0; l < L; l++) {
    prefillImportance.push((await loss((s) => engine.teacherForced(s.context, feed(s), 'off', { layer: l, stage: 'prefill' }, imgs(s)))) - baseLoss);
    decodeImportance.push((await loss((s) => engine.teacherForced(s.context, feed(s), 'off', { layer: l, stage: 'decode' }, imgs(s)))) - baseLoss);
  }
  const popLoss = [{ keep: L, loss: baseLoss, delta: 0 }];
  // DeepStack (Qwen3-VL) adds image features after its first layers: image prompts need keep >= their count.
  const minKeep = samples.some((s) => s.images?.length) ? Math.max(1, engine.vision?.config.deepstackLayers ?? 0) : 1;
  for (let keep = L - 1; keep >= minKeep; keep--) {
    const lk = await loss((s) => engine.teacherForced(s.context, feed(s), keep, undefined, imgs(s)));
    popLoss.push({ keep, loss: lk, delta: lk - baseLoss });
  }
  popLoss.sort((a, b) => a.keep - b.keep);
  // The smallest keep whose rise stays within budget, and every deeper keep does too.
  let recommended = L;
  for (let keep = L; keep >= minKeep; keep--) {
    if (popLoss[keep - minKeep].delta <= budget) recommended = keep;
    else break;
  }
  return {
    keep: recommended, layers: L, budget, samples: samples.length, imageSamples: samples.filter((s) => s.images?.length).length,
    contextTokens: samples.reduce((a, s) => a + s.context.length, 0),
    predictedTokens: samples.reduce((a, s) => a + s.continuation.length, 0),
    baseLoss, prefillImportance, decodeImportance, popLoss,
  };
}
