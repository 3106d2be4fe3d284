import { defineConfig } from '@playwright/test';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './tools/node/browser.ts';

// Unit tests (test/) and end-to-end tests (e2e/) both run here. WebGPU comes from Debian's
// chromium on SwiftShader, which already uses every core: one worker.
const PORT = Number(process.env.POP_LLM_TEST_PORT ?? 5199);
export default defineConfig({
  testMatch: ['test/**/*.spec.ts', 'e2e/**/*.spec.ts'],
  workers: 1,
  timeout: 180_000,
  reporter: [['list'], ['./test/summary_reporter.ts']],
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS },
  },
  webServer: {
    command: `POP_LLM_NO_HMR=1 npx vite --port ${PORT} --strictPort --host 127.0.0.1`,
    url: `http://127.0.0.1:${PORT}/test/harness.html`,
    reuseExistingServer: !process.env.CI,
    timeout: 60_000,
  },
});
