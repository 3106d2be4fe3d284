// The block allocator and the paged KV cache, in Node on the CPU ops: allocation order,
// free/reuse, reset, several sequences, truncation keeping prefix pages, page tables (host
// and the copy written to the device), and the typed errors (KV_CACHE_FULL,
// CONTEXT_LENGTH_EXCEEDED, INVALID_ARGUMENT).
import { test, expect } from './fixtures.ts';
import { ContextLengthExceededError, InvalidArgumentError, KvCacheFullError } from '../src/errors.ts';
import { Engine } from '../src/engine/engine.ts';
import { BlockAllocator } from '../src/kv/block_allocator.ts';
import { PagedKvCache } from '../src/kv/paged_kv_cache.ts';
import { memorySource } from '../src/model/source.ts';
import { CpuOps, kvOffset } from '../src/reference/cpu_ops.ts';
import { caught, expectPopError } from './fixtures/expect_error.ts';
import { tinyFiles } from './fixtures/model_files.ts';

/** CpuOps that records what is written to each page table (CpuOps itself ignores it). */
class RecordingOps extends CpuOps {
  readonly tables = new Map<Float32Array, number[]>();
  override uploadU32(label: string, data: Uint32Array): Float32Array {
    const t = super.uploadU32(label, data);
    this.tables.set(t, [...data]);
    return t;
  }
  override writeU32(dst?: Float32Array, data?: Uint32Array): void {
    this.tables.set(dst!, [...data!]);
  }
}

const used = (view: { pages: Uint32Array }, n: number) => [...view.pages.subarray(0, n)];

test.describe('BlockAllocator', () => {
  test('allocates in order, reuses the most recently freed first, resets', () => {
    const a = new BlockAllocator(8, 16);
    expect(a.numPages).toBe(8);
    expect(a.pageSize).toBe(16);
    expect(a.freePages).toBe(8);
    expect(a.allocate(3)).toEqual([0, 1, 2]);
    expect(a.allocate(2)).toEqual([3, 4]);
    expect(a.freePages).toBe(3);
    expect(a.allocate(0)).toEqual([]);
    a.free([1]);
    expect(a.freePages).toBe(4);
    expect(a.allocate(1)).toEqual([1]);
    a.free([0, 2]);
    expect(a.allocate(2)).toEqual([0, 2]); // freed pages come back in their order
    expect(a.allocate(3)).toEqual([5, 6, 7]);
    expect(a.freePages).toBe(0);
    a.reset();
    expect(a.freePages).toBe(8);
    expect(a.allocate(8)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  test('several owners get disjoint pages; every page comes back', () => {
    const a = new BlockAllocator(10, 4);
    const owners = [a.allocate(3), a.allocate(2), a.allocate(4)];
    const all = owners.flat();
    expect(new Set(all).size).toBe(all.length);
    a.free(owners[1]);
    const again = a.allocate(2);
    expect(again.sort()).toEqual([...owners[1]].sort());
    a.free(owners[0]), a.free(again), a.free(owners[2]);
    expect(a.freePages).toBe(10);
    expect(a.allocate(10).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test('asking for more pages than are free: KV_CACHE_FULL with needed/free/pageSize; nothing is taken', () => {
    const a = new BlockAllocator(4, 16);
    a.allocate(3);
    const e = (() => { try { a.allocate(2); } catch (err) { return err; } })();
    expectPopError(e, KvCacheFullError, 'KV_CACHE_FULL', { neededPages: 2, freePages: 1, pageSize: 16 });
    expect(a.freePages).toBe(1);
    expect(a.allocate(1)).toEqual([3]);
    expectPopError((() => { try { a.allocate(1); } catch (err) { return err; } })(), KvCacheFullError, 'KV_CACHE_FULL', { neededPages: 1, freePages: 0, pageSize: 16 });
  });
});

test.describe('PagedKvCache', () => {
  const OPTS = { numLayers: 2, kvDim: 8, pageSize: 4, contextWindow: 16, maxSequences: 2 };

  test('storage size, bytes per token, empty state', () => {
    const cache = new PagedKvCache(new CpuOps(), OPTS);
    expect(cache.maxPagesPerSeq).toBe(4);
    expect(cache.allocator.numPages).toBe(8);
    expect(cache.pageSize).toBe(4);
    expect(cache.layers).toHaveLength(2);
    for (const l of cache.layers) expect([l.k.length, l.v.length]).toEqual([8 * 4 * 8, 8 * 4 * 8]);
    expect(PagedKvCache.bytesPerToken(2, 8)).toBe(2 * 2 * 8 * 4);
    expect(cache.has(0)).toBe(false);
    expect(cache.length(0)).toBe(0);
    // A context window that is not a multiple of the page size rounds up.
    expect(new PagedKvCache(new CpuOps(), { ...OPTS, contextWindow: 17 }).maxPagesPerSeq).toBe(5);
  });

  test('reserve grows a sequence page by page; the page table (host and device) lists its pages', () => {
    const ops = new RecordingOps();
    const cache = new PagedKvCache<Float32Array>(ops, OPTS);
    const v = cache.reserve(0, 5);
    expect(v.pageSize).toBe(4);
    expect(v.pages).toHaveLength(4);
    expect(used(v, 2)).toEqual([0, 1]);
    expect(ops.tables.get(v.table)).toEqual([0, 1, 0, 0]);
    expect(cache.allocator.freePages).toBe(6);
    expect(cache.has(0)).toBe(true);
    expect(cache.length(0)).toBe(0); // reserved, not yet written
    cache.setLength(0, 5);
    expect(cache.length(0)).toBe(5);
    expect(cache.reserve(0, 8)).toBe(v); // same view, no new page
    expect(cache.allocator.freePages).toBe(6);
    cache.reserve(0, 9);
    expect(used(v, 3)).toEqual([0, 1, 2]);
    expect(ops.tables.get(v.table)).toEqual([0, 1, 2, 0]);
    cache.reserve(0, 16);
    expect(used(v, 4)).toEqual([0, 1, 2, 3]);
    expect(cache.allocator.freePages).toBe(4);
  });

  test('several sequences: disjoint pages and disjoint physical K/V slots; free returns pages', () => {
    const ops = new RecordingOps();
    const cache = new PagedKvCache<Float32Array>(ops, OPTS);
    const a = cache.reserve(0, 6), b = cache.reserve(1, 9);
    cache.reserve(0, 13); // interleaved growth
    expect(used(a, 4)).toEqual([0, 1, 5, 6]);
    expect(used(b, 3)).toEqual([2, 3, 4]);
    expect(ops.tables.get(a.table)).toEqual([0, 1, 5, 6]);
    expect(ops.tables.get(b.table)).toEqual([2, 3, 4, 0]);
    const slots = (v: typeof a, n: number) => Array.from({ length: n }, (_, p) => kvOffset(v, p, 2, 4, 0));
    const sa = slots(a, 13), sb = slots(b, 9);
    expect(new Set([...sa, ...sb]).size).toBe(13 + 9);
    for (const o of [...sa, ...sb]) expect(o + 8).toBeLessThanOrEqual(cache.layers[0].k.length);
    expect(cache.allocator.freePages).toBe(1);
    cache.free(0);
    expect(cache.has(0)).toBe(false);
    expect(cache.has(1)).toBe(true);
    expect(cache.allocator.freePages).toBe(5);
    const c = cache.reserve(2, 16); // a new sequence gets the freed pages
    expect(used(c, 4)).toEqual([0, 1, 5, 6]);
    expect(ops.tables.get(c.table)).toEqual([0, 1, 5, 6]);
    expect(new Set([...used(c, 4), ...used(b, 3)]).size).toBe(7);
    cache.free(42); // unknown: no-op
  });

  test('truncate keeps the prefix pages and frees the rest; regrowing reuses them', () => {
    const cache = new PagedKvCache(new CpuOps(), OPTS);
    const v = cache.reserve(0, 14);
    cache.setLength(0, 14);
    const before = used(v, 4);
    expect(before).toEqual([0, 1, 2, 3]);
    cache.truncate(0, 6); // positions 0..5 live in pages 0 and 1
    expect(cache.length(0)).toBe(6);
    expect(used(v, 2)).toEqual(before.slice(0, 2));
    expect(cache.allocator.freePages).toBe(6);
    cache.truncate(0, 8); // longer than the sequence: nothing changes
    expect(cache.length(0)).toBe(6);
    expect(cache.allocator.freePages).toBe(6);
    cache.truncate(0, 4); // exactly one page
    expect(cache.length(0)).toBe(4);
    expect(used(v, 1)).toEqual([0]);
    expect(cache.allocator.freePages).toBe(7);
    cache.reserve(0, 12);
    expect(used(v, 1)).toEqual([0]); // the prefix stays where it was
    expect(cache.allocator.freePages).toBe(5);
    cache.truncate(0, 0);
    expect(cache.length(0)).toBe(0);
    expect(cache.allocator.freePages).toBe(8);
    expect(cache.has(0)).toBe(true);
    cache.truncate(9, 3); // unknown: no-op
  });

  test('reset frees every sequence and page', () => {
    const cache = new PagedKvCache(new CpuOps(), OPTS);
    cache.reserve(0, 10), cache.reserve(1, 3);
    cache.reset();
    expect([cache.has(0), cache.has(1)]).toEqual([false, false]);
    expect(cache.allocator.freePages).toBe(8);
    expect(used(cache.reserve(1, 16), 4)).toEqual([0, 1, 2, 3]);
  });

  test('errors: past the window CONTEXT_LENGTH_EXCEEDED; too many sequences, unknown sequence INVALID_ARGUMENT; out of pages KV_CACHE_FULL', async () => {
    const cache = new PagedKvCache(new CpuOps(), OPTS);
    expectPopError(await caught(() => cache.reserve(0, 17)), ContextLengthExceededError, 'CONTEXT_LENGTH_EXCEEDED', { requested: 17, limit: 16 });
    expect(cache.has(0)).toBe(false);
    cache.reserve(0, 4), cache.reserve(1, 4);
    expectPopError(await caught(() => cache.reserve(2, 4)), InvalidArgumentError, 'INVALID_ARGUMENT', { argument: 'sequence' });
    expectPopError(await caught(() => cache.setLength(7, 1)), InvalidArgumentError, 'INVALID_ARGUMENT', { argument: 'sequence' });
    // Pages held elsewhere (the allocator is shared): growing runs out.
    const held = cache.allocator.allocate(5);
    expect(cache.allocator.freePages).toBe(1);
    expectPopError(await caught(() => cache.reserve(0, 12)), KvCacheFullError, 'KV_CACHE_FULL', { neededPages: 2, freePages: 1, pageSize: 4 });
    expect(used(cache.reserve(0, 4), 1)).toHaveLength(1); // the sequence is intact
    expect(cache.allocator.freePages).toBe(1);
    // A new sequence that cannot get its pages is not left registered.
    cache.free(1);
    expect(cache.allocator.freePages).toBe(2);
    expectPopError(await caught(() => cache.reserve(3, 16)), KvCacheFullError, 'KV_CACHE_FULL', { neededPages: 4, freePages: 2, pageSize: 4 });
    expect(cache.has(3)).toBe(false);
    cache.allocator.free(held);
    expect(used(cache.reserve(3, 16), 4)).toHaveLength(4);
  });
});

test('the engine\'s cache: pages follow the sequence, prefix reuse truncates, reset frees all', async () => {
  const files = tinyFiles();
  const engine = await Engine.load(new CpuOps(), memorySource(files), { contextWindow: 32, pageSize: 4 });
  const cache = engine.cache;
  expect(cache.allocator.numPages).toBe(9); // one window of 4-token pages, and one for an n > 1 choice's copied prompt page
  const prompt = [1, 5, 9, 13, 17, 21, 25];
  const r = await engine.generate(prompt, { maxTokens: 4, ignoreEos: true });
  expect(cache.length(0)).toBe(prompt.length + 3);
  expect(cache.allocator.freePages).toBe(9 - Math.ceil(10 / 4));
  // Next turn shares the first 5 tokens: the cache is cut to them, then grows again.
  const turn2 = [...prompt.slice(0, 5), 200, 201, 202, 203, 204, 205];
  const r2 = await engine.generate(turn2, { maxTokens: 2, ignoreEos: true, reusePrefix: true });
  expect(r2.stats.reusedTokens).toBe(5);
  expect(cache.length(0)).toBe(turn2.length + 1);
  const fresh = await Engine.load(new CpuOps(), memorySource(files), { contextWindow: 32, pageSize: 4 });
  expect(r2.ids).toEqual((await fresh.generate(turn2, { maxTokens: 2, ignoreEos: true })).ids);
  expect(r.ids).toEqual((await fresh.generate(prompt, { maxTokens: 4, ignoreEos: true })).ids);
  engine.resetChat();
  expect(cache.has(0)).toBe(false);
  expect(cache.allocator.freePages).toBe(9);
});
