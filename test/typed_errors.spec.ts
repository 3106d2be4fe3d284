// Every error pop-llm throws has a code: no bare Error (or TypeError, RangeError...) is built
// anywhere in src/, so a caller can always act on `error.code`. Runs in Node over the sources.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test, expect } from '@playwright/test';

const SRC = new URL('../src/', import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : /\.(ts|js|mts)$/.test(n) ? [p] : [];
  });
}

test('no bare Error in src/: every thrown error is a typed PopError with a code', () => {
  const bare = /\bnew (Error|TypeError|RangeError|SyntaxError|ReferenceError|EvalError|URIError|AggregateError)\s*\(|\bthrow\s+['"`]/;
  const hits: string[] = [];
  for (const file of sources(SRC)) {
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, '');
      if (bare.test(code)) hits.push(`${relative(SRC, file)}:${i + 1}: ${line.trim()}`);
    });
  }
  expect(hits).toEqual([]);
  // The scan finds what it looks for (a test that cannot fail is a defect).
  expect(bare.test("throw new Error('x')")).toBe(true);
  expect(bare.test('throw new InternalError("x")')).toBe(false);
});
