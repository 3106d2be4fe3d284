import { defineConfig, type BuildEnvironmentOptions } from 'vite';
import { resolve } from 'node:path';

// `vite build`: the chat demo and the bench page (dist/). `vite build --mode embed` (run after
// it by `npm run build`): the script-tag bundle dist/pop-llm.js (an IIFE that sets
// window.PopLLM and mounts <pop-chat>) plus its worker chunk in dist/assets/. An IIFE has no
// import.meta.url, so it is defined as the URL of the <script> that loaded the bundle, and
// built files (the worker) are resolved against it: the bundle works from any folder.
const SCRIPT_URL = '__popLlmScriptUrl';
const root = import.meta.dirname;

function buildOptions(mode: string): BuildEnvironmentOptions {
  if (mode !== 'embed') {
    return {
      target: 'es2022',
      rollupOptions: {
        input: {
          main: resolve(root, 'index.html'),
          bench: resolve(root, 'bench.html'),
        },
      },
    };
  }
  return {
    target: 'es2022',
    emptyOutDir: false,
    copyPublicDir: false,
    lib: { entry: resolve(root, 'apps/embed/index.ts'), name: 'PopLLM', formats: ['iife'], fileName: () => 'pop-llm.js' },
    rolldownOptions: {
      transform: { define: { 'import.meta.url': SCRIPT_URL } },
      output: {
        intro: `var ${SCRIPT_URL} = (typeof document !== 'undefined' && document.currentScript && document.currentScript.src) || (typeof location !== 'undefined' ? location.href : '');`,
      },
    },
  };
}

// WGSL files are imported as raw strings (`?raw`); the worker is an ES module.
// Tests, the CLI and benches set POP_LLM_NO_HMR so that an edited file never reloads a page
// in the middle of a run.
const noHmr = !!process.env.POP_LLM_NO_HMR;
export default defineConfig(({ mode }) => ({
  server: { port: 5173, strictPort: false, host: '127.0.0.1', fs: { allow: [root] }, hmr: noHmr ? false : undefined, watch: noHmr ? null : undefined },
  worker: { format: 'es' },
  build: buildOptions(mode),
  // The embed bundle's worker URL: relative to the script, not to the page that embeds it.
  experimental: mode === 'embed' ? { renderBuiltUrl: (file: string, { hostType }: { hostType: string }) => (hostType === 'js' ? { runtime: `new URL(${JSON.stringify(file)}, ${SCRIPT_URL}).href` } : undefined) } : undefined,
}));
