import { defineConfig } from 'vite';
import { resolve } from 'node:path';

// WGSL files are imported as raw strings (`?raw`); the worker is an ES module.
// Tests, the CLI and benches set POP_LLM_NO_HMR so that an edited file never reloads a page
// in the middle of a run.
const noHmr = !!process.env.POP_LLM_NO_HMR;
export default defineConfig({
  server: { port: 5173, strictPort: false, host: '127.0.0.1', fs: { allow: ['..'] }, hmr: noHmr ? false : undefined, watch: noHmr ? null : undefined },
  worker: { format: 'es' },
  build: {
    target: 'es2022',
    rollupOptions: {
      input: {
        main: resolve(import.meta.dirname, 'index.html'),
      },
    },
  },
});
