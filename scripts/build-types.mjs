// The package's type declarations: one self-contained .d.ts per entry (dist/lib/index.d.ts,
// dist/lib/worker.d.ts), bundled by dts-bundle-generator from the public entry's types only.
// A bundle that still imports a package (WebLLM, @webgpu/types, ...) or references one is
// refused here: the package has no dependencies, so a user's compiler could not resolve it.
import { generateDtsBundle } from 'dts-bundle-generator';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entries = { index: 'src/index.ts', worker: 'src/worker.ts' };
const outputs = generateDtsBundle(
  Object.values(entries).map((filePath) => ({ filePath: resolve(root, filePath), output: { noBanner: true, exportReferencedTypes: false } })),
  { preferredConfigPath: resolve(root, 'tsconfig.json') },
);
mkdirSync(resolve(root, 'dist/lib'), { recursive: true });
Object.keys(entries).forEach((name, i) => {
  const text = outputs[i];
  const foreign = text.match(/^\s*(import\b.*\bfrom\s+['"][^.][^'"]*['"]|\/\/\/\s*<reference\b.*)$/m);
  if (foreign) {
    console.error(`dist/lib/${name}.d.ts would depend on another package: ${foreign[0].trim()}`);
    process.exit(1);
  }
  writeFileSync(resolve(root, `dist/lib/${name}.d.ts`), text);
  console.log(`dist/lib/${name}.d.ts: ${text.split('\n').length} lines`);
});
