// Starts the worker that owns the GPU for CreateWorkerEngine. In the repository (Vite dev,
// the demo and the script-tag build) it is a worker chunk beside this module, which loads the
// embedded model's chunk itself; the package build (`vite build --mode lib`) swaps this file
// for engine_worker_inline.ts.
export interface EngineWorker {
  worker: Worker;
  /** False when the page must send the embedded model's files (the worker cannot import them). */
  carriesEmbeddedModel: boolean;
}

export async function startEngineWorker(): Promise<EngineWorker> {
  return { worker: new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' }), carriesEmbeddedModel: true };
}
