#!/usr/bin/env node
// The `pop-llm` command: loads the TypeScript CLI through tsx (no build step). It drives the
// repository's own pages (cli.html, src/, tools/) in Chromium, so it runs from a clone of the
// repository; the npm package carries only the browser library.
import { existsSync } from 'node:fs';

if (!existsSync(new URL('../tools/cli/main.ts', import.meta.url))) {
  console.error('pop-llm: the command line runs from a clone of the pop-llm repository (npm install there); the npm package is the browser library.');
  process.exit(1);
}
// Debian's chromium (WebGPU on SwiftShader) is what the CLI drives: install it when missing.
// The Node host (--host node: Dawn, tools/node/node_host.ts) needs no browser.
const argv = process.argv.slice(2);
const nodeHost = argv.some((a, i) => a === '--host=node' || (a === '--host' && argv[i + 1] === 'node'));
const { execFileSync } = await import('node:child_process');
try {
  if (!nodeHost) execFileSync(process.execPath, [new URL('../scripts/ensure-chromium.mjs', import.meta.url).pathname], { stdio: 'inherit' });
} catch {
  process.exit(1);
}
const { register } = await import('tsx/esm/api');
register();
await import('../tools/cli/main.ts');
