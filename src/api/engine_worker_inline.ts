// The package build's worker: the whole worker bundle is a string in a chunk of its own,
// started from a Blob URL. No file URL has to survive the app's bundler (Vite's dependency
// pre-bundling moves `new URL('./x.js', import.meta.url)` files away), so Vite, webpack and a
// plain <script type=module> all work unconfigured. Pages with a CSP need `worker-src blob:`.
// A Blob-URL worker cannot import chunks, so it is built without the embedded model: the
// page sends those files.
import type { EngineWorker } from './engine_worker.ts';

export async function startEngineWorker(): Promise<EngineWorker> {
  const { default: Worker } = await import('./worker.ts?worker&inline');
  return { worker: new Worker(), carriesEmbeddedModel: false };
}
