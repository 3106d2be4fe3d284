// The npm package as a user gets it: `npm run build:lib` (+ the script-tag build), `npm pack`,
// then a fresh app in a temporary folder outside the repository installs the tarball and Vite
// offline (`npm install --offline`, from the npm cache that the repository's own install
// filled; the app's lockfile is cut from the repository's, so no registry is asked), imports
// only from 'pop-llm', type-checks against the package's .d.ts alone (no @webgpu/types, no
// WebLLM, skipLibCheck off), builds with Vite and streams a greedy reply on the embedded model
// in Chromium: in the page (CreateMLCEngine), in its own worker (CreateWebWorkerMLCEngine with
// WebWorkerMLCEngineHandler), and in the package's own Blob-URL worker (CreateWorkerEngine).
// The three replies are equal.
import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, serveStatic } from '../e2e/helpers.ts';

test.describe.configure({ mode: 'serial' });

let tmp = '';
let app = '';
let tarball = '';
let server: Awaited<ReturnType<typeof serveStatic>> | null = null;

const run = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, stdio: 'pipe', encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });

/** The lockfile entries of `name` and everything it needs, as the repository's lockfile has them. */
function lockClosure(name: string): Record<string, object> {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dependencies?: object; optionalDependencies?: object }> };
  const P = lock.packages;
  const out: Record<string, object> = {};
  const find = (from: string, dep: string): string | null => {
    for (let base = from; ; ) {
      const k = `${base ? base + '/' : ''}node_modules/${dep}`;
      if (P[k]) return k;
      if (!base) return null;
      const i = base.lastIndexOf('/node_modules/');
      base = i < 0 ? '' : base.slice(0, i);
    }
  };
  const add = (k: string) => {
    if (out[k]) return;
    out[k] = { ...P[k], dev: true };
    for (const d of Object.keys({ ...P[k].dependencies, ...P[k].optionalDependencies })) {
      const c = find(k, d);
      if (c) add(c);
    }
  };
  add(`node_modules/${name}`);
  return out;
}

test.beforeAll(async () => {
  test.setTimeout(300_000);
  tmp = mkdtempSync(join(tmpdir(), 'pop-llm-package-'));
  run('npm', ['run', 'build:lib', '--silent'], ROOT);
  run('npm', ['run', 'build:embed', '--silent'], ROOT);
  const packed = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], ROOT)) as { filename: string; files: { path: string }[] }[];
  tarball = join(tmp, packed[0].filename);
  writeFileSync(join(tmp, 'files.json'), JSON.stringify(packed[0].files.map((f) => f.path)));

  app = join(tmp, 'app');
  cpSync(join(ROOT, 'examples/package_app'), app, { recursive: true });
  const vite = (JSON.parse(readFileSync(join(ROOT, 'node_modules/vite/package.json'), 'utf8')) as { version: string }).version;
  const manifest = { name: 'fresh-app', private: true, type: 'module', dependencies: { 'pop-llm': `file:${tarball}` }, devDependencies: { vite } };
  writeFileSync(join(app, 'package.json'), JSON.stringify(manifest, null, 2));
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify({
    name: 'fresh-app', lockfileVersion: 3, requires: true,
    packages: { '': manifest, ...lockClosure('vite'), 'node_modules/pop-llm': { version: '0.1.0', resolved: `file:${tarball}` } },
  }, null, 1));
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], app);
  run('npx', ['vite', 'build', '--logLevel', 'warn'], app);
  server = await serveStatic([join(app, 'dist')]);
});

test.afterAll(async () => {
  await server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('the tarball holds the built library, its types, the script-tag build and no sources', () => {
  const files = JSON.parse(readFileSync(join(tmp, 'files.json'), 'utf8')) as string[];
  expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/worker.js', 'dist/lib/worker.d.ts', 'dist/embed/pop-llm.js']));
  expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/') || f.startsWith('public/'))).toEqual([]);
  // Everything is bundled: the app's install brought in pop-llm and nothing for it.
  const pkg = JSON.parse(readFileSync(join(app, 'node_modules/pop-llm/package.json'), 'utf8'));
  expect(pkg.dependencies ?? {}).toEqual({});
  expect(readdirSync(join(app, 'node_modules')).filter((n) => !n.startsWith('.'))).toEqual(expect.arrayContaining(['pop-llm', 'vite']));
});

test('the app type-checks against the package types alone', () => {
  // Strict, skipLibCheck off, no ambient types: the .d.ts must stand on its own.
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2022', 'DOM', 'DOM.Iterable'], types: [], strict: true, skipLibCheck: false, noEmit: true, allowImportingTsExtensions: true },
    files: ['main.ts'],
  }));
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  let out = '';
  try {
    out = run(process.execPath, [tsc, '-p', app], app);
  } catch (e) {
    out = (e as { stdout?: string }).stdout ?? String(e);
  }
  expect(out).toBe('');
  const dts = readFileSync(join(app, 'node_modules/pop-llm/dist/lib/index.d.ts'), 'utf8');
  expect(dts).not.toMatch(/from\s+['"](?!\.)/);
  expect(dts).not.toMatch(/\/\/\/\s*<reference/);
});

test('the built app streams the same greedy reply in the page, in its own worker and in the package worker', async ({ page }) => {
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url().startsWith('blob:') ? 'blob:' : new URL(r.url()).pathname));
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  await page.goto(server!.url + '/');
  await expect(page.locator('#status')).toHaveText('done', { timeout: 150_000 });
  const inPage = await page.locator('#page').textContent();
  expect(inPage!.length).toBeGreaterThan(10);
  expect(await page.locator('#worker').textContent()).toBe(inPage);
  expect(await page.locator('#inner').textContent()).toBe(inPage);
  // Only the app's built files were fetched, and the package's Blob-URL worker (the model is
  // inside the package's JavaScript).
  expect(requests.filter((p) => !(p === '/' || p === 'blob:' || p.startsWith('/assets/')))).toEqual([]);
});
