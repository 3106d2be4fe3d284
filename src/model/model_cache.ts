// Downloads kept in the browser: file bodies in the Cache API, metadata (model id, files,
// sizes, completion) in IndexedDB through idb-keyval. Each file is stored as soon as it is
// complete, so an interrupted download costs at most the file in flight and the next load
// fetches only what is missing. A model is marked complete only after every file is stored.
import { del, get, set } from 'idb-keyval';
import { StorageQuotaError } from '../errors.ts';
import { resolveModelUrl, urlSource, type ModelSource } from './source.ts';

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
  const report = (file: string, fromCache: boolean) => {
    const total = opts.totalBytes ?? 0;
    const elapsed = (performance.now() - started) / 1000;
    const rate = downloadedBytes / Math.max(elapsed, 1e-3);
    const eta = total && rate > 0 ? Math.max(0, (total - loadedBytes) / rate) : null;
    opts.onProgress?.({ file, loadedBytes, totalBytes: total, filesDone, etaSeconds: eta, fromCache });
  };
  return {
    id: model,
    async fetchFile(name, o = {}) {
      const url = `${base}/${name}`;
      const m = await loadMeta();
      let cache: Cache | null = null;
      try {
        cache = await caches.open(CACHE_NAME);
        const hit = await cache.match(url);
        if (hit) {
          const buf = await hit.arrayBuffer();
          loadedBytes += buf.byteLength;
          filesDone++;
          report(name, true);
          return buf;
        }
      } catch {
        cache = null; // no Cache API here (opaque origin): download every time
      }
      if (m.complete && o.optional && m.absent?.includes(name)) return null;
      const buf = await network.fetchFile(name, o);
      if (!buf) {
        if (!m.absent) m.absent = [];
        if (!m.absent.includes(name)) m.absent.push(name);
        return null;
      }
      loadedBytes += buf.byteLength;
      downloadedBytes += buf.byteLength;
      filesDone++;
      if (cache) {
        try {
          await cache.put(url, new Response(buf.slice(0)));
        } catch (e) {
          if ((e as Error).name === 'QuotaExceededError') {
            const est = await navigator.storage?.estimate?.().catch(() => null);
            throw new StorageQuotaError(buf.byteLength, Math.max(0, (est?.quota ?? 0) - (est?.usage ?? 0)));
          }
          throw e;
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
