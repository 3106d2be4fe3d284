// The embeddable bundle: `vite build --mode embed` (what `npm run build` runs into
// dist/embed/) into a temporary folder's embed/, served with public/ by a plain static server,
// so the page public/examples/script-tag.html runs only the built pop-llm.js and its worker chunk.
import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, serveStatic, storiesAutoKeep } from './helpers.ts';

let out = '';
let server: Awaited<ReturnType<typeof serveStatic>> | null = null;

test.beforeAll(async () => {
  test.setTimeout(120_000);
  out = mkdtempSync(join(tmpdir(), 'pop-llm-embed-'));
  execFileSync('npx', ['vite', 'build', '--mode', 'embed', '--outDir', join(out, 'embed'), '--logLevel', 'warn'], { cwd: ROOT, stdio: 'pipe' });
  server = await serveStatic([out, join(ROOT, 'public')]);
});
test.afterAll(async () => {
  await server?.close();
  if (out) rmSync(out, { recursive: true, force: true });
});

test('the build holds pop-llm.js and one worker chunk', () => {
  expect(readdirSync(join(out, 'embed'))).toContain('pop-llm.js');
  expect(readdirSync(join(out, 'embed', 'assets')).filter((f) => /^worker-.*\.js$/.test(f))).toHaveLength(1);
  // The page-side bundle does not carry the embedded model (its worker chunk loads it).
  expect(statSync(join(out, 'embed', 'pop-llm.js')).size).toBeLessThan(200_000);
});

test('<script src="pop-llm.js" data-model data-pop> mounts <pop-chat> that chats, and sets window.PopLLM', async ({ page }) => {
  const requests: string[] = [];
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  await page.goto(server!.url + '/examples/script-tag.html');
  expect(await page.evaluate(() => Object.keys((window as any).PopLLM ?? {}).sort())).toEqual(
    expect.arrayContaining(['CreateWorkerEngine', 'PopChatElement', 'WorkerEngine', 'errors', 'version']),
  );
  const chat = page.locator('pop-chat');
  await expect(chat).toHaveAttribute('data-state', 'ready', { timeout: 90_000 });
  await chat.locator('[data-testid=prompt]').fill('Once upon a time');
  await chat.locator('[data-testid=send]').click();
  await expect(chat.locator('[data-testid=stats]')).toContainText('TTFT', { timeout: 60_000 });
  await expect(chat.locator('[data-testid=stats]')).toContainText(`POP keep ${storiesAutoKeep()}/5`); // data-pop="auto"
  expect((await chat.locator('.msg.assistant').textContent())!.length).toBeGreaterThan(10);
  // Only the built files ran: the bundle, its worker chunk, the model.
  expect(requests.filter((p) => p.endsWith('.js'))).toEqual(expect.arrayContaining(['/embed/pop-llm.js', expect.stringMatching(/^\/embed\/assets\/worker-.*\.js$/)]));
  expect(requests.some((p) => p.startsWith('/src/'))).toBe(false);

  // The same page uses window.PopLLM.CreateWorkerEngine itself (the WebLLM-style API).
  const reply = await page.evaluate(async () => {
    const { CreateWorkerEngine } = (window as any).PopLLM;
    const engine = await CreateWorkerEngine('../models/stories260K');
    const r = await engine.completions.create({ prompt: 'Once upon a time', max_tokens: 6, pop: 'exact' });
    engine.terminate();
    return { text: r.choices[0].text as string, keep: r.usage.extra.pop_keep as number };
  });
  expect(reply.text.length).toBeGreaterThan(0);
  expect(reply.keep).toBe(4);
});
