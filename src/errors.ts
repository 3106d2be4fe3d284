// Every failure a caller can meet, one class per kind. Each has a stable `code`, a message
// that says what to do, and the fields a caller needs to act (the limit that was exceeded,
// the file that was truncated...). Errors cross the worker boundary by `code` + `fields`
// and are rebuilt with `fromSerialized`, so `instanceof` keeps working on the main thread.

export type PopErrorCode =
  | 'NO_WEBGPU'
  | 'GPU_PROCESS_CRASHED'
  | 'DEVICE_LOST'
  | 'GPU_OUT_OF_MEMORY'
  | 'GPU_ERROR'
  | 'UNSUPPORTED_FEATURE'
  | 'MODEL_NOT_FOUND'
  | 'MODEL_FILE_MISSING'
  | 'TRUNCATED_FILE'
  | 'MALFORMED_FILE'
  | 'MISSING_TENSOR'
  | 'SHAPE_MISMATCH'
  | 'UNSUPPORTED_DTYPE'
  | 'UNSUPPORTED_QUANTIZATION'
  | 'UNSUPPORTED_MODEL_TYPE'
  | 'CONTEXT_LENGTH_EXCEEDED'
  | 'KV_CACHE_FULL'
  | 'INVALID_ARGUMENT'
  | 'ABORTED'
  | 'ENGINE_NOT_LOADED'
  | 'WORKER_DIED'
  | 'WORKER_UNRESPONSIVE'
  | 'MODEL_TOO_LARGE'
  | 'STORAGE_QUOTA_EXCEEDED'
  | 'IMAGE_DECODE_FAILED'
  | 'IMAGE_TOO_LARGE'
  | 'UNSUPPORTED_FIELD'
  | 'INVALID_REQUEST'
  | 'IMAGE_FETCH_FAILED'
  | 'INTERNAL'
  | 'MALFORMED_WEIGHTS'
  | 'INVALID_RESPONSE_FORMAT'
  | 'TOOLS_UNSUPPORTED'
  | 'POP_KEEP_TOO_SHALLOW';

export type ErrorFields = Record<string, string | number | boolean | null | undefined>;

export class PopError extends Error {
  readonly code: PopErrorCode;
  readonly fields: ErrorFields;
  constructor(code: PopErrorCode, message: string, fields: ErrorFields = {}) {
    super(message);
    this.code = code;
    this.fields = fields;
    this.name = new.target.name;
  }
  toJSON() {
    return { name: this.name, code: this.code, message: this.message, fields: this.fields };
  }
}

/** A browser's way to WebGPU; hosts without a browser (the CLI's Node host) give their own. */
const BROWSER_WEBGPU_ADVICE = "Use a recent Chrome or Edge over http://localhost or https, or enable WebGPU in your browser's flags.";

export class NoWebGPUError extends PopError {
  constructor(reason: string, advice: string = BROWSER_WEBGPU_ADVICE) {
    super('NO_WEBGPU', `WebGPU is not available (${reason}). ${advice}`, { reason });
  }
}

/**
 * The process that held the GPU died or hung in the WebGPU implementation's native code (the
 * CLI's Node host runs Dawn in a child process: a crash there ends as this, not as a segfault).
 */
export class GpuProcessCrashedError extends PopError {
  constructor(host: string, how: string, step: string, adapter: string, detail = '') {
    super('GPU_PROCESS_CRASHED', `The ${host} host's GPU process stopped (${how}) while ${step}${adapter ? ` on ${adapter}` : ''}${detail ? ` (it said: ${detail})` : ''}. The WebGPU implementation failed on this driver: use another host (pop-llm's default, Chromium) or another driver.`, { host, how, step, adapter, detail });
  }
}

export class DeviceLostError extends PopError {
  constructor(reason: string, detail = '') {
    super('DEVICE_LOST', `The GPU device was lost (${reason}${detail ? `: ${detail}` : ''}). Reload the model (engine.reload) or the page to continue.`, { reason, detail });
  }
}

export class GpuOutOfMemoryError extends PopError {
  constructor(what: string, bytes: number, limitName: string, limit: number) {
    super('GPU_OUT_OF_MEMORY', `${what} needs ${bytes} bytes but ${limitName} is ${limit}. Choose a smaller model or context window.`, { what, bytes, limitName, limit });
  }
}

export class GpuError extends PopError {
  constructor(detail: string) {
    super('GPU_ERROR', `The GPU rejected a command (${detail}). This is a bug in pop-llm or a driver problem; reload the model to continue.`, { detail });
  }
}

export class UnsupportedFeatureError extends PopError {
  constructor(feature: string, detail: string) {
    super('UNSUPPORTED_FEATURE', `${feature} is not supported here: ${detail}`, { feature, detail });
  }
}

export class ModelNotFoundError extends PopError {
  constructor(model: string, detail: string) {
    super('MODEL_NOT_FOUND', `Model '${model}' could not be found (${detail}). Check the model id, URL or folder.`, { model, detail });
  }
}

export class ModelFileMissingError extends PopError {
  constructor(file: string, status?: number) {
    super('MODEL_FILE_MISSING', `Model file '${file}' is missing${status ? ` (HTTP ${status})` : ''}. The model folder must hold config.json, tokenizer.json and model.safetensors (or model.safetensors.index.json with its shards).`, { file, status });
  }
}

export class TruncatedFileError extends PopError {
  constructor(file: string, expectedBytes: number, actualBytes: number) {
    super('TRUNCATED_FILE', `File '${file}' is truncated: expected at least ${expectedBytes} bytes, got ${actualBytes}. Download it again.`, { file, expectedBytes, actualBytes });
  }
}

export class MalformedFileError extends PopError {
  constructor(file: string, detail: string) {
    super('MALFORMED_FILE', `File '${file}' is malformed: ${detail}.`, { file, detail });
  }
}

export class MissingTensorError extends PopError {
  constructor(tensor: string, file: string) {
    super('MISSING_TENSOR', `Tensor '${tensor}' is missing from ${file}. The checkpoint does not match its config.json.`, { tensor, file });
  }
}

export class ShapeMismatchError extends PopError {
  constructor(tensor: string, expected: readonly number[], actual: readonly number[]) {
    super('SHAPE_MISMATCH', `Tensor '${tensor}' has shape [${actual.join(', ')}] but config.json implies [${expected.join(', ')}].`, { tensor, expected: expected.join('x'), actual: actual.join('x') });
  }
}

export class UnsupportedDtypeError extends PopError {
  constructor(tensor: string, dtype: string) {
    super('UNSUPPORTED_DTYPE', `Tensor '${tensor}' has dtype ${dtype}; supported dtypes are F32, F16 and BF16.`, { tensor, dtype });
  }
}

export class UnsupportedQuantizationError extends PopError {
  constructor(quantization: string, supported: readonly string[]) {
    super('UNSUPPORTED_QUANTIZATION', `Quantization '${quantization}' is not supported; supported: ${supported.join(', ')}. Use the model's q4f32_1 or q4f16_1 build.`, { quantization, supported: supported.join(',') });
  }
}

export class UnsupportedModelTypeError extends PopError {
  constructor(modelType: string, supported: readonly string[]) {
    super('UNSUPPORTED_MODEL_TYPE', `model_type '${modelType}' is not supported; supported: ${supported.join(', ')}.`, { modelType, supported: supported.join(',') });
  }
}

export class ContextLengthExceededError extends PopError {
  constructor(requested: number, limit: number) {
    super('CONTEXT_LENGTH_EXCEEDED', `The sequence needs ${requested} tokens but the context window is ${limit}. Shorten the prompt, lower max_tokens, or reset the chat.`, { requested, limit });
  }
}

export class KvCacheFullError extends PopError {
  constructor(neededPages: number, freePages: number, pageSize: number) {
    super('KV_CACHE_FULL', `The KV cache has ${freePages} free pages of ${pageSize} tokens but ${neededPages} are needed. Free a sequence or use a larger context window.`, { neededPages, freePages, pageSize });
  }
}

export class InvalidArgumentError extends PopError {
  constructor(argument: string, detail: string) {
    super('INVALID_ARGUMENT', `Invalid ${argument}: ${detail}.`, { argument, detail });
  }
}

export class AbortError extends PopError {
  constructor(stage: string) {
    super('ABORTED', `The request was aborted during ${stage}. The engine is ready for the next request.`, { stage });
  }
}

export class EngineNotLoadedError extends PopError {
  constructor() {
    super('ENGINE_NOT_LOADED', 'No model is loaded. Call engine.reload(model) first.');
  }
}

export class WorkerDiedError extends PopError {
  constructor(detail: string) {
    super('WORKER_DIED', `The engine worker stopped (${detail}). Create the engine again (or reload the page).`, { detail });
  }
}

/**
 * The worker is alive but stuck: it did not answer the client's heartbeat within its deadline
 * while a call was pending (a busy loop, a call that never returns). Distinct from WORKER_DIED
 * (the worker is gone); the client ends the stuck worker, so reload starts a fresh one.
 */
export class WorkerUnresponsiveError extends PopError {
  constructor(timeoutMs: number) {
    super('WORKER_UNRESPONSIVE', `The engine worker did not answer for ${timeoutMs} ms while a call was pending (stuck); it was ended. Reload the model to start a fresh worker.`, { timeoutMs });
  }
}

export class ModelTooLargeError extends PopError {
  constructor(what: string, bytes: number, limitName: string, limit: number, suggestion: string) {
    super('MODEL_TOO_LARGE', `${what} needs ${formatBytes(bytes)} but ${limitName} is ${formatBytes(limit)}: the model does not fit on this device. ${suggestion}`, { what, bytes, limitName, limit, suggestion });
  }
}

export class StorageQuotaError extends PopError {
  constructor(needed: number, available: number) {
    super('STORAGE_QUOTA_EXCEEDED', `Storing the model needs ${formatBytes(needed)} but only ${formatBytes(available)} of browser storage is free. Delete cached models or free disk space.`, { needed, available });
  }
}

export class ImageDecodeError extends PopError {
  constructor(index: number, detail: string) {
    super('IMAGE_DECODE_FAILED', `Image ${index} could not be decoded (${detail}). Send a PNG, JPEG, WebP or GIF, an ImageBitmap, or RGBA bytes with width and height.`, { index, detail });
  }
}

export class ImageTooLargeError extends PopError {
  constructor(index: number, width: number, height: number, maxPixels: number) {
    super('IMAGE_TOO_LARGE', `Image ${index} is ${width} x ${height} = ${width * height} pixels, more than the limit of ${maxPixels}. Downscale it, or raise maxImagePixels.`, { index, width, height, maxPixels });
  }
}

/** A request or config field pop-llm does not implement (yet): refused by name, never ignored. */
export class UnsupportedFieldError extends PopError {
  constructor(field: string, where: string, reason: string) {
    super('UNSUPPORTED_FIELD', `${where}.${field} is not supported: ${reason}. Remove the field.`, { field, where, reason });
  }
}

/** A request or config field whose value has the wrong type or range. */
export class InvalidRequestError extends PopError {
  constructor(field: string, allowed: string, got: unknown) {
    super('INVALID_REQUEST', `Invalid ${field}: allowed ${allowed}; got ${describeValue(got)}.`, { field, allowed, got: describeValue(got) });
  }
}

/** A broken internal invariant (a bug in pop-llm, not in the caller's input). */
export class InternalError extends PopError {
  constructor(detail: string) {
    super('INTERNAL', `Internal error: ${detail}. This is a bug in pop-llm; please report it.`, { detail });
  }
}

function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 60) + '…' : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  try {
    const s = JSON.stringify(v);
    return s === undefined ? typeof v : s.length > 80 ? s.slice(0, 80) + '…' : s;
  } catch {
    return typeof v;
  }
}

export class MalformedWeightsError extends PopError {
  constructor(tensor: string, file: string, nan: number, inf: number, firstIndex: number) {
    super('MALFORMED_WEIGHTS', `Tensor '${tensor}' in ${file} holds ${nan} NaN and ${inf} infinite values (the first at element ${firstIndex}): the checkpoint is corrupt. Download it again, or fix the export that wrote it.`, { tensor, file, nan, inf, firstIndex });
  }
}

export class ImageFetchError extends PopError {
  constructor(index: number, url: string, status: number | null, detail: string) {
    super('IMAGE_FETCH_FAILED', `Image ${index} could not be fetched from ${url}${status !== null ? ` (HTTP ${status})` : ''}: ${detail}. Check the URL, or pass the image as a Blob or ImageBitmap.`, { index, url, status, detail });
  }
}

export class InvalidResponseFormatError extends PopError {
  constructor(kind: string, detail: string) {
    super('INVALID_RESPONSE_FORMAT', `The response_format (${kind}) cannot be used: ${detail}. Check the JSON schema or grammar; no token was generated.`, { kind, detail });
  }
}

export class ToolsUnsupportedError extends PopError {
  constructor(model: string, detail: string) {
    super('TOOLS_UNSUPPORTED', `Model '${model}' cannot take tools: ${detail}. Use a model whose chat template renders \`tools\` (Qwen2.5/3, Llama 3.x, SmolLM2), or send the request without tools.`, { model, detail });
  }
}

/** A POP keep that would skip layers an image prompt needs for every prompt row (Qwen3-VL's DeepStack adds). */
export class PopKeepTooShallowError extends PopError {
  constructor(keep: number, minKeep: number, reason: string) {
    super('POP_KEEP_TOO_SHALLOW', `POP keep ${keep} is below ${minKeep}: ${reason}. Use a keep of at least ${minKeep} (or 'exact').`, { keep, minKeep, reason });
  }
}

function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  return `${n} bytes`;
}

/** Rebuilds a typed error from its serialized form (after crossing a worker boundary). */
export function fromSerialized(s: { name: string; code: PopErrorCode; message: string; fields?: ErrorFields }): PopError {
  const e = new PopError(s.code, s.message, s.fields ?? {});
  const ctor = ERROR_CLASSES[s.code];
  if (ctor) Object.setPrototypeOf(e, ctor.prototype);
  Object.defineProperty(e, 'name', { value: s.name });
  return e;
}

const ERROR_CLASSES: Partial<Record<PopErrorCode, { prototype: PopError }>> = {
  NO_WEBGPU: NoWebGPUError, GPU_PROCESS_CRASHED: GpuProcessCrashedError, DEVICE_LOST: DeviceLostError, GPU_OUT_OF_MEMORY: GpuOutOfMemoryError,
  GPU_ERROR: GpuError, UNSUPPORTED_FEATURE: UnsupportedFeatureError, MODEL_NOT_FOUND: ModelNotFoundError, MODEL_FILE_MISSING: ModelFileMissingError,
  TRUNCATED_FILE: TruncatedFileError, MALFORMED_FILE: MalformedFileError, MISSING_TENSOR: MissingTensorError,
  SHAPE_MISMATCH: ShapeMismatchError, UNSUPPORTED_DTYPE: UnsupportedDtypeError, UNSUPPORTED_QUANTIZATION: UnsupportedQuantizationError, UNSUPPORTED_MODEL_TYPE: UnsupportedModelTypeError,
  CONTEXT_LENGTH_EXCEEDED: ContextLengthExceededError, KV_CACHE_FULL: KvCacheFullError, INVALID_ARGUMENT: InvalidArgumentError,
  ABORTED: AbortError, ENGINE_NOT_LOADED: EngineNotLoadedError, WORKER_DIED: WorkerDiedError, WORKER_UNRESPONSIVE: WorkerUnresponsiveError,
  MODEL_TOO_LARGE: ModelTooLargeError, STORAGE_QUOTA_EXCEEDED: StorageQuotaError,
  IMAGE_DECODE_FAILED: ImageDecodeError, IMAGE_TOO_LARGE: ImageTooLargeError,
  UNSUPPORTED_FIELD: UnsupportedFieldError, INVALID_REQUEST: InvalidRequestError, INTERNAL: InternalError,
  MALFORMED_WEIGHTS: MalformedWeightsError, IMAGE_FETCH_FAILED: ImageFetchError,
  INVALID_RESPONSE_FORMAT: InvalidResponseFormatError, TOOLS_UNSUPPORTED: ToolsUnsupportedError,
  POP_KEEP_TOO_SHALLOW: PopKeepTooShallowError,
};
