// The embedded model: stories260K (a real 260K-parameter Llama, 1 MB) ships inside the
// package, so an app runs offline with nothing to serve. Its model URL is
// `pop-llm:stories260K`; loading it reads the bytes from a lazily imported chunk.
import { ModelNotFoundError } from '../errors.ts';
import { memorySource, type ModelSource } from './source.ts';

export const EMBEDDED_MODEL_ID = 'stories260K';
export const EMBEDDED_MODEL_URL = 'pop-llm:stories260K';

export function isEmbeddedModelUrl(model: string): boolean {
  return model === EMBEDDED_MODEL_URL;
}

function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The embedded model's files, held in memory. */
export async function embeddedModelSource(): Promise<ModelSource> {
  // Service workers may not import(): there the model's files have to be served (a URL).
  const sw = (globalThis as { ServiceWorkerGlobalScope?: Function }).ServiceWorkerGlobalScope;
  if (sw && globalThis instanceof sw) throw new ModelNotFoundError(EMBEDDED_MODEL_URL, 'a service worker cannot import() the embedded model: serve its files and give their URL');
  const { files } = await import('./embedded_stories260K.ts');
  return memorySource(new Map(Object.entries(files).map(([name, b64]) => [name, decodeBase64(b64)])), EMBEDDED_MODEL_ID);
}
