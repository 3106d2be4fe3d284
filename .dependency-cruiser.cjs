// The import rules ARCHITECTURE.md writes down ("Layers"), checked by dependency-cruiser
// (`npm run deps`, part of `npm test`): no import cycle anywhere, and the library's layers
// import only themselves and the layers below them. Type-only imports count: a type is a
// dependency too.

/** The library's layers, lowest first: each may import only itself and the layers listed before it. */
const LAYERS = [
  ['core', '^src/(errors\\.ts$|core/)'],
  ['gpu', '^src/gpu/'],
  ['kernels', '^(src/kernels/|shaders/)'],
  ['ops', '^src/ops/'],
  ['kv', '^src/kv/'],
  ['model', '^src/model/'],
  ['vision', '^src/vision/'],
  ['engine', '^src/engine/'],
  ['api', '^src/api/'],
];
/** Outside the layers: the CPU twin the tests compare against, the apps, the Node tools and the tests. */
const REFERENCE = '^src/reference/';
const APPS = '^apps/';
const TOOLS = '^(tools/|bin/)';
const TESTS = '^(test|e2e|bench|scripts)/';

const layerRules = LAYERS.map(([name, path], i) => ({
  name: `layer-${name}`,
  comment: `${name} may import only ${LAYERS.slice(0, i + 1).map(([n]) => n).join(', ')} (ARCHITECTURE.md, "Layers")`,
  severity: 'error',
  from: { path },
  to: { path: [...LAYERS.slice(i + 1).map(([, p]) => p), REFERENCE, APPS, TOOLS, TESTS] },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-circular', comment: 'an import cycle', severity: 'error', from: {}, to: { circular: true } },
    ...layerRules,
    {
      name: 'reference-below-engine',
      comment: 'the CPU twin implements Ops and follows the model and vision code; it never reaches the engine, the API, apps or tools',
      severity: 'error',
      from: { path: REFERENCE },
      to: { path: [LAYERS[7][1], LAYERS[8][1], APPS, TOOLS, TESTS] },
    },
    { name: 'apps-not-tools', comment: 'apps (pages, <pop-chat>) stand on the library alone', severity: 'error', from: { path: APPS }, to: { path: [TOOLS, REFERENCE, TESTS] } },
    { name: 'tools-not-apps', comment: 'the Node tools stand on the library alone', severity: 'error', from: { path: TOOLS }, to: { path: [APPS, TESTS] } },
    { name: 'shaders-only-from-kernels', comment: 'WGSL is loaded by the kernel wrappers only', severity: 'error', from: { pathNot: '^(src/kernels/|test/|scripts/)' }, to: { path: '^shaders/' } },
    // virtual:pop-llm/* modules are made by vite.config.ts's plugins (the embedded model's bytes).
    { name: 'not-to-unresolvable', comment: 'an import that resolves to nothing', severity: 'error', from: {}, to: { couldNotResolve: true, pathNot: '^virtual:pop-llm/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|bench/webllm)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
