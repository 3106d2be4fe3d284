// Hands out fixed-size KV pages by index. Free pages are kept on a stack so the most
// recently freed (still warm in cache) are reused first.
import { KvCacheFullError } from '../errors.ts';

export class BlockAllocator {
  private freeList: number[];

  constructor(readonly numPages: number, readonly pageSize: number) {
    this.freeList = Array.from({ length: numPages }, (_, i) => numPages - 1 - i);
  }

  get freePages(): number {
    return this.freeList.length;
  }

  allocate(count: number): number[] {
    if (count > this.freeList.length) throw new KvCacheFullError(count, this.freeList.length, this.pageSize);
    return this.freeList.splice(this.freeList.length - count, count).reverse();
  }

  free(pages: readonly number[]): void {
    for (let i = pages.length - 1; i >= 0; i--) this.freeList.push(pages[i]);
  }

  reset(): void {
    this.freeList = Array.from({ length: this.numPages }, (_, i) => this.numPages - 1 - i);
  }
}
