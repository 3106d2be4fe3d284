import { InternalError } from '../errors.ts';
// int4 weight-only quantization, applied on load: a property of a weight (how `Ops.upload`
// stores it) and of the kernel that reads it (GpuOps.matmul picks the q4 variants), not of
// the forward. Both devices use the same packing here, so the CPU twin's weights are exactly
// the values the GPU kernels dequantize ("the dequantized reference").
//
// A [rows, cols] weight (nn.Linear: rows = out features N, cols = in features K) is cut into
// groups of GROUP = 32 consecutive k. Each group has an f32 scale s and offset m, and each
// weight is w = q * s + m with q in 0..15:
//   'q4'      symmetric (llama.cpp Q4_0): s = v / -8 for the group's value v of largest |v|,
//             m = -8 s (not stored: w = (q - 8) s), so v itself is exact.
//   'q4-asym' asymmetric (Q4_1): s = (max - min) / 15, m = min (stored).
// One packed Uint32Array / GPU buffer, offsets in 32-bit words:
//   [0, rows * rowWords)              nibbles: row n, word j holds k = 8j .. 8j+7, element
//                                     8j + i in bits 4i .. 4i+3; rowWords = 4 * groups; the
//                                     padding past cols holds q = 0 (w = m) and is never read
//                                     against real X (the kernels zero X past K).
//   [scalesOffset, + rows * groups)   f32 scales, [rows, groups] row-major
//   [minsOffset,   + rows * groups)   f32 offsets m (asym only; minsOffset = 0 when symmetric)
//   [gainsOffset,  + rows / gainRows * cols)  optional f32 column gains (gainsOffset = 0: none):
//                                     row n's weight k is dequant(q) * gains[floor(n / gainRows), k].
// Column gains let POP's stacked deep K/V weights keep their layers' norm gains out of the
// quantized values: quantize(W) · diag(g) uses the very same q4 values as the layer's own
// QKV weight (rows are quantized independently), so POP at keep = L-1 stays exact; folding g
// first (quantize(W · diag(g))) would give different values.
export type QuantScheme = 'q4' | 'q4-asym';

/** Quantization requested for one uploaded weight of `data.length / cols` rows. */
export interface QuantSpec {
  scheme: QuantScheme;
  /** Row length K (the `in` dimension); groups run along it. Must be a multiple of 4. */
  cols: number;
  /** Per-column gains applied after dequantization, one [cols] vector per `rows` rows. */
  gains?: { values: Float32Array; rows: number };
}

/** Where the parts of a packed weight live (u32 words). */
export interface QuantInfo {
  scheme: QuantScheme;
  rows: number;
  cols: number;
  groups: number;
  rowWords: number;
  scalesOffset: number;
  minsOffset: number;
  /** Column gains (0: none), one vector per gainRows rows. */
  gainsOffset: number;
  gainRows: number;
  words: number;
}

export const GROUP = 32;

export function quantLayout(scheme: QuantScheme, rows: number, cols: number, gainRows = 0): QuantInfo {
  if (!(cols > 0 && cols % 4 === 0)) throw new InternalError(`quantize: cols = ${cols} must be a positive multiple of 4`);
  if (gainRows && rows % gainRows) throw new InternalError(`quantize: ${rows} rows are not whole blocks of ${gainRows} gain rows`);
  const groups = Math.ceil(cols / GROUP), rowWords = groups * 4;
  const scalesOffset = rows * rowWords;
  const minsOffset = scheme === 'q4-asym' ? scalesOffset + rows * groups : 0;
  const gainsOffset = gainRows ? scalesOffset + rows * groups * (scheme === 'q4-asym' ? 2 : 1) : 0;
  const words = scalesOffset + rows * groups * (scheme === 'q4-asym' ? 2 : 1) + (gainRows ? (rows / gainRows) * cols : 0);
  return { scheme, rows, cols, groups, rowWords, scalesOffset, minsOffset, gainsOffset, gainRows, words };
}

/** Packs a [rows, cols] f32 weight (see the layout above). */
export function quantizeQ4(data: Float32Array, spec: QuantSpec): { packed: Uint32Array; info: QuantInfo } {
  const { scheme, cols } = spec;
  if (data.length % cols) throw new InternalError(`quantize: ${data.length} values are not whole rows of ${cols}`);
  const rows = data.length / cols;
  const info = quantLayout(scheme, rows, cols, spec.gains?.rows ?? 0);
  const packed = new Uint32Array(info.words);
  const f = new Float32Array(packed.buffer);
  if (spec.gains) {
    if (spec.gains.values.length !== (rows / spec.gains.rows) * cols) throw new InternalError(`quantize: ${spec.gains.values.length} gains for ${rows / spec.gains.rows} blocks of ${cols}`);
    f.set(spec.gains.values, info.gainsOffset);
  }
  const asym = scheme === 'q4-asym';
  for (let n = 0; n < rows; n++) {
    for (let g = 0; g < info.groups; g++) {
      const k0 = g * GROUP, k1 = Math.min(cols, k0 + GROUP), row = n * cols;
      let s: number, m: number;
      if (asym) {
        let lo = Infinity, hi = -Infinity;
        for (let k = k0; k < k1; k++) (lo = Math.min(lo, data[row + k])), (hi = Math.max(hi, data[row + k]));
        s = Math.fround((hi - lo) / 15);
        m = lo;
      } else {
        let v = 0;
        for (let k = k0; k < k1; k++) if (Math.abs(data[row + k]) > Math.abs(v)) v = data[row + k];
        s = Math.fround(v / -8);
        m = Math.fround(-8 * s);
      }
      const inv = s !== 0 ? 1 / s : 0;
      f[info.scalesOffset + n * info.groups + g] = s;
      if (asym) f[info.minsOffset + n * info.groups + g] = m;
      for (let k = k0; k < k1; k++) {
        const q = Math.max(0, Math.min(15, Math.round((data[row + k] - m) * inv)));
        packed[n * info.rowWords + (k >> 3)] |= q << (4 * (k & 7));
      }
    }
  }
  return { packed, info };
}

/** The values the q4 kernels compute with: w = fround(q * s + m) (m = -8 s when symmetric), times the column gain if any. */
export function dequantizeQ4(packed: Uint32Array, info: QuantInfo): Float32Array {
  const f = new Float32Array(packed.buffer, packed.byteOffset, packed.length);
  const out = new Float32Array(info.rows * info.cols);
  for (let n = 0; n < info.rows; n++) {
    for (let k = 0; k < info.cols; k++) {
      const g = n * info.groups + (k >> 5);
      const s = f[info.scalesOffset + g];
      const m = info.minsOffset ? f[info.minsOffset + g] : -8 * s;
      const q = (packed[n * info.rowWords + (k >> 3)] >>> (4 * (k & 7))) & 15;
      const w = Math.fround(q * s + m);
      out[n * info.cols + k] = info.gainsOffset ? w * f[info.gainsOffset + Math.floor(n / info.gainRows) * info.cols + k] : w;
    }
  }
  return out;
}
