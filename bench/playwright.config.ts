import { defineConfig, type PlaywrightTestConfig } from '@playwright/test';
import { resolve } from 'node:path';
import base from '../playwright.config.ts';

// Benchmarks that run in the test harness page (`npm run bench:storage`), outside `npm test`;
// the Vite server serves the repository as for the tests.
const webServer = { ...(base.webServer as NonNullable<PlaywrightTestConfig['webServer']> & { command: string }), cwd: resolve(import.meta.dirname, '..') };
export default defineConfig({ ...base, testDir: '.', testMatch: ['**/*.bench.ts'], reporter: 'list', webServer });
