// Shared by the e2e specs: the dev server's URL, the embedded model's files, routes that
// serve a model folder at any URL (a Hub mimic, corrupt copies), and a static file server.
import { readFileSync, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import { expect, type Page, type Route } from '@playwright/test';

export const ROOT = resolve(import.meta.dirname, '..');
export const BASE = `http://127.0.0.1:${process.env.POP_LLM_TEST_PORT ?? 5199}`;
export const STORIES_DIR = join(ROOT, 'public/models/stories260K');

export function storiesFile(name: string): Buffer | null {
  const p = join(STORIES_DIR, name);
  return existsSync(p) ? readFileSync(p) : null;
}

/** POP 'auto' on the embedded model: its pop.json calibration when it has one, else exact. */
export function storiesAutoKeep(): number {
  const calib = storiesFile('pop.json');
  return calib ? JSON.parse(calib.toString('utf8')).keep : 4;
}

const TYPES: Record<string, string> = { '.json': 'application/json', '.js': 'text/javascript', '.html': 'text/html', '.css': 'text/css', '.safetensors': 'application/octet-stream' };
const CORS = { 'access-control-allow-origin': '*' };

/** Answers a model-file request from `files` (404 when absent), as the Hub's CDN would. */
export async function fulfillFile(route: Route, name: string, files: (name: string) => Buffer | Uint8Array | null): Promise<void> {
  const body = files(name);
  if (!body) return route.fulfill({ status: 404, headers: CORS, contentType: 'text/plain', body: 'Entry not found' });
  return route.fulfill({ status: 200, headers: CORS, contentType: TYPES[extname(name)] ?? 'application/octet-stream', body: Buffer.from(body) });
}

/** Waits for the demo page to reach a state (body[data-state]). */
export async function waitState(page: Page, state: string, timeout = 120_000): Promise<void> {
  await expect(page.locator('body')).toHaveAttribute('data-state', state, { timeout });
}

/** A static server over folders (first match wins), on 127.0.0.1 (a secure context for WebGPU). */
export async function serveStatic(roots: string[]): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    let path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (path.endsWith('/')) path += 'index.html';
    for (const r of roots) {
      const p = normalize(join(r, path));
      if (p.startsWith(r) && existsSync(p) && statSync(p).isFile()) {
        res.writeHead(200, { 'content-type': TYPES[extname(p)] ?? 'application/octet-stream' });
        res.end(readFileSync(p));
        return;
      }
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}
