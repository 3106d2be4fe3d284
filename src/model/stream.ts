// Reading weight files as they arrive. A file is a stream of byte chunks (src/model/source.ts);
// the safetensors header is parsed as soon as its bytes are in, then every tensor is handed
// over in row ranges of about `chunkBytes` as soon as those rows are complete, and its bytes
// are dropped. So the host holds a few chunks at a time, never a whole tensor or shard.
// MLC shards (src/model/mlc.ts) go record by record the same way. A stream that ends before
// the bytes the header (or record list) promises is TRUNCATED_FILE naming the file, with the
// bytes actually received. LoadAccount keeps the loader's own figures (bytes held, peak).
import { MalformedFileError, TruncatedFileError } from '../errors.ts';
import { parseSafetensorsHeader, safetensorsHeaderLength, type SafetensorsHeader, type TensorEntry } from './safetensors.ts';
import type { FileStream } from './source.ts';

/** Row ranges handed to the builder are about this large (raw bytes). */
export const ROW_CHUNK_BYTES = 4 << 20;

/** What a load read and held on the host, by the loader's own accounting. */
export interface LoadStats {
  /** Weight files read, and the bytes read from them. */
  files: number;
  bytesRead: number;
  largestFileBytes: number;
  /**
   * Most bytes the loader held at once: stream chunks not yet consumed, row ranges being
   * converted (their f32 copies included) and tensors kept for later (a VLM's vision tower,
   * POP rows waiting for their norm gain, MLC records waiting for a partner).
   */
  peakHeldBytes: number;
  /** Row ranges written to the device, and how many of them before their file's last byte had arrived. */
  writes: number;
  writesBeforeFileEnd: number;
  /** The NaN / Inf scan (src/model/weight_check.ts): values scanned and the time it took (0 when skipped). */
  checkedValues: number;
  checkMs: number;
}

export class LoadAccount {
  readonly stats: LoadStats = { files: 0, bytesRead: 0, largestFileBytes: 0, peakHeldBytes: 0, writes: 0, writesBeforeFileEnd: 0, checkedValues: 0, checkMs: 0 };
  held = 0;
  /** True from a file's first byte until its last byte has arrived. */
  private inFile = false;

  hold(bytes: number): void {
    this.held += bytes;
    if (this.held > this.stats.peakHeldBytes) this.stats.peakHeldBytes = this.held;
  }
  release(bytes: number): void {
    this.held -= bytes;
  }
  /** A device write of one row range. */
  wrote(): void {
    this.stats.writes++;
    if (this.inFile) this.stats.writesBeforeFileEnd++;
  }
  /** A NaN / Inf scan of `values` values that took `ms`. */
  checked(values: number, ms: number): void {
    this.stats.checkedValues += values;
    this.stats.checkMs += ms;
  }
  fileStarted(): void {
    this.inFile = true;
  }
  /** The file's last byte is in (its size reached, or the stream ended). */
  fileArrived(bytes: number): void {
    if (!this.inFile) return;
    this.inFile = false;
    this.stats.files++;
    this.stats.bytesRead += bytes;
    this.stats.largestFileBytes = Math.max(this.stats.largestFileBytes, bytes);
  }
}

/** The chunks of a FileStream not yet consumed; takes and skips exact byte counts across chunks. */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  private offset = 0;
  private buffered = 0;
  /** Chunks consumed by the last take, released at the next call (the caller was using a view of them). */
  private spent = 0;
  private ended = false;
  private scratch = new Uint8Array(0);
  /** Bytes received so far (the file's size once the stream has ended). */
  received = 0;

  constructor(private readonly stream: FileStream, private readonly account: LoadAccount, private readonly signal?: AbortSignal) {
    account.fileStarted();
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    this.signal?.throwIfAborted();
    const c = await this.stream.read();
    if (!c) {
      this.ended = true;
      this.account.fileArrived(this.received);
      return false;
    }
    if (!c.byteLength) return true;
    this.chunks.push(c);
    this.buffered += c.byteLength;
    this.received += c.byteLength;
    this.account.hold(c.byteLength);
    if (this.stream.size !== null && this.received >= this.stream.size) this.account.fileArrived(this.received);
    return true;
  }

  private settle(): void {
    this.account.release(this.spent);
    this.spent = 0;
  }

  /** Drops n bytes from the front (they are buffered). */
  private consume(n: number): void {
    while (n > 0) {
      const c = this.chunks[0], left = c.byteLength - this.offset;
      if (n < left) {
        this.offset += n;
        this.buffered -= n;
        return;
      }
      this.chunks.shift();
      this.offset = 0;
      this.buffered -= left;
      this.spent += c.byteLength;
      n -= left;
    }
  }

  /**
   * The next n bytes, contiguous, valid until the next call: a view when they lie in one chunk,
   * else assembled in a scratch buffer reused from call to call (`own`: a new buffer the caller
   * keeps, `copied`). Null when the stream ends first.
   */
  async take(n: number, own = false): Promise<{ bytes: Uint8Array; copied: boolean } | null> {
    this.settle();
    while (this.buffered < n) if (!(await this.pull())) return null;
    const first = this.chunks[0];
    if (n === 0) return { bytes: new Uint8Array(0), copied: false };
    if (first.byteLength - this.offset >= n) {
      const bytes = first.subarray(this.offset, this.offset + n);
      this.consume(n);
      return { bytes, copied: false };
    }
    if (!own && this.scratch.byteLength < n) {
      this.account.release(this.scratch.byteLength);
      this.account.hold((this.scratch = new Uint8Array(n)).byteLength);
    }
    const bytes = own ? new Uint8Array(n) : this.scratch.subarray(0, n);
    let o = 0;
    for (let i = 0; o < n; i++) {
      const c = this.chunks[i], from = i === 0 ? this.offset : 0, m = Math.min(n - o, c.byteLength - from);
      bytes.set(c.subarray(from, from + m), o);
      o += m;
    }
    this.consume(n);
    if (own) this.account.hold(n), (this.spent += n);
    return { bytes, copied: own };
  }

  /** Skips n bytes; false when the stream ends first. */
  async skip(n: number): Promise<boolean> {
    this.settle();
    while (n > 0) {
      if (!this.buffered && !(await this.pull())) return false;
      const m = Math.min(n, this.buffered);
      this.consume(m);
      this.settle();
      n -= m;
    }
    return true;
  }

  /** Reads to the end (a caching source stores only whole files); the file's size. */
  async drain(): Promise<number> {
    this.settle();
    this.account.release(this.scratch.byteLength);
    this.scratch = new Uint8Array(0);
    this.consume(this.buffered);
    this.settle();
    while (await this.pull()) {
      this.consume(this.buffered);
      this.settle();
    }
    return this.received;
  }
}

/** Where a safetensors file's tensors go. */
export interface TensorSink {
  /** The file's header, before any of its data: check names, shapes and dtypes here. */
  header(file: string, h: SafetensorsHeader): void;
  /** Whether a tensor's bytes are needed (others are skipped). */
  wants(e: TensorEntry): boolean;
  /**
   * Rows [row0, row0 + rows) along the tensor's first dimension (a 1-D tensor: elements), in
   * file order; `bytes` is valid only during the call.
   */
  rows(e: TensorEntry, row0: number, rows: number, bytes: Uint8Array): void;
}

/** Streams one safetensors file into `sink`; returns the file's size. */
export async function streamSafetensors(file: string, stream: FileStream, sink: TensorSink, account: LoadAccount, o: { chunkBytes?: number; signal?: AbortSignal } = {}): Promise<number> {
  const q = new ByteQueue(stream, account, o.signal);
  const head8 = await q.take(8);
  if (!head8) throw new TruncatedFileError(file, 8, q.received);
  const len = safetensorsHeaderLength(file, head8.bytes);
  const json = await q.take(len);
  if (!json) throw new TruncatedFileError(file, 8 + len, q.received);
  const head = new Uint8Array(8 + len);
  head.set(head8.bytes), head.set(json.bytes, 8);
  const h = parseSafetensorsHeader(file, head, stream.size ?? Infinity);
  sink.header(file, h);
  const short = async () => new TruncatedFileError(file, h.requiredBytes, await q.drain());
  const entries = [...h.tensors.values()].sort((a, b) => a.begin - b.begin);
  let pos = 8 + len, prev = '';
  const chunk = o.chunkBytes ?? ROW_CHUNK_BYTES;
  for (const e of entries) {
    if (e.begin < pos) throw new MalformedFileError(file, `tensor '${e.name}' overlaps '${prev}'`);
    if (!(await q.skip(e.begin - pos))) throw await short();
    pos = e.end;
    prev = e.name;
    const size = e.end - e.begin;
    if (!sink.wants(e)) {
      if (!(await q.skip(size))) throw await short();
      continue;
    }
    const rows = e.shape.length ? e.shape[0] : 1;
    if (!size || !rows) {
      sink.rows(e, 0, rows, new Uint8Array(0));
      continue;
    }
    const rowBytes = size / rows, per = Math.max(1, Math.floor(chunk / rowBytes));
    for (let r0 = 0; r0 < rows; r0 += per) {
      const n = Math.min(per, rows - r0);
      const got = await q.take(n * rowBytes);
      if (!got) throw await short();
      sink.rows(e, r0, n, got.bytes);
    }
  }
  return q.drain();
}

/** One record of an MLC shard: [byteOffset, byteOffset + nbytes) of the file. */
export interface ByteRange {
  name: string;
  byteOffset: number;
  nbytes: number;
}

/**
 * Streams an MLC shard record by record (in offset order): `onRecord` gets each record's
 * bytes, its own copy, as soon as they are complete. The shard must hold `needBytes`.
 */
export async function streamRecords<R extends ByteRange>(file: string, stream: FileStream, records: readonly R[], needBytes: number, onRecord: (r: R, bytes: Uint8Array) => void, account: LoadAccount, signal?: AbortSignal): Promise<number> {
  if (stream.size !== null && stream.size < needBytes) throw new TruncatedFileError(file, needBytes, stream.size);
  const q = new ByteQueue(stream, account, signal);
  const short = async () => new TruncatedFileError(file, needBytes, await q.drain());
  let pos = 0;
  for (const r of [...records].sort((a, b) => a.byteOffset - b.byteOffset)) {
    if (r.byteOffset < pos) throw new MalformedFileError(file, `record '${r.name}' overlaps the one before it`);
    if (!(await q.skip(r.byteOffset - pos))) throw await short();
    // The record outlives the call: its own bytes (a view would keep a whole network chunk).
    const got = await q.take(r.nbytes, true);
    if (!got) throw await short();
    onRecord(r, got.copied ? got.bytes : got.bytes.slice());
    pos = r.byteOffset + r.nbytes;
  }
  const size = await q.drain();
  if (size < needBytes) throw new TruncatedFileError(file, needBytes, size);
  return size;
}
