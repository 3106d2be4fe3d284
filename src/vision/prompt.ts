// Prompt expansion: each image placeholder in the (templated) text becomes the image's token
// sequence, as the family's HF processor writes it. The image features then fill the image
// token ids in prompt order.
//
// Idefics3 / SmolVLM (processing_idefics3): the placeholder is `<image>`; for a split image
// (rows x cols tiles)
//   per row: per col `<fake_token_around_image><row_R_col_C>` + `<image>` x N, then "\n";
//   then "\n<fake_token_around_image><global-img>" + `<image>` x N + `<fake_token_around_image>`
// and for a single tile `<fake_token_around_image><global-img>` + `<image>` x N + `<fake_token_around_image>`,
// with N = tokensPerTile (64 for SmolVLM-256M); features: tiles row-major, then the global view.
//
// Gemma 3 (processing_gemma3, pan-and-scan off): the placeholder is the begin-of-image token
// `<start_of_image>` (what the chat template writes for an image item); it becomes
//   "\n\n<start_of_image>" + `<image_soft_token>` x mm_tokens_per_image + "<end_of_image>\n\n".
import type { SiglipVisionConfig as VisionConfig } from '../model/vision_config.ts';
import { InvalidArgumentError } from '../errors.ts';

export const IMAGE_TOKEN = '<image>';
export const FAKE_TOKEN = '<fake_token_around_image>';
export const GLOBAL_TOKEN = '<global-img>';

export const GEMMA3_BOI_TOKEN = '<start_of_image>';
export const GEMMA3_EOI_TOKEN = '<end_of_image>';
export const GEMMA3_IMAGE_TOKEN = '<image_soft_token>';

export function imagePromptString(rows: number, cols: number, tokensPerTile: number): string {
  const run = IMAGE_TOKEN.repeat(tokensPerTile);
  const global = `${FAKE_TOKEN}${GLOBAL_TOKEN}${run}${FAKE_TOKEN}`;
  if (rows === 0 && cols === 0) return global;
  let s = '';
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) s += `${FAKE_TOKEN}<row_${r + 1}_col_${c + 1}>${run}`;
    s += '\n';
  }
  return `${s}\n${global}`;
}

/** Gemma3Processor's full image sequence for one image. */
export function gemma3ImageString(tokensPerImage: number): string {
  return `\n\n${GEMMA3_BOI_TOKEN}${GEMMA3_IMAGE_TOKEN.repeat(tokensPerImage)}${GEMMA3_EOI_TOKEN}\n\n`;
}

/** What marks an image in the text before expansion (the chat template writes it for an image item). */
export function imagePlaceholder(v: Pick<VisionConfig, 'prompt'>): string {
  return v.prompt === 'gemma3' ? GEMMA3_BOI_TOKEN : IMAGE_TOKEN;
}

/** Replaces the i-th placeholder of `text` with expand(i); the counts must agree. */
function expandPlaceholders(text: string, placeholder: string, count: number, expand: (i: number) => string): string {
  const parts = text.split(placeholder);
  if (parts.length - 1 !== count) throw new InvalidArgumentError('images', `the text holds ${parts.length - 1} ${placeholder} placeholders but ${count} images were given`);
  let out = parts[0];
  for (let i = 0; i < count; i++) out += expand(i) + parts[i + 1];
  return out;
}

/** Idefics3: replaces the i-th `<image>` of `text` with image i's expansion for its tile layout. */
export function expandImageTokens(text: string, layouts: readonly { rows: number; cols: number }[], tokensPerTile: number): string {
  return expandPlaceholders(text, IMAGE_TOKEN, layouts.length, (i) => imagePromptString(layouts[i].rows, layouts[i].cols, tokensPerTile));
}

/** Expands every image placeholder of `text` the way the model's processor does. */
export function expandImages(text: string, layouts: readonly { rows: number; cols: number }[], v: Pick<VisionConfig, 'prompt' | 'tokensPerTile'>): string {
  if (v.prompt === 'gemma3') return expandPlaceholders(text, GEMMA3_BOI_TOKEN, layouts.length, () => gemma3ImageString(v.tokensPerTile));
  return expandImageTokens(text, layouts, v.tokensPerTile);
}

/** Positions of the image token in a prompt, in order. */
export function imageTokenPositions(ids: readonly number[], imageTokenId: number): number[] {
  const out: number[] = [];
  ids.forEach((id, i) => id === imageTokenId && out.push(i));
  return out;
}

/**
 * Contiguous runs of image tokens, [start, end) each: HF Gemma 3's image groups (a new group
 * starts at an image token whose predecessor is not one), within which attention is bidirectional.
 */
export function imageTokenRuns(positions: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const p of positions) {
    const last = runs[runs.length - 1];
    if (last && last[1] === p) last[1] = p + 1;
    else runs.push([p, p + 1]);
  }
  return runs;
}
