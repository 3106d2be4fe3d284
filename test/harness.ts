// The test harness page: exposes the engine, its kernels and the CPU reference on
// `window.pop`, so Playwright tests run cases on the real WebGPU adapter.
import * as errors from '../src/errors.ts';
import { acquireGpu } from '../src/gpu/device.ts';
import { GpuOps } from '../src/ops/gpu_ops.ts';
import { CpuOps } from '../src/reference/cpu_ops.ts';
import { Engine } from '../src/engine/engine.ts';
import { memorySource, urlSource } from '../src/model/source.ts';
import { randomModelFiles, scaleConfig } from '../src/model/random_model.ts';
import { createGpuEngine, describeGpuEngine } from '../src/engine/create.ts';
import { engineCases } from './engine_cases.ts';
import { decodeCases } from './decode_cases.ts';
import { calibrate } from '../src/engine/calibrate.ts';
import { abortStress } from './abort_cases.ts';
import * as api from '../src/api/index.ts';
import { CreateWorkerEngine } from '../src/api/index.ts';
import { loadCheckpoint, loadModelFiles } from '../src/model/loader.ts';
import { ReferenceModel } from '../src/reference/reference_model.ts';
import { runKernelCase } from './kernel_cases.ts';
import { vlmCases } from './vlm_cases.ts';
import { qwenCases } from './qwen3_vl_cases.ts';
import { halfCases } from './half_cases.ts';
import { sampleCases } from './sample_cases.ts';
import { gemma4Cases } from './gemma4_cases.ts';
import * as apiSampleCases from './api_sample_cases.ts';
import { cachedModelInfo, cachedSource, deleteCachedModel } from '../src/model/model_cache.ts';

/** What a call ended with, for fault tests: 'ok', the typed error's code, or "untyped <name>: <message>". */
async function outcomeCode(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
    return 'ok';
  } catch (x) {
    return (x as { code?: string }).code ?? `untyped ${(x as Error).name}: ${(x as Error).message}`;
  }
}

const pop = { api, errors, acquireGpu, GpuOps, CpuOps, Engine, urlSource, memorySource, randomModelFiles, scaleConfig, createGpuEngine, describeGpuEngine, loadCheckpoint, loadModelFiles, ReferenceModel, runKernelCase, engineCases, decodeCases, calibrate, abortStress, CreateWorkerEngine, vlmCases, qwenCases, halfCases, sampleCases, gemma4Cases, apiSampleCases, outcomeCode, cachedSource, cachedModelInfo, deleteCachedModel };
(globalThis as any).pop = pop;
(globalThis as any).__popReady = true;
export type PopHarness = typeof pop;
