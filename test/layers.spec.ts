// The import rules of ARCHITECTURE.md ("Layers"), as .dependency-cruiser.cjs writes them: the
// tree has no import cycle and no import against the layer order; and the rules do catch an
// upward import, an import of the CPU twin from the library, and a cycle (a throwaway tree).
import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');
const DEPCRUISE = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
/** What `npm run deps` cruises. */
const TREE = ['src', 'apps', 'tools', 'test', 'e2e', 'bench', 'scripts', 'bin'];

interface Violation { rule: { name: string }; from: string; to: string }
interface Result { modules: unknown[]; summary: { violations: Violation[] } }

/** Runs dependency-cruiser in `cwd` (JSON out; it exits non-zero on violations, the JSON still comes). */
function cruise(cwd: string, paths: string[]): Result {
  let out: string;
  try {
    out = execFileSync(process.execPath, [DEPCRUISE, ...paths, '--config', CONFIG, '-T', 'json'], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  } catch (e) {
    out = (e as { stdout: string }).stdout;
  }
  return JSON.parse(out);
}

test('the tree imports only down the layers and has no cycle', () => {
  const r = cruise(ROOT, TREE);
  expect(r.modules.length).toBeGreaterThan(150);
  expect(r.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`)).toEqual([]);
});

test('the rules catch an upward import, the CPU twin from the library, and a cycle', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pop-llm-layers-'));
  try {
    const files: Record<string, string> = {
      'tsconfig.json': '{ "compilerOptions": { "allowImportingTsExtensions": true, "noEmit": true } }',
      'src/errors.ts': 'export const E = 1;\n',
      'src/kernels/up.ts': "import { C } from '../model/config.ts';\nexport const U = C;\n",
      'src/model/config.ts': "import { E } from '../errors.ts';\nexport const C = E;\n",
      'src/ops/twin.ts': "import { R } from '../reference/cpu.ts';\nexport const T = R;\n",
      'src/reference/cpu.ts': 'export const R = 1;\n',
      'src/engine/a.ts': "import { B } from './b.ts';\nexport const A = 1;\nexport const AB = B;\n",
      'src/engine/b.ts': "import { A } from './a.ts';\nexport const B = A;\n",
      'apps/page.ts': "import { C } from '../src/model/config.ts';\nexport const P = C;\n",
    };
    for (const [f, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, f)), { recursive: true });
      writeFileSync(join(dir, f), text);
    }
    const found = cruise(dir, ['src', 'apps']).summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`).sort();
    expect(found).toEqual([
      'layer-kernels: src/kernels/up.ts -> src/model/config.ts',
      'layer-ops: src/ops/twin.ts -> src/reference/cpu.ts',
      'no-circular: src/engine/a.ts -> src/engine/b.ts',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
