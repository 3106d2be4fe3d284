// safetensors: an 8-byte little-endian header length, a JSON header of
// {name: {dtype, shape, data_offsets: [begin, end]}} relative to the data section, then data.
import { MalformedFileError, TruncatedFileError, UnsupportedDtypeError } from '../errors.ts';
import { floatToBf16, floatToHalf, halfToFloat } from '../core/float_bits.ts';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';
const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1 };

export interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte range within the file. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  file: string;
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  /** Bytes the file must have: header + the furthest tensor end. */
  requiredBytes: number;
}

/** The JSON header's length from the file's first 8 bytes (MALFORMED_FILE when implausible). */
export function safetensorsHeaderLength(file: string, head: Uint8Array): number {
  if (head.byteLength < 8) throw new TruncatedFileError(file, 8, head.byteLength);
  const len = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true));
  if (len > 100_000_000) throw new MalformedFileError(file, `header length ${len} is implausible (not a safetensors file?)`);
  return len;
}

/** Parses the header from the first bytes of the file; `fileBytes` is the file's full size (Infinity: not known yet). */
export function parseSafetensorsHeader(file: string, head: Uint8Array, fileBytes: number): SafetensorsHeader {
  const len = safetensorsHeaderLength(file, head);
  if (head.byteLength < 8 + len) throw new TruncatedFileError(file, 8 + len, Math.min(head.byteLength, fileBytes));
  let json: Record<string, any>;
  try {
    json = JSON.parse(new TextDecoder().decode(head.subarray(8, 8 + len)));
  } catch (e) {
    throw new MalformedFileError(file, `header is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(json)) throw new MalformedFileError(file, 'header is not a JSON object of tensors');
  const dataStart = 8 + len;
  const tensors = new Map<string, TensorEntry>();
  let maxEnd = dataStart;
  for (const [name, v] of Object.entries(json)) {
    if (name === '__metadata__') continue;
    if (!isObject(v)) throw new MalformedFileError(file, `entry '${name}' is not an object`);
    const { dtype, shape, data_offsets } = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (!Array.isArray(shape) || !Array.isArray(data_offsets) || typeof dtype !== 'string') throw new MalformedFileError(file, `entry '${name}' lacks dtype, shape or data_offsets`);
    if (!shape.every(isCount) || data_offsets.length !== 2 || !data_offsets.every(isCount) || data_offsets[0] > data_offsets[1]) {
      throw new MalformedFileError(file, `entry '${name}' has an invalid shape [${shape}] or data_offsets [${data_offsets}]`);
    }
    const elements = shape.reduce((a, b) => a * b, 1);
    const width = DTYPE_BYTES[dtype];
    if (width !== undefined && data_offsets[1] - data_offsets[0] !== elements * width) {
      throw new MalformedFileError(file, `entry '${name}' spans ${data_offsets[1] - data_offsets[0]} bytes but shape [${shape}] of ${dtype} needs ${elements * width}`);
    }
    const entry = { name, dtype, shape, begin: dataStart + data_offsets[0], end: dataStart + data_offsets[1] };
    tensors.set(name, entry);
    maxEnd = Math.max(maxEnd, entry.end);
  }
  if (fileBytes < maxEnd) throw new TruncatedFileError(file, maxEnd, fileBytes);
  return { file, tensors, metadata: (json.__metadata__ as Record<string, string>) ?? {}, requiredBytes: maxEnd };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A non-negative integer (a dimension or a byte offset). */
function isCount(v: unknown): boolean {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/** Converts a tensor's bytes (F32, F16 or BF16, little endian) to f32. */
export function toFloat32(entry: TensorEntry, bytes: Uint8Array): Float32Array {
  return decodeFloats(entry.name, entry.dtype, bytes, entry.shape.reduce((a, b) => a * b, 1));
}

/**
 * The first n values of `bytes` (F32, F16 or BF16, little endian, any alignment) as f32, into
 * `out` when given (a loader's reused scratch: the result is a view of it).
 */
export function decodeFloats(name: string, dtype: string, bytes: Uint8Array, n: number, out?: Float32Array): Float32Array {
  const dst = out ? out.subarray(0, n) : new Float32Array(n);
  switch (dtype) {
    case 'F32':
      new Uint8Array(dst.buffer, dst.byteOffset, n * 4).set(bytes.subarray(0, n * 4));
      return dst;
    case 'F16': {
      const src = halves(bytes, n);
      for (let i = 0; i < n; i++) dst[i] = halfToFloat(src[i]);
      return dst;
    }
    case 'BF16': {
      const src = halves(bytes, n), u = new Uint32Array(dst.buffer, dst.byteOffset, n);
      for (let i = 0; i < n; i++) u[i] = src[i] << 16;
      return dst;
    }
    default:
      throw new UnsupportedDtypeError(name, dtype);
  }
}

/** n little-endian u16 values: a view when aligned, else a copy. */
function halves(bytes: Uint8Array, n: number): Uint16Array {
  return bytes.byteOffset % 2 ? new Uint16Array(bytes.slice(0, n * 2).buffer) : new Uint16Array(bytes.buffer, bytes.byteOffset, n);
}

/** Whether the loader converts this dtype (F32, F16, BF16). */
export const isFloatDtype = (dtype: string): boolean => dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';

/** Serializes tensors to a safetensors file (fixtures, random models). */
export function writeSafetensors(tensors: { name: string; shape: number[]; data: Float32Array; dtype?: SafetensorsDtype }[]): Uint8Array {
  const head = safetensorsHead(tensors);
  const out = new Uint8Array(head.byteLength + tensors.reduce((a, t) => a + tensorBytes(t), 0));
  out.set(head);
  let p = head.byteLength;
  for (const t of tensors) {
    const b = encodeTensor(t.data, t.dtype ?? 'F32');
    out.set(b, p);
    p += b.byteLength;
  }
  return out;
}

const tensorBytes = (t: { shape: number[]; dtype?: SafetensorsDtype }) => t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype ?? 'F32'];

/** The 8-byte length and JSON header of a file holding these tensors back to back, in order (the data follows). */
export function safetensorsHead(tensors: readonly { name: string; shape: number[]; dtype?: SafetensorsDtype }[]): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    const bytes = tensorBytes(t);
    header[t.name] = { dtype: t.dtype ?? 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8) json += ' ';
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.byteLength), true);
  out.set(hb, 8);
  return out;
}

/** A tensor's data bytes in a dtype (little endian). */
export function encodeTensor(data: Float32Array, dtype: SafetensorsDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = dtype === 'BF16' ? floatToBf16(data[i]) : floatToHalf(data[i]);
  return new Uint8Array(out.buffer);
}
