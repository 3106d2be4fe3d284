// The CLI's Node host (`--host node`, tools/node/node_host.ts): the engine in a Node process on
// Dawn (npm `webgpu`). Here Dawn runs on Chromium's SwiftShader ICD (POP_LLM_WEBGPU_ADAPTER=
// swiftshader). Checked: stories260K's greedy ids under Node equal the independent reference
// the Chromium host matches too; a process that dies in native code (a real SIGSEGV sent while
// a shader pipeline compiles) or hangs there (SIGSTOP) ends as GPU_PROCESS_CRASHED naming the
// pipeline / step and the adapter, within a bounded time; no Vulkan driver is NO_WEBGPU with
// advice for Node, not for browsers; a bad --host is INVALID_ARGUMENT.
import { test, expect } from '@playwright/test';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNodeEngine, type NodeEngineLink } from '../tools/node/node_host.ts';
import { GpuProcessCrashedError } from '../src/errors.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const STORIES = resolve(ROOT, 'public/models/stories260K');
const REFERENCE = JSON.parse(readFileSync(resolve(STORIES, 'reference_greedy_200.json'), 'utf8')) as { generated_token_ids: number[] };

// Dawn is an optional dependency: a checkout installed without it (npm install --omit=optional,
// or node_modules from before it was added) skips these; `npm install` brings it.
test.skip(!existsSync(resolve(ROOT, 'node_modules/webgpu/package.json')), "the optional npm package 'webgpu' (Dawn) is not installed: run npm install");

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((ok) => {
    execFile(process.execPath, ['bin/pop-llm.mjs', ...args], { cwd: ROOT, timeout: 150_000, maxBuffer: 16 << 20, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as any).code === 'number' ? (err as any).code : -1) : 0;
      ok({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

test('generate --host node on SwiftShader: stories260K greedy ids from BOS equal the reference (as the Chromium host)', async () => {
  const r = await cli(['generate', '--host', 'node', '--model', 'public/models/stories260K', '--ids', '1', '--max-tokens', '40', '--ignore-eos', '--json'], { POP_LLM_WEBGPU_ADAPTER: 'swiftshader' });
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out.ids).toEqual(REFERENCE.generated_token_ids.slice(0, 40));
  expect([out.keep, out.layers]).toEqual([4, 5]); // POP exact, as on the page
  expect(out.adapter.architecture).toBe('swiftshader'); // Dawn's adapter, not Chromium's
});

/** Waits until the engine process is inside a pipeline compile (its breadcrumb), or gives up. */
async function untilCompiling(link: NodeEngineLink, ms: number): Promise<string | null> {
  const end = Date.now() + ms;
  while (Date.now() < end && !link.compilingPipeline) await new Promise((r) => setTimeout(r, 2));
  return link.compilingPipeline;
}

test('a Dawn process that dies while compiling a shader ends as GPU_PROCESS_CRASHED naming the pipeline and the adapter', async () => {
  const link = await startNodeEngine({ adapter: 'swiftshader' });
  const t0 = Date.now();
  const load = link.call('load', { model: link.folder(STORIES) });
  const caught = load.catch((e: unknown) => e);
  const pipeline = await untilCompiling(link, 60_000);
  expect(pipeline, 'the load compiles pipelines').toBeTruthy();
  process.kill(link.pid!, 'SIGSEGV'); // what a crash in Dawn's compiler delivers
  const e = (await caught) as GpuProcessCrashedError;
  expect(e).toBeInstanceOf(GpuProcessCrashedError);
  expect(e.code).toBe('GPU_PROCESS_CRASHED');
  expect(e.fields.how).toBe('signal SIGSEGV');
  expect(e.fields.step).toBe(`compiling the shader pipeline ${pipeline}`);
  expect(String(e.fields.adapter)).toMatch(/swiftshader/i);
  expect(Date.now() - t0).toBeLessThan(65_000);
  // Later calls get the same error at once; close() is harmless.
  await expect(link.call('generate', { promptIds: [1], maxTokens: 1 })).rejects.toBe(e);
  await link.close();
});

test('a Dawn process stuck in native code (no heartbeat) is killed after stallMs and ends as GPU_PROCESS_CRASHED', async () => {
  const link = await startNodeEngine({ adapter: 'swiftshader', stallMs: 2000 });
  process.kill(link.pid!, 'SIGSTOP'); // the JS thread stops as in a native hang
  const t0 = Date.now();
  const e = (await link.call('load', { model: link.folder(STORIES) }).catch((x: unknown) => x)) as GpuProcessCrashedError;
  expect(e).toBeInstanceOf(GpuProcessCrashedError);
  expect(e.fields.how).toBe('no sign of life for 2 s, killed');
  expect(Date.now() - t0).toBeLessThan(10_000);
  await link.close();
});

test('--host node without a Vulkan driver: NO_WEBGPU with advice for Node (Vulkan loader, ICD), not for browsers; a bad host is INVALID_ARGUMENT', async () => {
  // A loader that finds no driver, wherever this runs.
  const env = { POP_LLM_WEBGPU_ADAPTER: 'default', VK_ICD_FILENAMES: '/nonexistent/pop-llm-no-icd.json', LD_LIBRARY_PATH: '/usr/lib/chromium' };
  const r = await cli(['bench', '--host', 'node', '--model', 'random:configs/HuggingFaceTB__SmolLM2-135M-Instruct', '--quant', 'q4', '--json'], env);
  expect(r.code).toBe(1);
  const e = JSON.parse(r.stdout).error;
  expect(e.code).toBe('NO_WEBGPU');
  expect(e.fields.reason).toMatch(/Dawn found no WebGPU adapter/);
  expect(e.message).toMatch(/Vulkan/);
  expect(e.message).toMatch(/libvulkan/);
  expect(e.message).not.toMatch(/Chrome or Edge/);
  expect(r.ms).toBeLessThan(60_000);
  const bad = await cli(['generate', '--host', 'firefox', '--ids', '1', '--json'], {});
  expect(bad.code).toBe(1);
  expect(JSON.parse(bad.stdout).error.code).toBe('INVALID_ARGUMENT');
});
