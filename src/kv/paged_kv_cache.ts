// The paged KV cache: per-layer storage of fixed-size pages, a page table per sequence,
// and the block allocator. It only stores; kernels read and write it through SeqView.
// K and V are f32 or f16 (`dtype`): an f16 cache takes half the bytes; kvWrite rounds to it and
// the attention kernels widen it to f32 as they read (src/ops: allocKv, copyKvRows).
import { ContextLengthExceededError, InvalidArgumentError } from '../errors.ts';
import type { KvDtype, KvLayerStorage, Ops, SeqView } from '../ops/ops.ts';
import { BlockAllocator } from './block_allocator.ts';

export interface KvCacheOptions {
  numLayers: number;
  kvDim: number;
  pageSize: number;
  /** Context window per sequence, in tokens. */
  contextWindow: number;
  /** How many sequences may hold pages at once. */
  maxSequences: number;
  /** Per-layer K/V widths where layers differ (Gemma 4's full-attention layers); default kvDim. */
  layerKvDims?: number[];
  /** KV sharing (Gemma 4): layer l's storage is layer kvSource[l]'s (allocated once). */
  kvSource?: number[];
  /** Pages in all (default: a full context window per sequence). Sequences that share pages (fork) need fewer. */
  numPages?: number;
  /** Storage of K and V (default f32). */
  dtype?: KvDtype;
}

/** Bytes one stored K or V value takes. */
export function kvValueBytes(dtype: KvDtype = 'f32'): number {
  return dtype === 'f16' ? 2 : 4;
}

interface Sequence<T> {
  pages: number[];
  length: number;
  view: SeqView<T>;
}

export class PagedKvCache<T> {
  readonly layers: KvLayerStorage<T>[];
  readonly allocator: BlockAllocator;
  readonly maxPagesPerSeq: number;
  private readonly seqs = new Map<number, Sequence<T>>();

  constructor(private readonly ops: Ops<T>, readonly opts: KvCacheOptions) {
    this.maxPagesPerSeq = Math.ceil(opts.contextWindow / opts.pageSize);
    const numPages = opts.numPages ?? this.maxPagesPerSeq * opts.maxSequences;
    this.allocator = new BlockAllocator(numPages, opts.pageSize);
    const slots = numPages * opts.pageSize;
    const layers: KvLayerStorage<T>[] = [];
    for (let l = 0; l < opts.numLayers; l++) {
      const src = opts.kvSource?.[l] ?? l;
      if (src !== l) {
        if (!(src >= 0 && src < l)) throw new InvalidArgumentError('kvSource', `layer ${l} shares layer ${src}'s K/V, which is not an earlier layer`);
        layers.push(layers[src]);
        continue;
      }
      const elements = slots * (opts.layerKvDims?.[l] ?? opts.kvDim);
      layers.push({ k: ops.allocKv(`kv.L${l}.k`, elements, this.dtype), v: ops.allocKv(`kv.L${l}.v`, elements, this.dtype), dtype: this.dtype });
    }
    this.layers = layers;
  }

  get pageSize(): number {
    return this.opts.pageSize;
  }

  get dtype(): KvDtype {
    return this.opts.dtype ?? 'f32';
  }

  /** Bytes of K/V storage per token across all layers. */
  static bytesPerToken(numLayers: number, kvDim: number, dtype: KvDtype = 'f32'): number {
    return numLayers * 2 * kvDim * kvValueBytes(dtype);
  }

  /**
   * Bytes of K/V storage one token takes in this cache (at its dtype): each layer that has its own
   * storage at its own width (Gemma 4: full-attention layers are wider, KV-shared layers add nothing).
   */
  tokenBytes(): number {
    let n = 0;
    for (let l = 0; l < this.opts.numLayers; l++) if ((this.opts.kvSource?.[l] ?? l) === l) n += 2 * (this.opts.layerKvDims?.[l] ?? this.opts.kvDim) * kvValueBytes(this.dtype);
    return n;
  }

  has(seqId: number): boolean {
    return this.seqs.has(seqId);
  }

  length(seqId: number): number {
    return this.seqs.get(seqId)?.length ?? 0;
  }

  /**
   * Makes room for the sequence to grow to `totalTokens` and returns its view. Throws
   * ContextLengthExceededError past the context window, KvCacheFullError when pages run out.
   */
  reserve(seqId: number, totalTokens: number): SeqView<T> {
    if (totalTokens > this.opts.contextWindow) throw new ContextLengthExceededError(totalTokens, this.opts.contextWindow);
    let seq = this.seqs.get(seqId);
    if (!seq && this.seqs.size >= this.opts.maxSequences) throw new InvalidArgumentError('sequence', `at most ${this.opts.maxSequences} sequences may be live at once`);
    // Allocate first: when the cache is full, a new sequence is not left registered, pageless.
    const needed = Math.ceil(totalTokens / this.opts.pageSize) - (seq?.pages.length ?? 0);
    const fresh = needed > 0 ? this.allocator.allocate(needed) : [];
    if (!seq) {
      const table = this.ops.uploadU32(`kv.pageTable.${seqId}`, new Uint32Array(this.maxPagesPerSeq));
      seq = { pages: [], length: 0, view: { pages: new Uint32Array(this.maxPagesPerSeq), table, pageSize: this.opts.pageSize } };
      this.seqs.set(seqId, seq);
    }
    // Copy on write: a page shared with another sequence (fork) that this write reaches
    // (positions from the current length on) gets a private copy first.
    let copied = false;
    for (let i = Math.floor(seq.length / this.opts.pageSize); i < seq.pages.length; i++) {
      const old = seq.pages[i];
      if (this.allocator.refCount(old) <= 1) continue;
      const [page] = this.allocator.allocate(1);
      const rows = this.opts.pageSize;
      this.layers.forEach((l, j) => {
        if (this.layers.indexOf(l) !== j) return; // a KV-shared layer's storage is its source's
        const width = this.opts.layerKvDims?.[j] ?? this.opts.kvDim;
        this.ops.copyKvRows(l, page * rows, old * rows, rows, width);
      });
      this.allocator.free([old]);
      seq.pages[i] = seq.view.pages[i] = page;
      copied = true;
      this.copiedPages++;
    }
    if (fresh.length) for (const p of fresh) seq.view.pages[seq.pages.length] = p, seq.pages.push(p);
    if (fresh.length || copied) this.ops.writeU32(seq.view.table, seq.view.pages);
    return seq.view;
  }

  /** Pages copied on write since the cache was made (tests, stats). */
  copiedPages = 0;

  /**
   * A new sequence `dst` holding the first `length` positions of `src` by sharing its pages
   * (no copy; a later write into a shared page copies it). Returns the shared page count.
   */
  fork(src: number, dst: number, length: number): number {
    const from = this.seqs.get(src);
    if (!from || length > from.length) throw new InvalidArgumentError('sequence', `cannot fork ${length} positions of sequence ${src} (it holds ${from?.length ?? 0})`);
    if (this.seqs.has(dst)) throw new InvalidArgumentError('sequence', `sequence ${dst} already exists`);
    if (this.seqs.size >= this.opts.maxSequences) throw new InvalidArgumentError('sequence', `at most ${this.opts.maxSequences} sequences may be live at once`);
    const pages = from.pages.slice(0, Math.ceil(length / this.opts.pageSize));
    this.allocator.retain(pages);
    const view = { pages: new Uint32Array(this.maxPagesPerSeq), table: this.ops.uploadU32(`kv.pageTable.${dst}`, new Uint32Array(this.maxPagesPerSeq)), pageSize: this.opts.pageSize };
    view.pages.set(pages);
    this.ops.writeU32(view.table, view.pages);
    this.seqs.set(dst, { pages, length, view });
    return pages.length;
  }

  /** Records that positions [0, length) hold valid K/V. */
  setLength(seqId: number, length: number): void {
    const seq = this.seqs.get(seqId);
    if (!seq) throw new InvalidArgumentError('sequence', `unknown sequence ${seqId}`);
    seq.length = length;
  }

  /** Drops positions >= length (keeps a shared prefix) and frees pages no longer needed. */
  truncate(seqId: number, length: number): void {
    const seq = this.seqs.get(seqId);
    if (!seq) return;
    const keepPages = Math.ceil(length / this.opts.pageSize);
    if (keepPages < seq.pages.length) this.allocator.free(seq.pages.splice(keepPages));
    seq.length = Math.min(seq.length, length);
  }

  free(seqId: number): void {
    const seq = this.seqs.get(seqId);
    if (!seq) return;
    this.allocator.free(seq.pages);
    this.ops.free(seq.view.table);
    this.seqs.delete(seqId);
  }

  reset(): void {
    for (const id of [...this.seqs.keys()]) this.free(id);
    this.allocator.reset();
  }

  destroy(): void {
    this.reset();
    for (const l of new Set(this.layers)) this.ops.free(l.k), this.ops.free(l.v);
  }
}
