import { defineConfig } from 'vite';
import { resolve } from 'node:path';

// WGSL files are imported as raw strings (`?raw`); the worker is an ES module.
export default defineConfig({
  server: { port: 5173, strictPort: false, host: '127.0.0.1', fs: { allow: ['..'] } },
  worker: { format: 'es' },
  build: {
    target: 'es2022',
    rollupOptions: {
      input: {
        main: resolve(__dirname, 'index.html'),
      },
    },
  },
});
