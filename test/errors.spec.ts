// Typed errors: every class keeps its code, name and fields, and survives serialization
// (the worker boundary) with instanceof intact. Then the engine's request errors (context,
// vocabulary, max_tokens, POP setting, abort) on stories260K in Node, and that after each
// failed request the engine answers the next one exactly like a fresh engine.
import { test, expect } from './fixtures.ts';
import * as E from '../src/errors.ts';
import { Engine, type GenerateOptions } from '../src/engine/engine.ts';
import { folderSource } from '../tools/node/fs_source.ts';
import { CpuOps } from '../src/reference/cpu_ops.ts';
import { caught, expectPopError } from './fixtures/expect_error.ts';
import { STORIES_DIR } from './fixtures/model_files.ts';

type Case = { error: E.PopError; cls: abstract new (...a: any[]) => E.PopError; code: E.PopErrorCode; fields: E.ErrorFields; mentions: string[] };
const CASES: Case[] = [
  { error: new E.NoWebGPUError('navigator.gpu is undefined'), cls: E.NoWebGPUError, code: 'NO_WEBGPU', fields: { reason: 'navigator.gpu is undefined' }, mentions: ['navigator.gpu is undefined'] },
  { error: new E.GpuProcessCrashedError('node', 'signal SIGSEGV', 'compiling the shader pipeline matmul/default{}', 'google swiftshader'), cls: E.GpuProcessCrashedError, code: 'GPU_PROCESS_CRASHED', fields: { host: 'node', how: 'signal SIGSEGV', step: 'compiling the shader pipeline matmul/default{}', adapter: 'google swiftshader', detail: '' }, mentions: ['signal SIGSEGV', 'matmul/default{}', 'google swiftshader', 'Chromium'] },
  { error: new E.DeviceLostError('destroyed', 'tab hidden'), cls: E.DeviceLostError, code: 'DEVICE_LOST', fields: { reason: 'destroyed', detail: 'tab hidden' }, mentions: ['destroyed', 'tab hidden'] },
  { error: new E.GpuOutOfMemoryError('kv cache', 5000, 'maxBufferSize', 4096), cls: E.GpuOutOfMemoryError, code: 'GPU_OUT_OF_MEMORY', fields: { what: 'kv cache', bytes: 5000, limitName: 'maxBufferSize', limit: 4096 }, mentions: ['5000', '4096', 'maxBufferSize'] },
  { error: new E.GpuError('validation: bad binding'), cls: E.GpuError, code: 'GPU_ERROR', fields: { detail: 'validation: bad binding' }, mentions: ['validation: bad binding'] },
  { error: new E.UnsupportedFeatureError('shader-f16', 'adapter lacks it'), cls: E.UnsupportedFeatureError, code: 'UNSUPPORTED_FEATURE', fields: { feature: 'shader-f16', detail: 'adapter lacks it' }, mentions: ['shader-f16'] },
  { error: new E.ModelNotFoundError('a/b', 'HTTP 500'), cls: E.ModelNotFoundError, code: 'MODEL_NOT_FOUND', fields: { model: 'a/b', detail: 'HTTP 500' }, mentions: ['a/b', 'HTTP 500'] },
  { error: new E.ModelFileMissingError('config.json', 404), cls: E.ModelFileMissingError, code: 'MODEL_FILE_MISSING', fields: { file: 'config.json', status: 404 }, mentions: ['config.json', '404'] },
  { error: new E.TruncatedFileError('model.safetensors', 1000, 10), cls: E.TruncatedFileError, code: 'TRUNCATED_FILE', fields: { file: 'model.safetensors', expectedBytes: 1000, actualBytes: 10 }, mentions: ['model.safetensors', '1000', '10'] },
  { error: new E.MalformedFileError('x.json', 'bad'), cls: E.MalformedFileError, code: 'MALFORMED_FILE', fields: { file: 'x.json', detail: 'bad' }, mentions: ['x.json', 'bad'] },
  { error: new E.MissingTensorError('lm_head.weight', 'model.safetensors'), cls: E.MissingTensorError, code: 'MISSING_TENSOR', fields: { tensor: 'lm_head.weight', file: 'model.safetensors' }, mentions: ['lm_head.weight'] },
  { error: new E.ShapeMismatchError('w', [2, 3], [3, 2]), cls: E.ShapeMismatchError, code: 'SHAPE_MISMATCH', fields: { tensor: 'w', expected: '2x3', actual: '3x2' }, mentions: ['[2, 3]', '[3, 2]'] },
  { error: new E.UnsupportedDtypeError('w', 'I32'), cls: E.UnsupportedDtypeError, code: 'UNSUPPORTED_DTYPE', fields: { tensor: 'w', dtype: 'I32' }, mentions: ['I32'] },
  { error: new E.UnsupportedQuantizationError('q3f16_0', ['q4f32_1', 'q4f16_1']), cls: E.UnsupportedQuantizationError, code: 'UNSUPPORTED_QUANTIZATION', fields: { quantization: 'q3f16_0', supported: 'q4f32_1,q4f16_1' }, mentions: ['q3f16_0', 'q4f32_1, q4f16_1'] },
  { error: new E.UnsupportedModelTypeError('gpt2', ['llama', 'qwen2']), cls: E.UnsupportedModelTypeError, code: 'UNSUPPORTED_MODEL_TYPE', fields: { modelType: 'gpt2', supported: 'llama,qwen2' }, mentions: ['gpt2', 'llama, qwen2'] },
  { error: new E.ContextLengthExceededError(600, 512), cls: E.ContextLengthExceededError, code: 'CONTEXT_LENGTH_EXCEEDED', fields: { requested: 600, limit: 512 }, mentions: ['600', '512'] },
  { error: new E.KvCacheFullError(3, 1, 16), cls: E.KvCacheFullError, code: 'KV_CACHE_FULL', fields: { neededPages: 3, freePages: 1, pageSize: 16 }, mentions: ['3', '1 free', '16'] },
  { error: new E.InvalidArgumentError('max_tokens', 'must be at least 1'), cls: E.InvalidArgumentError, code: 'INVALID_ARGUMENT', fields: { argument: 'max_tokens', detail: 'must be at least 1' }, mentions: ['max_tokens'] },
  { error: new E.AbortError('decode'), cls: E.AbortError, code: 'ABORTED', fields: { stage: 'decode' }, mentions: ['decode'] },
  { error: new E.EngineNotLoadedError(), cls: E.EngineNotLoadedError, code: 'ENGINE_NOT_LOADED', fields: {}, mentions: ['reload'] },
  { error: new E.WorkerDiedError('terminated'), cls: E.WorkerDiedError, code: 'WORKER_DIED', fields: { detail: 'terminated' }, mentions: ['terminated'] },
  { error: new E.WorkerUnresponsiveError(30000), cls: E.WorkerUnresponsiveError, code: 'WORKER_UNRESPONSIVE', fields: { timeoutMs: 30000 }, mentions: ['30000 ms', 'stuck'] },
  { error: new E.ModelTooLargeError('embedding table', 3e9, 'maxStorageBufferBindingSize', 2e9, 'Choose a smaller model.'), cls: E.ModelTooLargeError, code: 'MODEL_TOO_LARGE', fields: { what: 'embedding table', bytes: 3e9, limitName: 'maxStorageBufferBindingSize', limit: 2e9, suggestion: 'Choose a smaller model.' }, mentions: ['embedding table', '3.00 GB', 'maxStorageBufferBindingSize', 'smaller model'] },
  { error: new E.ImageDecodeError(1, 'bad PNG header'), cls: E.ImageDecodeError, code: 'IMAGE_DECODE_FAILED', fields: { index: 1, detail: 'bad PNG header' }, mentions: ['Image 1', 'bad PNG header'] },
  { error: new E.ImageTooLargeError(0, 20000, 10000, 1e8), cls: E.ImageTooLargeError, code: 'IMAGE_TOO_LARGE', fields: { index: 0, width: 20000, height: 10000, maxPixels: 1e8 }, mentions: ['20000 x 10000', '100000000', 'maxImagePixels'] },
  { error: new E.MalformedWeightsError('model.norm.weight', 'model.safetensors', 3, 1, 7), cls: E.MalformedWeightsError, code: 'MALFORMED_WEIGHTS', fields: { tensor: 'model.norm.weight', file: 'model.safetensors', nan: 3, inf: 1, firstIndex: 7 }, mentions: ['model.norm.weight', 'model.safetensors', '3 NaN', '1 infinite', 'element 7'] },
  { error: new E.ImageFetchError(0, 'https://x/y.png', 404, 'not found'), cls: E.ImageFetchError, code: 'IMAGE_FETCH_FAILED', fields: { index: 0, url: 'https://x/y.png', status: 404, detail: 'not found' }, mentions: ['Image 0', 'https://x/y.png', 'HTTP 404'] },
  { error: new E.InvalidResponseFormatError('json_schema', 'not a schema'), cls: E.InvalidResponseFormatError, code: 'INVALID_RESPONSE_FORMAT', fields: { kind: 'json_schema', detail: 'not a schema' }, mentions: ['json_schema', 'not a schema'] },
  { error: new E.ToolsUnsupportedError('acme/m', 'no tools in its template'), cls: E.ToolsUnsupportedError, code: 'TOOLS_UNSUPPORTED', fields: { model: 'acme/m', detail: 'no tools in its template' }, mentions: ['acme/m', 'no tools in its template'] },
  { error: new E.PopKeepTooShallowError(2, 3, 'DeepStack adds'), cls: E.PopKeepTooShallowError, code: 'POP_KEEP_TOO_SHALLOW', fields: { keep: 2, minKeep: 3, reason: 'DeepStack adds' }, mentions: ['keep 2', 'at least 3'] },
  { error: new E.StorageQuotaError(5e8, 1e8), cls: E.StorageQuotaError, code: 'STORAGE_QUOTA_EXCEEDED', fields: { needed: 5e8, available: 1e8 }, mentions: ['500.0 MB', '100.0 MB'] },
  { error: new E.UnsupportedFieldError('n', 'request', 'not yet'), cls: E.UnsupportedFieldError, code: 'UNSUPPORTED_FIELD', fields: { field: 'n', where: 'request', reason: 'not yet' }, mentions: ['request.n', 'not yet'] },
  { error: new E.InvalidRequestError('request.top_p', 'a number in (0, 1]', 2), cls: E.InvalidRequestError, code: 'INVALID_REQUEST', fields: { field: 'request.top_p', allowed: 'a number in (0, 1]', got: '2' }, mentions: ['request.top_p', '(0, 1]', 'got 2'] },
  { error: new E.InternalError('a broken invariant'), cls: E.InternalError, code: 'INTERNAL', fields: { detail: 'a broken invariant' }, mentions: ['a broken invariant', 'bug'] },
];

test('every error class: code, name, fields, message, instanceof PopError and Error', () => {
  const codes = new Set<string>();
  for (const c of CASES) {
    expectPopError(c.error, c.cls, c.code, c.fields);
    expect(c.error).toBeInstanceOf(Error);
    expect(c.error.fields).toEqual(c.fields);
    for (const m of c.mentions) expect(c.error.message, c.code).toContain(m);
    expect(c.error.toJSON()).toEqual({ name: c.cls.name, code: c.code, message: c.error.message, fields: c.fields });
    codes.add(c.code);
  }
  expect(codes.size).toBe(CASES.length); // one class per code
  // Every exported error class has a case here.
  const classes = Object.values(E).filter((v): v is typeof E.PopError => typeof v === 'function' && v.prototype instanceof E.PopError);
  for (const cls of classes) expect(CASES.some((c) => c.cls === cls), `${cls.name} has no case`).toBe(true);
});

test("NO_WEBGPU's advice: a browser's by default, the host's own where it gives one (the CLI's Node host)", () => {
  expect(new E.NoWebGPUError('x').message).toMatch(/Chrome or Edge/);
  const node = new E.NoWebGPUError('Dawn found no WebGPU adapter', 'Install a Vulkan driver.');
  expectPopError(node, E.NoWebGPUError, 'NO_WEBGPU', { reason: 'Dawn found no WebGPU adapter' });
  expect(node.message).toBe('WebGPU is not available (Dawn found no WebGPU adapter). Install a Vulkan driver.');
});

test('fromSerialized after JSON (a worker boundary) rebuilds the same class, code, fields and message', () => {
  for (const c of CASES) {
    const back = E.fromSerialized(JSON.parse(JSON.stringify(c.error)));
    expectPopError(back, c.cls, c.code, c.fields);
    expect(back.message).toBe(c.error.message);
    // Not some other class.
    for (const other of CASES) if (other.cls !== c.cls) expect(back instanceof other.cls).toBe(false);
  }
  // An unknown code still gives a PopError; missing fields become {}.
  const odd = E.fromSerialized({ name: 'FutureError', code: 'SOMETHING_NEW' as E.PopErrorCode, message: 'm' });
  expect(odd).toBeInstanceOf(E.PopError);
  expect(odd.code).toBe('SOMETHING_NEW');
  expect(odd.fields).toEqual({});
  expect(odd.name).toBe('FutureError');
});

test.describe('engine request errors leave the engine working (stories260K, CPU, context 32)', () => {
  const PROMPT = [1, 403, 407, 261, 378, 432, 383, 286];
  const RUN: GenerateOptions = { maxTokens: 8, ignoreEos: true };
  const open = () => Engine.load(new CpuOps(), folderSource(STORIES_DIR), { contextWindow: 32, pageSize: 8 });
  let baseline: number[];
  let engine: Engine<Float32Array>;

  test.beforeAll(async () => {
    baseline = (await (await open()).generate(PROMPT, RUN)).ids;
    expect(baseline).toHaveLength(8);
    engine = await open();
  });

  const stillWorks = async () => {
    expect((await engine.generate(PROMPT, RUN)).ids).toEqual(baseline);
    expect((await engine.generate(PROMPT, { ...RUN, reusePrefix: true })).ids).toEqual(baseline);
    expect(engine.cache.length(0)).toBe(PROMPT.length + RUN.maxTokens - 1);
  };

  test('prompt + max_tokens past the context: CONTEXT_LENGTH_EXCEEDED with requested and limit', async () => {
    const long = Array.from({ length: 30 }, (_, i) => (i * 7 + 3) % 512);
    const e = await caught(() => engine.generate(long, { maxTokens: 5 }));
    expectPopError(e, E.ContextLengthExceededError, 'CONTEXT_LENGTH_EXCEEDED', { requested: 34, limit: 32 });
    await stillWorks();
    const e2 = await caught(() => engine.generate([...long, 1, 2, 3], { maxTokens: 1 }));
    expectPopError(e2, E.ContextLengthExceededError, 'CONTEXT_LENGTH_EXCEEDED', { requested: 33, limit: 32 });
    await stillWorks();
    // Exactly the window fits: 28 prompt tokens + 5 new (the last one never enters the cache).
    const fit = await engine.generate(long.slice(0, 28), { maxTokens: 5, ignoreEos: true });
    expect(fit.ids).toHaveLength(5);
    await stillWorks();
  });

  test('token ids outside the vocabulary, an empty prompt: INVALID_ARGUMENT prompt', async () => {
    for (const bad of [[1, 512], [1, -1], [1, 2.5], [Number.NaN], []]) {
      const e = await caught(() => engine.generate(bad, RUN));
      expectPopError(e, E.InvalidArgumentError, 'INVALID_ARGUMENT', { argument: 'prompt' });
      await stillWorks();
    }
    expect((await caught(() => engine.generate([1, 512], RUN))).message).toContain('512');
    expect((await engine.generate([1, 511], { maxTokens: 1 })).ids).toHaveLength(1); // the last id is fine
  });

  test('max_tokens 0, negative or NaN: INVALID_ARGUMENT max_tokens', async () => {
    for (const maxTokens of [0, -3, Number.NaN]) {
      expectPopError(await caught(() => engine.generate(PROMPT, { maxTokens })), E.InvalidArgumentError, 'INVALID_ARGUMENT', { argument: 'max_tokens' });
      await stillWorks();
    }
  });

  test('a bad POP setting: INVALID_ARGUMENT pop', async () => {
    for (const pop of [0, 6, 2.5]) {
      expectPopError(await caught(() => engine.generate(PROMPT, { ...RUN, pop })), E.InvalidArgumentError, 'INVALID_ARGUMENT', { argument: 'pop' });
      await stillWorks();
    }
  });

  test('aborted before prefill and during decode: ABORTED with the stage; the cache is emptied', async () => {
    const pre = new AbortController();
    pre.abort();
    expectPopError(await caught(() => engine.generate(PROMPT, { ...RUN, signal: pre.signal })), E.AbortError, 'ABORTED', { stage: 'prefill' });
    expect(engine.cache.allocator.freePages).toBe(engine.cache.allocator.numPages);
    await stillWorks();
    const mid = new AbortController();
    const seen: number[] = [];
    const e = await caught(() => engine.generate(PROMPT, { ...RUN, reusePrefix: true, signal: mid.signal, onToken: (id) => (seen.push(id), seen.length === 3 && mid.abort()) }));
    expectPopError(e, E.AbortError, 'ABORTED', { stage: 'decode' });
    expect(seen).toEqual(baseline.slice(0, 3));
    expect(engine.cache.allocator.freePages).toBe(engine.cache.allocator.numPages);
    await stillWorks();
  });

  test('a throwing onToken callback propagates its own error; the engine recovers', async () => {
    const boom = new Error('consumer failed');
    const e = await caught(() => engine.generate(PROMPT, { ...RUN, reusePrefix: true, onToken: (id) => { if (id === baseline[4]) throw boom; } }));
    expect(e).toBe(boom);
    await stillWorks();
  });

  test('multi-turn prefix reuse across a failed request equals a fresh engine', async () => {
    const first = await engine.generate(PROMPT, { ...RUN, reusePrefix: true });
    expect(first.ids).toEqual(baseline);
    expectPopError(await caught(() => engine.generate([...PROMPT, 600], { ...RUN, reusePrefix: true })), E.InvalidArgumentError, 'INVALID_ARGUMENT');
    const turn2 = [...PROMPT, ...first.ids.slice(0, -1), 261, 300];
    const reused = await engine.generate(turn2, { ...RUN, reusePrefix: true });
    const fresh = await (await open()).generate(turn2, RUN);
    expect(reused.ids).toEqual(fresh.ids);
    expect(reused.stats.reusedTokens).toBeGreaterThan(0);
  });
});
