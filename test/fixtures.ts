// Playwright fixtures: one harness page per worker (test/harness.html on the Vite server),
// with the engine and the CPU reference on `window.pop`.
import { test as base, type Page } from '@playwright/test';

export const test = base.extend<{}, { harness: Page }>({
  harness: [
    async ({ browser }, use, workerInfo) => {
      const page = await browser.newPage();
      page.on('pageerror', (e) => console.error('[page error]', e.message));
      if (process.env.POP_LLM_DEBUG) page.on('console', (m) => console.error('[page]', m.text()));
      const port = Number(process.env.POP_LLM_TEST_PORT ?? 5199);
      void workerInfo;
      await page.goto(`http://127.0.0.1:${port}/test/harness.html`);
      await page.waitForFunction(() => (globalThis as any).__popReady === true || (globalThis as any).__popError, null, { timeout: 120_000 });
      const err = await page.evaluate(() => (globalThis as any).__popError);
      if (err) throw new Error(`harness failed: ${err}`);
      await use(page);
      await page.close();
    },
    { scope: 'worker' },
  ],
});

export { expect } from '@playwright/test';
