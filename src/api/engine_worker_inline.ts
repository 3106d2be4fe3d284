// The package build's own worker: the whole worker bundle (embedded model included) is one
// string in a chunk of its own, imported on first use and started from a Blob URL. No file URL
// has to survive the app's bundler (Vite's dependency pre-bundling moves
// `new URL('./x.js', import.meta.url)` files away), so Vite, webpack and a plain
// <script type=module> all work unconfigured. Pages with a CSP need `worker-src blob:`.
export async function startEngineWorker(): Promise<Worker> {
  const { default: EngineWorker } = await import('./worker.ts?worker&inline');
  return new EngineWorker();
}
