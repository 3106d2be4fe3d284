// The unrolled matmul kernels in shaders/ are written by scripts/gen_matmul_kernels.mts: the
// committed files must be exactly what the generator writes today (edit the generator, run it,
// commit both).
import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');

test('scripts/gen_matmul_kernels.mts regenerates the committed shaders byte for byte', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pop-llm-shaders-'));
  try {
    mkdirSync(join(dir, 'shaders'));
    execFileSync(process.execPath, [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), join(ROOT, 'scripts/gen_matmul_kernels.mts'), dir], { cwd: ROOT, stdio: 'pipe' });
    const generated = readdirSync(join(dir, 'shaders')).sort();
    expect(generated.length).toBeGreaterThanOrEqual(11);
    const differing = generated.filter((f) => readFileSync(join(dir, 'shaders', f), 'utf8') !== readFileSync(join(ROOT, 'shaders', f), 'utf8'));
    expect(differing).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
