// The paged KV cache: per-layer storage of fixed-size pages, a page table per sequence,
// and the block allocator. It only stores; kernels read and write it through SeqView.
import { ContextLengthExceededError, InvalidArgumentError } from '../errors.ts';
import type { KvLayerStorage, Ops, SeqView } from '../ops/ops.ts';
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
    const numPages = this.maxPagesPerSeq * opts.maxSequences;
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
      layers.push({ k: ops.alloc(`kv.L${l}.k`, elements), v: ops.alloc(`kv.L${l}.v`, elements) });
    }
    this.layers = layers;
  }

  get pageSize(): number {
    return this.opts.pageSize;
  }

  /** Bytes of K/V storage per token across all layers (f32). */
  static bytesPerToken(numLayers: number, kvDim: number): number {
    return numLayers * 2 * kvDim * 4;
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
    if (fresh.length) {
      for (const p of fresh) seq.view.pages[seq.pages.length] = p, seq.pages.push(p);
      this.ops.writeU32(seq.view.table, seq.view.pages);
    }
    return seq.view;
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
