// Where model files come from: a base URL (Hugging Face `resolve/main`, a local server, the
// app's own public folder) or files the user picked. Missing files and network failures
// become typed errors that name the file.
import { MalformedFileError, ModelFileMissingError, ModelNotFoundError } from '../errors.ts';

export interface ModelSource {
  readonly id: string;
  /** The whole file, or null when it does not exist and `optional` is set. */
  fetchFile(name: string, opts?: { optional?: boolean; signal?: AbortSignal }): Promise<ArrayBuffer | null>;
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
  return {
    id: model,
    async fetchFile(name, o = {}) {
      const url = new URL(`${base}/${name}`, typeof location !== 'undefined' ? location.href : undefined).href;
      let res: Response;
      try {
        res = await doFetch(url, { signal: o.signal });
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
      try {
        return await res.arrayBuffer();
      } catch (e) {
        if ((e as Error).name === 'AbortError') throw e;
        throw new ModelNotFoundError(model, `connection dropped while reading ${name}: ${(e as Error).message}`);
      }
    },
  };
}

/** A model from files the user picked (file input or drag and drop), matched by base name. */
export function filesSource(files: readonly File[], id = 'local'): ModelSource {
  const byName = new Map(files.map((f) => [f.name, f]));
  return {
    id,
    async fetchFile(name, o = {}) {
      const f = byName.get(name);
      if (!f) {
        if (o.optional) return null;
        throw new ModelFileMissingError(name);
      }
      return f.arrayBuffer();
    },
  };
}

/** A model held in memory (random models, fixtures built at test time). */
export function memorySource(files: Map<string, Uint8Array | ArrayBuffer>, id = 'memory'): ModelSource {
  return {
    id,
    async fetchFile(name, o = {}) {
      const f = files.get(name);
      if (!f) {
        if (o.optional) return null;
        throw new ModelFileMissingError(name);
      }
      if (f instanceof ArrayBuffer) return f.slice(0);
      return f.buffer.slice(f.byteOffset, f.byteOffset + f.byteLength) as ArrayBuffer;
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
