// f16 weight storage, applied on load: like int4 (quant.ts), a property of a weight (how
// `Ops.upload(label, data, { half })` stores it) and of the kernel that reads it (GpuOps.matmul
// picks the f16 kernels, src/kernels/matmul_f16.ts), not of the forward. Works on every adapter:
// the storage kernels read the halves with WGSL's core unpack2x16float and compute in f32; only
// the optional f16-arithmetic kernels need 'shader-f16'.
//
// One packed Uint32Array / GPU buffer, offsets in 32-bit words:
//   [0, ceil(elements / 2))          halves, element 2i in the low 16 bits of word i, element
//                                    2i + 1 in the high bits (round to nearest even). A [N, K]
//                                    weight with K % 4 == 0 has row n at word n * K / 2, so the
//                                    kernels read 4 weights as one vec2<u32> at the f32 kernels'
//                                    vec4 index.
//   [gainsOffset, + rows / gainRows * cols)  optional f32 column gains (gainsOffset = 0: none;
//                                    a multiple of 4 words): row n's weight k is
//                                    half(w) * gains[floor(n / gainRows), k], in f32.
// Column gains serve POP's stacked deep K/V exactly as in quant.ts: the stack holds each layer's
// own rounded K/V values and the norm gains apply after rounding, so keep = L-1 stays exact
// (rounding W · diag(g) would give different values).
// The CPU twin (CpuOps.upload) keeps `roundHalf`: every weight rounded to f16 and back, times
// its gain in f32 — the values the storage kernels compute with ("the f16-rounded reference").
import { floatToHalf, halfToFloat } from './float_bits.ts';
import { InternalError } from '../errors.ts';

/** f16 storage of one uploaded weight; `true` = no column gains. */
export interface HalfSpec {
  /** Row length K (the `in` dimension); needed with gains. */
  cols: number;
  /** Per-column gains applied after rounding, one [cols] vector per `rows` rows. */
  gains?: { values: Float32Array; rows: number };
}

/** Where the parts of a packed f16 weight live (u32 words). */
export interface HalfInfo {
  elements: number;
  /** Row length when known (0: not given; matmul takes K from its caller). */
  cols: number;
  /** Column gains (0: none), one vector of `cols` f32 per gainRows rows. */
  gainsOffset: number;
  gainRows: number;
  words: number;
}

function specOf(spec: HalfSpec | true | undefined): HalfSpec | null {
  return spec && spec !== true ? spec : null;
}

function checkGains(elements: number, s: HalfSpec): void {
  if (!(s.cols > 0 && s.cols % 4 === 0)) throw new InternalError(`half: cols = ${s.cols} must be a positive multiple of 4`);
  if (elements % s.cols) throw new InternalError(`half: ${elements} values are not whole rows of ${s.cols}`);
  if (!s.gains) return;
  const rows = elements / s.cols;
  if (!(s.gains.rows > 0) || rows % s.gains.rows) throw new InternalError(`half: ${rows} rows are not whole blocks of ${s.gains.rows} gain rows`);
  if (s.gains.values.length !== (rows / s.gains.rows) * s.cols) throw new InternalError(`half: ${s.gains.values.length} gains for ${rows / s.gains.rows} blocks of ${s.cols}`);
}

/** The layout of `elements` values stored as halves with this spec (see above). */
export function halfLayout(elements: number, spec?: HalfSpec | true): HalfInfo {
  const s = specOf(spec);
  if (s) checkGains(elements, s);
  const halfWords = Math.ceil(elements / 2);
  const gainsOffset = s?.gains ? Math.ceil(halfWords / 4) * 4 || 4 : 0;
  const words = gainsOffset ? gainsOffset + s!.gains!.values.length : Math.max(4, Math.ceil(halfWords / 4) * 4);
  return { elements, cols: s?.cols ?? 0, gainsOffset, gainRows: s?.gains?.rows ?? 0, words };
}

/** The halves of `data`, two per word (no padding, no gains): words [i, ...) of an even element offset 2i. */
export function packHalfWords(data: Float32Array, out = new Uint32Array(Math.ceil(data.length / 2))): Uint32Array {
  const n = data.length;
  for (let i = 0, w = 0; i < n; i += 2, w++) out[w] = floatToHalf(data[i]) | ((i + 1 < n ? floatToHalf(data[i + 1]) : 0) << 16);
  return out;
}

/** Packs f32 values as halves (see the layout above). */
export function packHalf(data: Float32Array, spec?: HalfSpec | true): { packed: Uint32Array; info: HalfInfo } {
  const info = halfLayout(data.length, spec);
  const packed = new Uint32Array(info.words);
  packHalfWords(data, packed);
  const s = specOf(spec);
  if (s?.gains) new Float32Array(packed.buffer).set(s.gains.values, info.gainsOffset);
  return { packed, info };
}

/** The values the f16 storage kernels compute with: fround(half(w)), times the column gain (f32) if any. */
export function roundHalf(data: Float32Array, spec?: HalfSpec | true): Float32Array {
  const s = specOf(spec);
  if (s) checkGains(data.length, s);
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = halfToFloat(floatToHalf(data[i]));
  if (s?.gains) {
    const { values, rows } = s.gains, cols = s.cols;
    for (let i = 0; i < out.length; i++) out[i] *= values[Math.floor(i / cols / rows) * cols + (i % cols)];
  }
  return out;
}
