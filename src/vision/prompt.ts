// Prompt expansion for Idefics3 / SmolVLM (processing_idefics3): each `<image>` in the text
// becomes, for a split image (rows x cols tiles),
//   per row: per col `<fake_token_around_image><row_R_col_C>` + `<image>` x N, then "\n";
//   then "\n<fake_token_around_image><global-img>" + `<image>` x N + `<fake_token_around_image>`
// and for a single tile `<fake_token_around_image><global-img>` + `<image>` x N + `<fake_token_around_image>`,
// with N = tokensPerTile (64 for SmolVLM-256M). The image features fill the `<image>` ids
// in prompt order: tiles row-major, then the global view.
export const IMAGE_TOKEN = '<image>';
export const FAKE_TOKEN = '<fake_token_around_image>';
export const GLOBAL_TOKEN = '<global-img>';

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

/** Replaces the i-th `<image>` of `text` with image i's expansion; the counts must agree. */
export function expandImageTokens(text: string, layouts: readonly { rows: number; cols: number }[], tokensPerTile: number): string {
  const parts = text.split(IMAGE_TOKEN);
  if (parts.length - 1 !== layouts.length) throw new Error(`the text holds ${parts.length - 1} ${IMAGE_TOKEN} placeholders but ${layouts.length} images were given`);
  let out = parts[0];
  layouts.forEach((l, i) => (out += imagePromptString(l.rows, l.cols, tokensPerTile) + parts[i + 1]));
  return out;
}

/** Positions of the image token in a prompt, in order. */
export function imageTokenPositions(ids: readonly number[], imageTokenId: number): number[] {
  const out: number[] = [];
  ids.forEach((id, i) => id === imageTokenId && out.push(i));
  return out;
}
