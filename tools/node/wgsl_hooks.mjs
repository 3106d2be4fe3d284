// Node module hooks for the Node host's engine process (tools/node/dawn_child.mjs): the kernel
// wrappers import their WGSL as `../../shaders/x.wgsl?raw` (Vite's raw-string import); under
// Node the same import reads the file from disk and yields its text as the default export, so
// src/kernels runs unchanged.
import { readFile } from 'node:fs/promises';

export async function resolve(specifier, context, next) {
  if (specifier.endsWith('?raw') && context.parentURL) {
    return { url: new URL(specifier, context.parentURL).href, format: 'module', shortCircuit: true };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (url.startsWith('file:') && url.endsWith('?raw')) {
    const file = new URL(url);
    file.search = '';
    const text = await readFile(file, 'utf8');
    return { format: 'module', source: `export default ${JSON.stringify(text)};`, shortCircuit: true };
  }
  return next(url, context);
}
