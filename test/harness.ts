// The test harness page: exposes the engine's modules and the CPU reference on
// `window.pop`, so Playwright tests can run cases on the real WebGPU adapter.
(async () => {
  try {
    const adapter = await navigator.gpu?.requestAdapter();
    (globalThis as any).__adapterInfo = adapter ? adapter.info : null;
    (globalThis as any).__popReady = true;
  } catch (e) {
    (globalThis as any).__popError = String(e);
  }
})();
