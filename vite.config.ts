import { defineConfig, type BuildEnvironmentOptions, type Plugin } from 'vite';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

// `npm run build` runs three builds. `vite build`: the chat demo and the bench page (dist/).
// `vite build --mode lib`: the npm package's ESM entries (dist/lib/, see src/index.ts).
// `vite build --mode embed`: the script-tag bundle dist/embed/pop-llm.js (an IIFE that sets
// window.PopLLM and mounts <pop-chat>) plus its worker chunk in dist/embed/assets/. An IIFE has no
// import.meta.url, so it is defined as the URL of the <script> that loaded the bundle, and
// built files (the worker) are resolved against it: the bundle works from any folder.
const SCRIPT_URL = '__popLlmScriptUrl';
const root = import.meta.dirname;

function buildOptions(mode: string): BuildEnvironmentOptions {
  if (mode === 'lib') {
    return {
      target: 'es2022',
      outDir: 'dist/lib',
      emptyOutDir: true,
      copyPublicDir: false,
      lib: { entry: { index: resolve(root, 'src/index.ts'), worker: resolve(root, 'src/worker.ts') }, formats: ['es'] },
      rolldownOptions: {
        output: { chunkFileNames: (c) => (c.facadeModuleId?.includes('?worker') ? 'chunks/engine-worker-[hash].js' : 'chunks/[name]-[hash].js') },
      },
    };
  }
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
    outDir: 'dist/embed',
    emptyOutDir: true,
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

// The package build (`vite build --mode lib`): the engine's own worker becomes a Blob-URL
// worker held in a chunk (src/api/engine_worker_inline.ts), since a worker file referenced by
// URL does not survive the bundlers of the apps that install the package.
const inlineEngineWorker: Plugin = {
  name: 'pop-llm:inline-engine-worker',
  enforce: 'pre',
  resolveId(source, importer) {
    if (source === './engine_worker.ts' && importer?.startsWith(resolve(root, 'src/api'))) return resolve(root, 'src/api/engine_worker_inline.ts');
    return null;
  },
};

// The embedded model's files as one module (file name -> base64), for src/model/embedded.ts:
// the package carries stories260K inside its JavaScript, nothing to serve.
const EMBEDDED_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'pop.json', 'model.safetensors'];
const embeddedModel: Plugin = {
  name: 'pop-llm:embedded-model',
  resolveId: (id) => (id === 'virtual:pop-llm/stories260K' ? '\0pop-llm-stories260K' : null),
  load(id) {
    if (id !== '\0pop-llm-stories260K') return null;
    const dir = resolve(root, 'public/models/stories260K');
    const files = Object.fromEntries(EMBEDDED_FILES.map((f) => [f, readFileSync(resolve(dir, f)).toString('base64')]));
    return `export const files = ${JSON.stringify(files)};`;
  },
};

// WGSL files are imported as raw strings (`?raw`); the worker is an ES module.
// Tests, the CLI and benches set POP_LLM_NO_HMR so that an edited file never reloads a page
// in the middle of a run.
const noHmr = !!process.env.POP_LLM_NO_HMR;
export default defineConfig(({ mode }) => ({
  // Inside the repository 'pop-llm' is the source (examples/, test/package_app/ import it as a user would).
  resolve: { alias: [{ find: /^pop-llm$/, replacement: resolve(root, 'src/index.ts') }, { find: /^pop-llm\/worker$/, replacement: resolve(root, 'src/worker.ts') }] },
  plugins: mode === 'lib' ? [embeddedModel, inlineEngineWorker] : [embeddedModel],
  server: { port: 5173, strictPort: false, host: '127.0.0.1', fs: { allow: [root] }, hmr: noHmr ? false : undefined, watch: noHmr ? null : undefined },
  worker: {
    format: 'es',
    plugins: () => [embeddedModel],
    // The package's Blob-URL worker is one file: it cannot import chunks.
    rolldownOptions: mode === 'lib' ? { output: { codeSplitting: false } } : undefined,
  },
  build: buildOptions(mode),
  // The embed bundle's worker URL: relative to the script, not to the page that embeds it.
  experimental: mode === 'embed' ? { renderBuiltUrl: (file: string, { hostType }: { hostType: string }) => (hostType === 'js' ? { runtime: `new URL(${JSON.stringify(file)}, ${SCRIPT_URL}).href` } : undefined) } : undefined,
}));
