// Node side only: serve the project with Vite on localhost and drive Debian's chromium
// (WebGPU on SwiftShader) through Playwright. Used by the CLI, the benches and the tests,
// so that they all run exactly the code a user's tab runs.
import { chromium, type Browser, type Page } from 'playwright';
import { createServer, type ViteDevServer } from 'vite';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CHROMIUM_PATH = process.env.POP_LLM_CHROMIUM ?? '/usr/bin/chromium';

/** The flags DEVELOPERS.md fixes for WebGPU on SwiftShader in headless chromium. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-webgpu-adapter=swiftshader',
  // performance.memory to the byte (bench memory figures), and gc() for a clean baseline.
  '--enable-precise-memory-info',
  '--js-flags=--expose-gc',
];

/**
 * POP_LLM_WEBGPU_ADAPTER=default lets Chromium pick the machine's GPU (bench/gpu.sh on a GPU
 * machine); unset or 'swiftshader': SwiftShader, as the tests need.
 */
export function chromiumArgs(adapter = process.env.POP_LLM_WEBGPU_ADAPTER ?? 'swiftshader'): string[] {
  return adapter === 'swiftshader' ? CHROMIUM_ARGS : CHROMIUM_ARGS.filter((a) => !a.startsWith('--use-webgpu-adapter='));
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: chromiumArgs(), headless: true });
}

export async function startServer(port = 0): Promise<{ server: ViteDevServer; url: string }> {
  const server = await createServer({
    root: PROJECT_ROOT,
    configFile: resolve(PROJECT_ROOT, 'vite.config.ts'),
    logLevel: 'error',
    server: { port, host: '127.0.0.1', strictPort: false, hmr: false, watch: null },
  });
  await server.listen();
  const addr = server.httpServer?.address();
  if (!addr || typeof addr === 'string') throw new Error('vite server has no address');
  return { server, url: `http://127.0.0.1:${addr.port}` };
}

/** Opens a page of the project (default: the test harness) and waits until it says it is ready. */
export async function openPage(browser: Browser, baseUrl: string, path = '/test/harness.html'): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  if (process.env.POP_LLM_DEBUG) page.on('console', (m) => console.error('[page]', m.text()));
  await page.goto(baseUrl + path);
  await page.waitForFunction(() => (globalThis as any).__popReady === true || (globalThis as any).__popError, null, { timeout: 120_000 });
  const err = await page.evaluate(() => (globalThis as any).__popError);
  if (err) throw new Error(`page failed to start: ${err}`);
  return page;
}
