// Tensors larger than one storage binding. WebGPU binds at most maxStorageBufferBindingSize
// bytes per buffer (128 MiB to 2 GiB on real GPUs, 1 GiB on SwiftShader), and vocab-sized
// matrices pass that easily (Gemma 3's 262144 x 1152 f32 embedding is 1.2 GB). GpuOps.upload
// stores such a [rows, cols] tensor as row parts, each its own buffer that fits, behind a
// 16-byte handle buffer (T stays GPUBuffer); `embed` runs one gather per part (the rows whose
// id falls in the part's range) and `matmul` one dispatch per part over the part's N range.
// Every part is encoded like a whole tensor (f32, q4 with its own scales, f16), so the values
// are exactly those of an unsplit upload. Only ops that know about parts may read the handle:
// the table of `embed`, the `w` of `matmul`, `read` (f32 parts) and `free`.
import type { UploadOptions } from './ops.ts';
import { quantLayout } from '../core/quant.ts';

export interface RowPart {
  buf: GPUBuffer;
  /** First row of the whole tensor held by this part, and how many. */
  row0: number;
  rows: number;
}

export interface SplitTensor {
  rows: number;
  cols: number;
  parts: RowPart[];
}

type Gains = { values: Float32Array; rows: number } | undefined;
/** f16 storage (UploadOptions.half, src/core/half.ts): `true` or { cols, gains }. */
type Half = true | { cols: number; gains?: Gains } | undefined;
const halfOf = (opts: UploadOptions): Half => (opts as { half?: Half }).half;

function colsOf(opts: UploadOptions): number | undefined {
  const h = halfOf(opts);
  return opts.cols ?? opts.quant?.cols ?? (typeof h === 'object' ? h.cols : undefined);
}

function gainsOf(opts: UploadOptions): Gains {
  const h = halfOf(opts);
  return opts.quant ? opts.quant.gains : typeof h === 'object' ? h.gains : undefined;
}

/** Bytes GpuOps.upload stores for `rows` rows of `cols` with these options (an upper bound for f16). */
export function storedBytes(rows: number, cols: number, opts: UploadOptions): number {
  const g = gainsOf(opts);
  if (opts.quant) return quantLayout(opts.quant.scheme, rows, cols, g?.rows ?? 0).words * 4;
  if (halfOf(opts)) return Math.ceil((rows * cols) / 8) * 16 + (g ? Math.ceil(rows / g.rows) * cols * 4 + 16 : 0);
  return rows * cols * 4;
}

/**
 * How to cut a tensor of `elements` values that would not fit in `limit` bytes: its row length
 * and the rows of each part (balanced, whole blocks of column-gain rows). Null when it fits, or
 * when it cannot be cut (no row length given, or not even one row block fits).
 */
export function planSplit(elements: number, opts: UploadOptions, limit: number): { cols: number; partRows: number[] } | null {
  const cols = colsOf(opts);
  if (!cols || elements % cols) return null;
  const rows = elements / cols;
  const align = gainsOf(opts)?.rows ?? 1;
  if (rows % align || storedBytes(rows, cols, opts) <= limit) return null;
  let per = Math.floor(limit / storedBytes(align, cols, opts)) * align;
  while (per > 0 && storedBytes(per, cols, opts) > limit) per -= align;
  if (per <= 0) return null;
  const n = Math.ceil(rows / per);
  const even = Math.ceil(rows / n / align) * align;
  const partRows: number[] = [];
  for (let r = 0; r < rows; r += even) partRows.push(Math.min(even, rows - r));
  return { cols, partRows };
}

/** The upload options of rows [row0, row0 + rows): the same encoding, column gains sliced. */
export function partOptions(opts: UploadOptions, cols: number, row0: number, rows: number): UploadOptions {
  const slice = (g: Gains): Gains => g && { values: g.values.subarray((row0 / g.rows) * cols, ((row0 + rows) / g.rows) * cols), rows: g.rows };
  const o: UploadOptions & { half?: Half } = { ...opts, cols };
  if (opts.quant) o.quant = { ...opts.quant, gains: slice(opts.quant.gains) };
  const h = halfOf(opts);
  if (typeof h === 'object') o.half = { ...h, gains: slice(h.gains) };
  return o;
}
