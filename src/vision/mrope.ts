// Multimodal RoPE (Qwen2-VL / Qwen3-VL), as transformers' get_rope_index and
// Qwen3VLTextRotaryEmbedding define it:
//   positions: text tokens have t = h = w = a running index; each image's tokens (its merged
//   grid, gh x gw, row-major) have t = s, h = s + row, w = s + col where s is the index the
//   image starts at; the text after an image continues at (the largest position so far) + 1,
//   and so does decode (not at the sequence length).
//   angles: frequency pair i (inv_freq[i], i < headDim/2) rotates by the position of one axis:
//   interleaved (mrope_interleaved), pair i uses h when i % 3 == 1 and i < 3 section[1], w when
//   i % 3 == 2 and i < 3 section[2], else t.
// The engine turns a request's positions into one RoPE table by cache position (the layout of
// src/model/config.ts ropeTable), so the forward and its kernels stay 1-D.
import type { RopePositions } from './family.ts';
import { InvalidArgumentError, MalformedFileError } from '../errors.ts';

/** One image's place in a prompt: the merged grid of its tokens. */
export interface ImageGrid {
  h: number;
  w: number;
}

/**
 * get_rope_index for one prompt: `imageTokenId` runs are the images' tokens (image k fills
 * grids[k].h * grids[k].w consecutive ids, in order).
 */
export function mropePositions(prompt: readonly number[], imageTokenId: number, grids: readonly ImageGrid[]): RopePositions {
  const n = prompt.length, t = new Int32Array(n), h = new Int32Array(n), w = new Int32Array(n);
  let next = 0, image = 0;
  for (let i = 0; i < n; ) {
    if (prompt[i] !== imageTokenId) {
      t[i] = h[i] = w[i] = next++;
      i++;
      continue;
    }
    const g = grids[image++];
    if (!g) throw new InvalidArgumentError('images', `the prompt holds more image tokens than the ${grids.length} image grid(s) give`);
    const count = g.h * g.w, start = next;
    for (let k = 0; k < count; k++) {
      if (prompt[i + k] !== imageTokenId) throw new InvalidArgumentError('images', `image ${image - 1} needs ${count} consecutive image tokens at position ${i}`);
      t[i + k] = start;
      h[i + k] = start + Math.floor(k / g.w);
      w[i + k] = start + (k % g.w);
    }
    next = start + Math.max(g.h, g.w);
    i += count;
  }
  if (image !== grids.length) throw new InvalidArgumentError('images', `the prompt holds ${image} image(s) but ${grids.length} image grid(s) were given`);
  return { t, h, w, next };
}

/** Which axis (0 t, 1 h, 2 w) frequency pair i follows under interleaved M-RoPE. */
export function mropeAxis(i: number, section: readonly [number, number, number]): 0 | 1 | 2 {
  if (i % 3 === 1 && i < 3 * section[1]) return 1;
  if (i % 3 === 2 && i < 3 * section[2]) return 2;
  return 0;
}

/**
 * The RoPE table of a request by cache position, for rows [0, rows): the prompt's rows from
 * their 3-D positions, the rows after it (decode) as text continuing from `next`. Row layout
 * [cos(a_0..a_{d/2-1}) | sin(...)], angles in f32 as HF takes them.
 */
export function ropePositionTable(pos: RopePositions, invFreq: Float32Array, section: readonly [number, number, number], headDim: number, rows: number): Float32Array {
  const half = headDim / 2, n = pos.t.length;
  if (section[0] + section[1] + section[2] !== half) throw new MalformedFileError('config.json', `mrope_section ${section} must sum to head_dim / 2 = ${half}`);
  const axes = Array.from({ length: half }, (_, i) => mropeAxis(i, section));
  const out = new Float32Array(rows * headDim);
  for (let p = 0; p < rows; p++) {
    const tp = p < n ? [pos.t[p], pos.h[p], pos.w[p]] : [pos.next + p - n, pos.next + p - n, pos.next + p - n];
    for (let i = 0; i < half; i++) {
      const a = Math.fround(tp[axes[i]] * invFreq[i]);
      out[p * headDim + i] = Math.cos(a);
      out[p * headDim + half + i] = Math.sin(a);
    }
  }
  return out;
}
