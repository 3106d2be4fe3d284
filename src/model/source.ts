// Where model files come from: a base URL (Hugging Face `resolve/main`, a local server, the
// app's own public folder) or files the user picked. Missing files and network failures
// become typed errors that name the file.
import { MalformedFileError, ModelFileMissingError, ModelNotFoundError } from '../errors.ts';

export interface ModelSource {
  readonly id: string;
  /** The whole file, or null when it does not exist and `optional` is set. */
  fetchFile(name: string, opts?: { optional?: boolean; signal?: AbortSignal }): Promise<ArrayBuffer | null>;
  /**
   * The file as a stream of byte chunks (weight files: read while they download, so the host
   * never holds a whole shard). Sources without it are read whole through fetchFile.
   */
  openFile?(name: string, opts?: { optional?: boolean; signal?: AbortSignal }): Promise<FileStream | null>;
}

/** A file read chunk by chunk. */
export interface FileStream {
  /** The file's size when known before reading it (file systems, Content-Length); null otherwise. */
  size: number | null;
  /** The next bytes, null at the end; failures (network, abort) are thrown here, typed. */
  read(): Promise<Uint8Array | null>;
  /**
   * The reader got every byte and found the file good: a caching source stores it only now.
   * Rejects when it could not (StorageQuotaError).
   */
  finish(): Promise<void>;
  /** Reading stopped early (an error, an abort): nothing is kept of it. */
  cancel(reason?: unknown): Promise<void>;
}

/** Bytes per chunk when a source cuts a file itself (memory, disk). */
export const CHUNK_BYTES = 1 << 20;

/** A stream over bytes already in memory, cut into views of `chunk` bytes (no copies). */
export function bytesStream(bytes: Uint8Array, chunk = CHUNK_BYTES): FileStream {
  let pos = 0;
  return {
    size: bytes.byteLength,
    read: async () => {
      if (pos >= bytes.byteLength) return null;
      const c = bytes.subarray(pos, pos + chunk);
      pos += c.byteLength;
      return c;
    },
    finish: async () => {},
    cancel: async () => {},
  };
}

/**
 * A FileStream over a web ReadableStream; `mapError` turns a failed read into a typed error
 * (an abort stays an AbortError).
 */
export function readableFileStream(body: ReadableStream<Uint8Array> | null, size: number | null, mapError: (e: Error) => Error = (e) => e): FileStream {
  const reader = body?.getReader() ?? null;
  return {
    size,
    async read() {
      if (!reader) return null;
      try {
        const r = await reader.read();
        return r.done ? null : r.value;
      } catch (e) {
        throw (e as Error)?.name === 'AbortError' ? e : mapError(e as Error);
      }
    },
    finish: async () => {},
    cancel: async (reason) => void (await reader?.cancel(reason).catch(() => undefined)),
  };
}

/** Opens a file as a stream: the source's own openFile, else the whole file from fetchFile as one chunk. */
export async function openModelFile(source: ModelSource, name: string, opts: { optional?: boolean; signal?: AbortSignal } = {}): Promise<FileStream | null> {
  if (source.openFile) return source.openFile(name, opts);
  const buf = await source.fetchFile(name, opts);
  return buf ? bytesStream(new Uint8Array(buf), Math.max(1, buf.byteLength)) : null;
}

export const HUB_BASE = 'https://huggingface.co';

/** True for `owner/name` ids (no scheme, no leading dot or slash). */
export function isHubId(s: string): boolean {
  return /^[\w.-]+\/[\w.-]+$/.test(s) && !s.startsWith('.');
}

/** Resolves a Hub id or URL into a base URL ending without a slash. */
export function resolveModelUrl(model: string, hubBase = HUB_BASE): string {
  if (isHubId(model)) return `${hubBase.replace(/\/$/, '')}/${model}/resolve/main`;
  return model.replace(/\/$/, '');
}

export function urlSource(model: string, opts: { hubBase?: string; fetch?: typeof fetch } = {}): ModelSource {
  const base = resolveModelUrl(model, opts.hubBase);
  const doFetch = opts.fetch ?? ((...a: Parameters<typeof fetch>) => fetch(...a));
  /** The response for a file, its status checked; null when optional and absent. */
  const request = async (name: string, o: { optional?: boolean; signal?: AbortSignal; headers?: Record<string, string> }): Promise<Response | null> => {
    const url = new URL(`${base}/${name}`, typeof location !== 'undefined' ? location.href : undefined).href;
    let res: Response;
    try {
      res = await doFetch(url, { signal: o.signal, headers: o.headers });
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw new ModelNotFoundError(model, `network error fetching ${name}: ${(e as Error).message}`);
    }
    if (res.status === 404) {
      if (o.optional) return null;
      throw new ModelFileMissingError(name, 404);
    }
    if (res.status === 401 || res.status === 403) throw new ModelNotFoundError(model, `HTTP ${res.status} for ${name}: the model is gated or private; accept its licence on the Hub and use a token-enabled URL`);
    if (!res.ok) throw new ModelNotFoundError(model, `HTTP ${res.status} fetching ${name}`);
    // Vite's dev server answers unknown paths with index.html (SPA fallback): no model file
    // (config, weights, tokenizer, chat_template.jinja, pop.json) is ever HTML.
    if ((res.headers.get('content-type') ?? '').includes('text/html')) {
      if (o.optional) return null;
      throw new ModelFileMissingError(name, 404);
    }
    return res;
  };
  const dropped = (name: string) => (e: Error) => new ModelNotFoundError(model, `connection dropped while reading ${name}: ${e.message}`);
  return {
    id: model,
    async fetchFile(name, o = {}) {
      const res = await request(name, o);
      if (!res) return null;
      try {
        return await res.arrayBuffer();
      } catch (e) {
        if ((e as Error).name === 'AbortError') throw e;
        throw dropped(name)(e as Error);
      }
    },
    async openFile(name, o = {}) {
      const res = await request(name, o);
      if (!res) return null;
      return resumableStream(res, (headers) => request(name, { signal: o.signal, headers }), dropped(name));
    },
  };
}

/** Range requests after one drop (a stream that keeps dropping fails after this many). */
export const MAX_RESUMES = 4;

/**
 * A download that survives dropped connections: when the body fails (or ends short of its
 * Content-Length) it asks again for the rest only, `Range: bytes=<received>-`, with
 * `If-Range: <strong ETag or Last-Modified>` so a file that changed meanwhile is never
 * spliced (the server answers 200 with the whole new file: that is the drop's typed error).
 * A drop costs what was in flight. Without a validator, or past MAX_RESUMES, the drop is
 * `mapError`'s typed error, as before. An abort is never retried.
 */
export function resumableStream(first: Response, again: (headers: Record<string, string>) => Promise<Response | null>, mapError: (e: Error) => Error): FileStream {
  const size = contentLength(first);
  const etag = first.headers.get('etag');
  const validator = etag && !etag.startsWith('W/') ? etag : first.headers.get('last-modified');
  let reader = first.body?.getReader() ?? null;
  let received = 0, resumes = 0;
  const resume = async (cause: Error): Promise<void> => {
    if (!validator || size === null || resumes >= MAX_RESUMES) throw mapError(cause);
    resumes++;
    await reader?.cancel().catch(() => undefined);
    const res = await again({ Range: `bytes=${received}-`, 'If-Range': validator });
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res?.headers.get('content-range') ?? '');
    if (!res || res.status !== 206 || !range || Number(range[1]) !== received || (range[3] !== '*' && Number(range[3]) !== size)) {
      await res?.body?.cancel().catch(() => undefined);
      throw mapError(new Error(`${cause.message}; resuming at byte ${received} was refused (HTTP ${res?.status ?? 'none'}${res?.status === 200 ? ': the file changed' : ''})`));
    }
    reader = res.body?.getReader() ?? null;
  };
  return {
    size,
    async read() {
      for (;;) {
        if (!reader) return null;
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch (e) {
          if ((e as Error)?.name === 'AbortError') throw e;
          await resume(e as Error);
          continue;
        }
        if (r.done) {
          if (size !== null && received < size) {
            await resume(new Error(`the connection closed after ${received} of ${size} bytes`));
            continue;
          }
          return null;
        }
        received += r.value.byteLength;
        return r.value;
      }
    },
    finish: async () => {},
    cancel: async (reason) => void (await reader?.cancel(reason).catch(() => undefined)),
  };
}

/** The body's size from Content-Length, when it is the size of the bytes read (not compressed). */
export function contentLength(res: Response): number | null {
  const n = Number(res.headers.get('content-length') ?? NaN);
  const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
  return Number.isSafeInteger(n) && n >= 0 && !encoded ? n : null;
}

/**
 * A model from files the user picked (file input or drag and drop), matched by base name.
 * Weight files are read by slices of CHUNK_BYTES, never whole.
 */
export function filesSource(files: readonly File[], id = 'local'): ModelSource {
  const byName = new Map(files.map((f) => [f.name, f]));
  const find = (name: string, optional?: boolean): File | null => {
    const f = byName.get(name);
    if (!f && !optional) throw new ModelFileMissingError(name);
    return f ?? null;
  };
  return {
    id,
    async fetchFile(name, o = {}) {
      return (await find(name, o.optional)?.arrayBuffer()) ?? null;
    },
    async openFile(name, o = {}) {
      const f = find(name, o.optional);
      if (!f) return null;
      let pos = 0;
      return {
        size: f.size,
        read: async () => {
          o.signal?.throwIfAborted();
          if (pos >= f.size) return null;
          const c = new Uint8Array(await f.slice(pos, pos + CHUNK_BYTES).arrayBuffer());
          pos += c.byteLength;
          return c;
        },
        finish: async () => {},
        cancel: async () => {},
      };
    },
  };
}

/** A model held in memory (random models, fixtures built at test time). */
export function memorySource(files: Map<string, Uint8Array | ArrayBuffer>, id = 'memory'): ModelSource {
  const find = (name: string, optional?: boolean): Uint8Array | null => {
    const f = files.get(name);
    if (!f && !optional) throw new ModelFileMissingError(name);
    return f ? (f instanceof ArrayBuffer ? new Uint8Array(f) : f) : null;
  };
  return {
    id,
    async fetchFile(name, o = {}) {
      const f = find(name, o.optional);
      return f ? (f.buffer.slice(f.byteOffset, f.byteOffset + f.byteLength) as ArrayBuffer) : null;
    },
    async openFile(name, o = {}) {
      const f = find(name, o.optional);
      return f ? bytesStream(f) : null;
    },
  };
}

/** A JSON object file of a model (null when optional and absent); anything else is MALFORMED_FILE. */
export async function readJsonObject(source: ModelSource, name: string, optional: boolean, signal?: AbortSignal): Promise<Record<string, any> | null> {
  const buf = await source.fetchFile(name, { optional, signal });
  if (!buf) return null;
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(buf));
  } catch (e) {
    throw new MalformedFileError(name, `not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new MalformedFileError(name, 'not a JSON object');
  return v as Record<string, any>;
}
