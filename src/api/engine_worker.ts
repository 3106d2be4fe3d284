// Starts pop-llm's own worker (the one CreateWorkerEngine uses). In the repository (Vite dev,
// the demo and the script-tag build) it is a worker chunk beside this module; the package
// build (`vite build --mode lib`) swaps this file for engine_worker_inline.ts.
export async function startEngineWorker(): Promise<Worker> {
  return new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
}
