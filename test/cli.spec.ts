// The pop-llm CLI end to end: each test runs `node bin/pop-llm.mjs ...` (its own Vite server
// and headless chromium on WebGPU) and checks what it prints and its exit status.
import { test, expect } from '@playwright/test';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from '../tools/cli/args.ts';
import { parseBench } from '../tools/cli/bench.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REFERENCE = resolve(ROOT, 'public/models/stories260K/reference_greedy_200.json');

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(process.execPath, ['bin/pop-llm.mjs', ...args], { cwd: ROOT, timeout: 150_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as any).code === 'number' ? (err as any).code : -1) : 0;
      ok({ code, stdout, stderr });
    });
  });
}

test('cli generate: greedy ids from BOS equal the stories260K reference', async () => {
  const ref = JSON.parse(readFileSync(REFERENCE, 'utf8'));
  const r = await cli(['generate', '--model', 'public/models/stories260K', '--ids', '1', '--max-tokens', '200', '--ignore-eos', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out.prompt_ids).toEqual([1]);
  expect(out.ids).toEqual(ref.generated_token_ids);
  expect(out.keep).toBe(4); // POP exact is the default (lossless)
  expect(out.layers).toBe(5);
});

test('cli generate: a text prompt returns text and stats', async () => {
  const r = await cli(['generate', '--prompt', 'Once upon a time', '--max-tokens', '20', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out.model).toBe('public/models/stories260K');
  expect(out.prompt_ids.length).toBeGreaterThan(1);
  expect(out.ids.length).toBeGreaterThan(0);
  expect(out.ids.length).toBeLessThanOrEqual(20);
  expect(typeof out.text).toBe('string');
  expect(out.text.length).toBeGreaterThan(0);
  for (const k of ['prefill_ms', 'decode_ms', 'ttft_ms', 'prefill_tokens_per_s', 'decode_tokens_per_s']) {
    expect(typeof out[k], k).toBe('number');
    expect(out[k], k).toBeGreaterThanOrEqual(0);
  }
  expect(out.pop).toBe('exact'); // the default
  expect(typeof out.variants.matmul).toBe('string');
  expect(out.adapter).toBeTruthy();
});

test('cli generate on the Gemma 4 E2B-style fixture: --pop exact reports the keep that ran and why (the last layer with its own K/V)', async () => {
  const model = 'random:test/fixtures/gemma4_e2b_tiny';
  const r = await cli(['generate', '--model', model, '--ids', '2,17,40,99,123,7,250,31,64', '--max-tokens', '6', '--ignore-eos', '--pop', 'exact', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout);
  expect([out.keep, out.layers]).toEqual([5, 10]);
  expect(out.keep_reason).toMatch(/KV-shared/);
  const off = await cli(['generate', '--model', model, '--ids', '2,17,40,99,123,7,250,31,64', '--max-tokens', '6', '--ignore-eos', '--pop', 'off', '--json']);
  expect(off.code, off.stderr).toBe(0);
  expect(JSON.parse(off.stdout)).toMatchObject({ keep: 10, ids: out.ids });
});

test('cli generate: a missing model folder exits 1 with its error code', async () => {
  const r = await cli(['generate', '--model', join(tmpdir(), 'pop-llm-no-such-model'), '--ids', '1', '--max-tokens', '2', '--json']);
  expect(r.code).toBe(1);
  expect(r.stdout + r.stderr).toMatch(/MODEL_FILE_MISSING|MODEL_NOT_FOUND/);
  expect(JSON.parse(r.stdout).error.code).toMatch(/^(MODEL_FILE_MISSING|MODEL_NOT_FOUND)$/);
});

test('cli bench: one JSON line per POP setting, off first', async () => {
  const r = await cli(['bench', '--model', 'public/models/stories260K', '--prompt-tokens', '16', '--pop', 'off,exact', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const all = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  // The load's memory line first (tools/cli/memory.ts), then one line per run.
  const mem = all[0];
  expect(mem.kind).toBe('memory');
  expect(mem.model_bytes).toBe(260032 * 4); // stories260K's parameters, f32
  expect(mem.weight_bytes).toBeGreaterThan(mem.model_bytes); // + POP's deep K/V and RoPE tables
  expect(mem.gpu_bytes).toBeGreaterThan(mem.weight_bytes + mem.kv_bytes);
  expect(mem.gpu_peak_bytes).toBeGreaterThanOrEqual(mem.gpu_bytes);
  expect(mem.js_heap_peak_bytes).toBeGreaterThan(mem.js_heap_base_bytes);
  // The loader's own accounting: the weight file streamed, never held whole at once beyond a chunk.
  const size = readFileSync(join(ROOT, 'public/models/stories260K/model.safetensors')).byteLength;
  expect(mem.loader_bytes_read).toBe(size);
  expect(mem.loader_peak_held_bytes).toBeGreaterThan(0);
  expect(mem.loader_writes).toBeGreaterThan(0);
  // Then each kernel family's choice with every candidate's timing (f32 model: no q4 GEMV).
  const kernels = all.filter((l) => l.kind === 'kernel_choice');
  // bench also times prefill's kernels on the model's shapes (probePrefill).
  expect(kernels.map((k) => k.family)).toEqual(['matmul (prefill GEMM, f32)', 'matvec (decode GEMV, f32)', 'attention (decode)', 'matmul (prefill GEMM, f32, model shape)', 'attention (prefill)']);
  for (const k of kernels) {
    expect(Object.keys(k.timings), k.family).toContain(k.choice);
    expect(Object.values(k.timings).every((v) => (v as number) > 0), k.family).toBe(true);
  }
  expect(Object.keys(kernels[2].timings).sort()).toEqual(['flash_decode', 'split_keys']);
  expect(Object.keys(kernels[3].timings).sort()).toEqual(['regblock', 'regblock_quad', 'tiled', 'tiled_db']);
  expect(Object.keys(kernels[4].timings).sort()).toEqual(['flash', 'gemm', 'rows8']);
  const lines = all.filter((l) => !l.kind);
  expect(lines).toHaveLength(2);
  expect(lines.map((l) => [l.model, l.pop, l.keep, l.layers, l.prompt_tokens])).toEqual([
    ['public/models/stories260K', 'off', 5, 5, 16],
    ['public/models/stories260K', 'exact', 4, 5, 16],
  ]);
  for (const l of lines) {
    expect(l.prefill_ms).toBeGreaterThan(0);
    expect(l.ttft_ms).toBeGreaterThan(0);
    expect(l.decode_tokens_per_s).toBeGreaterThan(0);
  }
  expect(lines[0].speedup_vs_off).toBe(1);
  expect(lines[1].speedup_vs_off).toBeGreaterThan(0);
});

test('npm run bench (no flags): the real Qwen3-0.6B and Llama-3.2-1B shapes in int4 with 16 prompt tokens and 2 new, Qwen3-VL-2B image rows; --quant / --max-tokens / --image-size override', () => {
  const bools = new Set(['json', 'gemm', 'pop-suite', 'image-full']);
  const plain = parseBench(parseArgs([], bools));
  const big = plain.models.filter((m) => /Qwen3-0\.6B|Llama-3\.2-1B/.test(m.model));
  expect(big.map((m) => [m.model, m.promptTokens, m.quant, m.maxTokens, m.gemm])).toEqual([
    ['random:configs/Qwen__Qwen3-0.6B', [16], 'q4', 2, false],
    ['random:configs/meta-llama__Llama-3.2-1B-Instruct', [16], 'q4', 2, false],
  ]);
  expect(plain.pops.map((p) => p.label)).toEqual(['off', 'exact', '2/3']);
  // Qwen3-VL-2B in int4: image rows only, its own image size (144 image tokens) unless --image-size.
  const vl = plain.models.find((m) => m.model === 'random:bench/qwen3-vl-2b')!;
  expect([vl.promptTokens, vl.quant, vl.image]).toEqual([[], 'q4', { width: 384, height: 384 }]);
  expect(parseBench(parseArgs(['--image-size', '512x512'], bools)).models.find((m) => m.model === vl.model)!.image).toBeUndefined();
  const given = parseBench(parseArgs(['--quant', 'none', '--max-tokens', '3'], bools));
  expect(given.models.every((m) => m.quant === undefined && m.maxTokens === undefined)).toBe(true);
  expect([given.quant, given.maxTokens]).toEqual(['none', 3]);
});

test('cli bench --gemm: GEMM-alone and whole-prefill GFLOP/s lines', async () => {
  const r = await cli(['bench', '--model', 'public/models/stories260K', '--prompt-tokens', '32', '--pop', 'exact', '--max-tokens', '2', '--gemm', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.kind !== 'memory' && l.kind !== 'engine' && l.kind !== 'kernel_choice');
  // No 'off' run: no speedup and no whole-prefill line, but the reference GEMM and the model's GEMMs.
  expect(lines.map((l) => l.kind ?? 'run')).toEqual(['run', 'gemm_target', 'gemm']);
  expect(lines[0].speedup_vs_off).toBeNull();
  expect([lines[1].m, lines[1].n, lines[1].k]).toEqual([512, 1536, 576]);
  expect(lines[1].gflops).toBeGreaterThan(0);
  expect(lines[2].shapes.map((x: any) => [x.m, x.n, x.k])).toEqual([[32, 128, 64], [32, 64, 64], [32, 344, 64], [32, 64, 172]]);
  expect(lines[2].gflops).toBeGreaterThan(0);
});

test('cli calibrate: per-layer importances, recommended keep, pop.json read back by --pop auto', async () => {
  const dir = join(tmpdir(), `pop-llm-calib-${process.pid}`);
  const { cpSync, mkdirSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });
  cpSync(resolve(ROOT, 'public/models/stories260K'), dir, { recursive: true });
  const { rmSync } = await import('node:fs');
  rmSync(join(dir, 'pop.json'), { force: true });
  const r = await cli(['calibrate', '--model', dir, '--text', 'bench/calibration.txt', '--context', '32', '--continuation', '8', '--budget', '0.05', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out.layers).toHaveLength(5);
  expect(Math.abs(out.layers[4].prefill_importance)).toBeLessThan(1e-3);
  expect(out.recommended_keep).toBeGreaterThanOrEqual(1);
  expect(out.recommended_keep).toBeLessThanOrEqual(5);
  const saved = JSON.parse(readFileSync(join(dir, 'pop.json'), 'utf8'));
  expect(saved.keep).toBe(out.recommended_keep);
  const g = await cli(['generate', '--model', dir, '--ids', '1,403,407,261', '--max-tokens', '4', '--pop', 'auto', '--json']);
  expect(g.code, g.stderr).toBe(0);
  expect(JSON.parse(g.stdout).keep).toBe(out.recommended_keep);
  rmSync(dir, { recursive: true, force: true });
});
