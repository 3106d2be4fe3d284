// The repository is self-contained: a user's clone has nothing beside it, so no tracked file
// may read (or tell a user to read) the developers' source folder next to the checkout.
import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
// Spelt in two parts so that this file does not name it itself.
const OUTSIDE = '../' + 'shared';

test('no tracked file names the folder beside the checkout', () => {
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
  expect(files.length).toBeGreaterThan(100);
  const naming = files.filter((f) => {
    const bytes = readFileSync(join(ROOT, f));
    if (bytes.includes(0)) return false; // binary (weights, wasm)
    return bytes.toString('utf8').includes(OUTSIDE);
  });
  expect(naming).toEqual([]);
});

test('the vite server only serves the repository', () => {
  const cfg = readFileSync(join(ROOT, 'vite.config.ts'), 'utf8');
  expect(cfg).not.toMatch(/allow:\s*\[\s*'\.\.'/);
});
