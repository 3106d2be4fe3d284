// The Node host's engine process (started by tools/node/node_host.ts, never by hand): tsx for
// the TypeScript sources, the WGSL hooks for `?raw` shader imports, then the engine side.
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

registerTsx();
register('./wgsl_hooks.mjs', import.meta.url);
await import('./dawn_engine.ts');
