#!/usr/bin/env node
// Makes sure Debian's chromium is present: WebGPU tests, the CLI and benches drive it
// through Playwright (Playwright cannot download its own browser on this network).
// As root it installs the package itself; otherwise it stops with one line saying how.
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';

export const CHROMIUM = process.env.POP_LLM_CHROMIUM ?? '/usr/bin/chromium';
const args = new Set(process.argv.slice(2));

if (existsSync(CHROMIUM)) process.exit(0);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot) {
  console.error(`pop-llm: chromium is missing at ${CHROMIUM}; run: sudo apt-get update && sudo apt-get install -y chromium`);
  process.exit(args.has('--optional') ? 0 : 1);
}
console.error('pop-llm: installing Debian chromium (needed for WebGPU on SwiftShader)...');
try {
  execSync('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium', { stdio: ['ignore', 'ignore', 'inherit'] });
} catch {
  console.error('pop-llm: could not install chromium; run: apt-get update && apt-get install -y chromium');
  process.exit(args.has('--optional') ? 0 : 1);
}
if (!existsSync(CHROMIUM)) {
  console.error(`pop-llm: chromium still missing at ${CHROMIUM} after apt-get install`);
  process.exit(1);
}
