// The package's public entry (`import … from 'pop-llm'`): the WebLLM-style engine API, its
// OpenAI-shaped types and the typed errors. `npm run build` bundles it into dist/lib/index.js
// (ESM, every dependency, shader and the engine's worker inside) and dist/lib/index.d.ts.
export * from './api/index.ts';
export * from './errors.ts';
