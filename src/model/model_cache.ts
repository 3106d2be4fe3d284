// Downloads kept in the browser: file bodies in the Cache API, metadata (model id, files,
// sizes, completion) in IndexedDB through idb-keyval. Weight files stream (openFile): the
// bytes the loader reads from the network go to the Cache API as they arrive, and the entry
// is committed only when the loader has read the whole file and found it good
// (FileStream.finish); a short, broken or aborted stream stores nothing. So an interrupted
// download costs at most the file in flight and the next load fetches only what is missing.
// A model is marked complete only after every file is stored.
import { del, get, set } from 'idb-keyval';
import { AbortError, StorageQuotaError } from '../errors.ts';
import { contentLength, readableFileStream, resolveModelUrl, urlSource, type FileStream, type ModelSource } from './source.ts';

export const CACHE_NAME = 'pop-llm-models';

export interface CachedModelMeta {
  modelId: string;
  baseUrl: string;
  files: Record<string, number>;
  /** Optional files the server does not have (so an offline reload does not ask again). */
  absent: string[];
  complete: boolean;
  updated: number;
}

export interface DownloadProgress {
  file: string;
  loadedBytes: number;
  /** Total bytes of the model, when known (0 otherwise). */
  totalBytes: number;
  filesDone: number;
  etaSeconds: number | null;
  fromCache: boolean;
}

const metaKey = (modelId: string) => `pop-llm:model:${modelId}`;

export function cacheAvailable(): boolean {
  return typeof caches !== 'undefined' && typeof indexedDB !== 'undefined';
}

export async function cachedModelInfo(modelId: string): Promise<CachedModelMeta | null> {
  return ((await get(metaKey(modelId)).catch(() => undefined)) as CachedModelMeta | undefined) ?? null;
}

/** Deletes a model's files and metadata from the browser cache. */
export async function deleteCachedModel(modelId: string, hubBase?: string): Promise<void> {
  const meta = await cachedModelInfo(modelId);
  const base = meta?.baseUrl ?? resolveModelUrl(modelId, hubBase);
  const cache = await caches.open(CACHE_NAME);
  for (const req of await cache.keys()) if (req.url.startsWith(base + '/')) await cache.delete(req);
  await del(metaKey(modelId));
}

/**
 * Deletes the cached files of a model that `which` selects (by file name) and marks the model
 * incomplete, so the next load downloads them again. Returns the names deleted.
 */
export async function deleteCachedFiles(modelId: string, which: (file: string) => boolean, hubBase?: string): Promise<string[]> {
  const meta = await cachedModelInfo(modelId);
  const base = meta?.baseUrl ?? resolveModelUrl(modelId, hubBase);
  const cache = await caches.open(CACHE_NAME);
  const deleted: string[] = [];
  for (const req of await cache.keys()) {
    if (!req.url.startsWith(base + '/')) continue;
    const name = decodeURIComponent(req.url.slice(base.length + 1));
    if (!which(name)) continue;
    await cache.delete(req);
    deleted.push(name);
  }
  if (meta) {
    for (const name of Object.keys(meta.files)) if (which(name)) delete meta.files[name];
    meta.complete = false;
    await set(metaKey(modelId), meta).catch(() => undefined);
  }
  return deleted;
}

/**
 * A source that serves files from the cache and downloads (with progress) what is missing.
 * `markComplete` is called by the loader once every file has been read.
 */
export function cachedSource(model: string, opts: { hubBase?: string; totalBytes?: number; onProgress?: (p: DownloadProgress) => void; fetch?: typeof fetch } = {}): ModelSource & { markComplete(): Promise<void>; forget(file: string): Promise<void> } {
  const base = resolveModelUrl(model, opts.hubBase);
  const network = urlSource(model, { hubBase: opts.hubBase, fetch: opts.fetch });
  const started = performance.now();
  let loadedBytes = 0;
  let downloadedBytes = 0;
  let filesDone = 0;
  let meta: CachedModelMeta | null = null;
  const loadMeta = async () => (meta ??= (await cachedModelInfo(model)) ?? { modelId: model, baseUrl: base, files: {}, absent: [], complete: false, updated: Date.now() });
  let lastReport = 0;
  const report = (file: string, fromCache: boolean) => {
    lastReport = performance.now();
    const total = opts.totalBytes ?? 0;
    const elapsed = (performance.now() - started) / 1000;
    const rate = downloadedBytes / Math.max(elapsed, 1e-3);
    const eta = total && rate > 0 ? Math.max(0, (total - loadedBytes) / rate) : null;
    opts.onProgress?.({ file, loadedBytes, totalBytes: total, filesDone, etaSeconds: eta, fromCache });
  };
  /** Counts a stream's bytes into the progress (a report at most every 250 ms, and one per file). */
  const counted = (f: FileStream, name: string, fromCache: boolean): FileStream => ({
    ...f,
    async read() {
      const c = await f.read();
      if (!c) {
        filesDone++;
        report(name, fromCache);
        return null;
      }
      loadedBytes += c.byteLength;
      if (!fromCache) downloadedBytes += c.byteLength;
      if (performance.now() - lastReport > 250) report(name, fromCache);
      return c;
    },
  });
  const storeError = async (e: unknown, bytes: number): Promise<unknown> => {
    if ((e as Error)?.name !== 'QuotaExceededError') return e;
    const est = await navigator.storage?.estimate?.().catch(() => null);
    return new StorageQuotaError(bytes, Math.max(0, (est?.quota ?? 0) - (est?.usage ?? 0)));
  };
  /**
   * Passes the network's chunks to the reader and, as they go, into a Cache API entry that is
   * committed at finish (after the reader checked the whole file) and dropped at cancel. The
   * reader's pace drives the download; if the cache falls 8 MiB behind, the reader waits.
   */
  const cachingStream = (net: FileStream, cache: Cache, url: string, name: string, m: CachedModelMeta): FileStream => {
    let ctl!: ReadableStreamDefaultController<Uint8Array>;
    let wake: (() => void) | null = null;
    const body = new ReadableStream<Uint8Array>({
      start: (c) => void (ctl = c),
      pull: () => {
        wake?.();
        wake = null;
      },
    }, { highWaterMark: 8 << 20, size: (c: Uint8Array) => c.byteLength });
    let bytes = 0, failed: unknown = null, cancelled = false;
    const headers = net.size !== null ? { 'content-length': String(net.size) } : undefined;
    const put = cache.put(url, new Response(body, { headers })).catch(async (e) => {
      if (!cancelled) failed = await storeError(e, net.size ?? bytes);
    });
    return {
      size: net.size,
      async read() {
        if (failed) throw failed;
        const c = await net.read();
        if (!c) return null;
        bytes += c.byteLength;
        try {
          ctl.enqueue(c.slice());
        } catch (e) {
          // The Cache API stopped reading (its put failed): its error, once known.
          await put;
          throw failed ?? e;
        }
        if ((ctl.desiredSize ?? 1) <= 0) await Promise.race([new Promise<void>((r) => (wake = r)), put]);
        if (failed) throw failed;
        return c;
      },
      async finish() {
        await net.finish();
        try {
          ctl.close();
        } catch {
          /* already stopped by a failed put: reported below */
        }
        await put;
        if (failed) throw failed;
        m.files[name] = bytes;
        m.updated = Date.now();
        await set(metaKey(model), m).catch(() => undefined);
      },
      async cancel(reason) {
        cancelled = true;
        ctl.error(reason ?? new AbortError('download'));
        await net.cancel(reason);
        await put;
      },
    };
  };
  return {
    id: model,
    async openFile(name, o = {}) {
      const url = `${base}/${name}`;
      const m = await loadMeta();
      const { cache, hit } = await lookup(url);
      if (hit) return counted(readableFileStream(hit.body, m.files[name] ?? contentLength(hit)), name, true);
      if (m.complete && o.optional && m.absent?.includes(name)) return null;
      const net = await network.openFile!(name, o);
      if (!net) return markAbsent(m, name);
      return counted(cache ? cachingStream(net, cache, url, name, m) : net, name, false);
    },
    async fetchFile(name, o = {}) {
      const url = `${base}/${name}`;
      const m = await loadMeta();
      const { cache, hit } = await lookup(url);
      // An entry that cannot be read back is fetched again (and stored over).
      const cached = hit ? await hit.arrayBuffer().catch(() => null) : null;
      if (cached) {
        loadedBytes += cached.byteLength;
        filesDone++;
        report(name, true);
        return cached;
      }
      if (m.complete && o.optional && m.absent?.includes(name)) return null;
      const buf = await network.fetchFile(name, o);
      if (!buf) return markAbsent(m, name);
      loadedBytes += buf.byteLength;
      downloadedBytes += buf.byteLength;
      filesDone++;
      if (cache) {
        try {
          await cache.put(url, new Response(buf.slice(0)));
        } catch (e) {
          throw await storeError(e, buf.byteLength);
        }
        m.files[name] = buf.byteLength;
        m.updated = Date.now();
        await set(metaKey(model), m).catch(() => undefined);
      }
      report(name, false);
      return buf;
    },
    /** Drops one file (found corrupt) so that the next load downloads it again. */
    async forget(file: string) {
      const m = await loadMeta();
      await caches.open(CACHE_NAME).then((c) => c.delete(`${base}/${file}`)).catch(() => false);
      delete m.files[file];
      m.complete = false;
      await set(metaKey(model), m).catch(() => undefined);
    },
    async markComplete() {
      const m = await loadMeta();
      m.complete = true;
      m.updated = Date.now();
      await set(metaKey(model), m).catch(() => undefined);
    },
  };
}

/** The Cache API entry for url; cache null where the origin has none (opaque origin: download every time). */
async function lookup(url: string): Promise<{ cache: Cache | null; hit: Response | undefined }> {
  try {
    const cache = await caches.open(CACHE_NAME);
    return { cache, hit: await cache.match(url) };
  } catch {
    return { cache: null, hit: undefined };
  }
}

/** Notes that an optional file does not exist, so a complete model does not ask again. */
function markAbsent(m: { absent?: string[] }, name: string): null {
  if (!m.absent) m.absent = [];
  if (!m.absent.includes(name)) m.absent.push(name);
  return null;
}
