// Hands out fixed-size KV pages by index. Free pages are kept on a stack so the most
// recently freed (still warm in cache) are reused first. Pages are reference-counted: n > 1
// choices share their prompt's pages (PagedKvCache.fork); a page returns to the stack when
// its last holder frees it.
import { KvCacheFullError } from '../errors.ts';

export class BlockAllocator {
  private freeList: number[];
  private readonly refs: Uint32Array;

  constructor(readonly numPages: number, readonly pageSize: number) {
    this.freeList = Array.from({ length: numPages }, (_, i) => numPages - 1 - i);
    this.refs = new Uint32Array(numPages);
  }

  /** Holders of a page (0: free). */
  refCount(page: number): number {
    return this.refs[page];
  }

  /** One more holder for each page (a forked sequence). */
  retain(pages: readonly number[]): void {
    for (const p of pages) this.refs[p]++;
  }

  get freePages(): number {
    return this.freeList.length;
  }

  allocate(count: number): number[] {
    if (count > this.freeList.length) throw new KvCacheFullError(count, this.freeList.length, this.pageSize);
    const pages = this.freeList.splice(this.freeList.length - count, count).reverse();
    for (const p of pages) this.refs[p] = 1;
    return pages;
  }

  /** Drops one holder of each page; pages nobody holds any more are free again. */
  free(pages: readonly number[]): void {
    for (let i = pages.length - 1; i >= 0; i--) if (this.refs[pages[i]] > 0 && --this.refs[pages[i]] === 0) this.freeList.push(pages[i]);
  }

  reset(): void {
    this.freeList = Array.from({ length: this.numPages }, (_, i) => this.numPages - 1 - i);
    this.refs.fill(0);
  }
}
