// Every field of WebLLM 0.2.79's ChatCompletionRequest, CompletionCreateParams, MLCEngineConfig,
// ChatOptions and ModelRecord (plus pop-llm's own), and what pop-llm does with it: 'honoured'
// (with the check of its type and range) or 'refused' (UNSUPPORTED_FIELD, naming it, unless
// the value is the field's no-op). Fields not in a table are refused too. Whoever implements
// a refused field flips its entry to 'honoured' here; test/api_fields.spec.ts sends every
// entry a good and a bad value.
import { InvalidRequestError, UnsupportedFieldError } from '../errors.ts';
import { LOG_LEVELS } from './protocol.ts';

/** null: the value is fine; a string: what is allowed (INVALID_REQUEST says it). */
type Check = (v: unknown) => string | null;

export type FieldRule =
  | { status: 'honoured'; check: Check }
  | { status: 'refused'; reason: string; /** Values that ask for nothing (n: 1, logprobs: false): accepted. */ noop?: (v: unknown) => boolean };

export type FieldTable = Readonly<Record<string, FieldRule>>;

// ---------------------------------------------------------------- checks
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const nullable = (c: Check, allowed: string): Check => (v) => (v === null ? null : c(v) === null ? null : `${allowed} or null`);
export const checks = {
  any: ((): null => null) as Check,
  bool: ((v) => (typeof v === 'boolean' ? null : 'true or false')) as Check,
  string: ((v) => (typeof v === 'string' ? null : 'a string')) as Check,
  nonEmptyString: ((v) => (typeof v === 'string' && v.length > 0 ? null : 'a non-empty string')) as Check,
  func: ((v) => (typeof v === 'function' ? null : 'a function')) as Check,
  int: (min: number, max = Infinity): Check => (v) => (isNum(v) && Number.isInteger(v) && v >= min && v <= max ? null : `an integer in [${min}, ${max === Infinity ? '∞' : max}]`),
  num: (min: number, max: number, o: { minOpen?: boolean } = {}): Check => (v) =>
    isNum(v) && (o.minOpen ? v > min : v >= min) && v <= max ? null : `a number in ${o.minOpen ? '(' : '['}${min}, ${max === Infinity ? '∞)' : `${max}]`}`,
  oneOf: (values: readonly unknown[]): Check => (v) => (values.includes(v) ? null : values.map((x) => JSON.stringify(x)).join(' | ')),
  nullable,
};

const popSetting: Check = (v) => {
  const allowed = "'off' | 'exact' | 'auto' | an integer keep >= 1 | {ratio in (0, 1]}";
  if (v === 'off' || v === 'exact' || v === 'auto') return null;
  if (isNum(v)) return Number.isInteger(v) && v >= 1 ? null : allowed;
  if (typeof v === 'object' && v !== null && Object.keys(v).length === 1 && isNum((v as { ratio?: unknown }).ratio)) {
    const r = (v as { ratio: number }).ratio;
    return r > 0 && r <= 1 ? null : allowed;
  }
  return allowed;
};
const stop: Check = (v) => (v === null || typeof v === 'string' || (Array.isArray(v) && v.every((s) => typeof s === 'string' && s.length > 0)) ? null : 'a string, an array of non-empty strings, or null');
const signal: Check = (v) => (typeof v === 'object' && v !== null && typeof (v as AbortSignal).aborted === 'boolean' && typeof (v as AbortSignal).addEventListener === 'function' ? null : 'an AbortSignal');
const streamOptions: Check = (v) => (v === null || (typeof v === 'object' && !Array.isArray(v)) ? null : 'an object { include_usage?: boolean } or null');
const logitBias: Check = (v) => (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.entries(v).every(([k, b]) => /^\d+$/.test(k) && isNum(b) && b >= -100 && b <= 100) ? null : 'an object { token id: bias in [-100, 100] }');
const responseFormat: Check = (v) => {
  const f = v as { type?: unknown; schema?: unknown; grammar?: unknown; json_schema?: { name?: unknown; schema?: unknown } };
  const allowed = "{ type: 'text' } | { type: 'json_object', schema? } | { type: 'json_schema', json_schema: { name, schema, strict? } } | { type: 'grammar', grammar }";
  if (typeof v !== 'object' || v === null) return allowed;
  if (f.type === 'text') return null;
  if (f.type === 'json_object') return f.schema === undefined || f.schema === null || typeof f.schema === 'string' || typeof f.schema === 'object' ? null : allowed;
  if (f.type === 'grammar') return typeof f.grammar === 'string' && f.grammar.length > 0 ? null : allowed;
  if (f.type === 'json_schema') return typeof f.json_schema === 'object' && f.json_schema !== null && typeof f.json_schema.name === 'string' ? null : allowed;
  return allowed;
};
const extraBody: Check = (v) => (typeof v === 'object' && v !== null && Object.entries(v).every(([k, x]) => k === 'enable_thinking' && (typeof x === 'boolean' || isAbsent(x))) ? null : '{ enable_thinking?: boolean }');
const isAbsent = (v: unknown) => v === undefined || v === null;
const honoured = (check: Check): FieldRule => ({ status: 'honoured', check });
const refused = (reason: string, noop?: (v: unknown) => boolean): FieldRule => ({ status: 'refused', reason, noop });


/** Fields common to chat and text completion requests. */
const GENERATION_FIELDS: FieldTable = {
  stream: honoured(nullable(checks.bool, 'true or false')),
  stream_options: honoured(streamOptions),
  n: honoured(nullable(checks.int(1, 8), 'an integer in [1, 8]')),
  frequency_penalty: honoured(nullable(checks.num(-2, 2), 'a number in [-2, 2]')),
  presence_penalty: honoured(nullable(checks.num(-2, 2), 'a number in [-2, 2]')),
  repetition_penalty: honoured(nullable(checks.num(0, Infinity, { minOpen: true }), 'a number in (0, ∞)')),
  max_tokens: honoured(nullable(checks.int(1), 'an integer in [1, ∞)')),
  stop: honoured(stop),
  temperature: honoured(nullable(checks.num(0, Infinity), 'a number in [0, ∞)')),
  top_p: honoured(nullable(checks.num(0, 1, { minOpen: true }), 'a number in (0, 1]')),
  logit_bias: honoured(nullable(logitBias, 'an object { token id: bias in [-100, 100] }')),
  logprobs: honoured(nullable(checks.bool, 'true or false')),
  top_logprobs: honoured(nullable(checks.int(0, 20), 'an integer in [0, 20]')),
  seed: honoured(nullable(checks.int(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER), 'an integer')),
  ignore_eos: honoured(checks.bool),
  model: honoured(nullable(checks.nonEmptyString, 'a loaded model id')),
  // pop-llm's own
  pop: honoured(popSetting),
  top_k: honoured(checks.int(0)),
  min_p: honoured(nullable(checks.num(0, 1), 'a number in [0, 1]')),
  signal: honoured(signal),
};

export const CHAT_REQUEST_FIELDS: FieldTable = {
  ...GENERATION_FIELDS,
  messages: honoured((v) => (Array.isArray(v) && v.length > 0 ? null : 'a non-empty array of messages')),
  // Checked in full (names, schemas) when the prompt is prepared (src/api/tools.ts).
  tools: honoured(nullable((v) => (Array.isArray(v) ? null : 'an array of tools'), 'an array of tools')),
  tool_choice: honoured(nullable((v) => (v === 'auto' || v === 'none' || v === 'required' || (typeof v === 'object' && v !== null) ? null : "'auto' | 'none' | 'required' | { type: 'function', function: { name } }"), 'a tool choice')),
  response_format: honoured(nullable(responseFormat, 'a response format')),
  extra_body: honoured(nullable(extraBody, '{ enable_thinking?: boolean }')),
};

export const COMPLETION_REQUEST_FIELDS: FieldTable = {
  ...GENERATION_FIELDS,
  prompt: honoured(checks.string),
  echo: honoured(nullable(checks.bool, 'true or false')),
  suffix: refused('suffix (insertion) is not implemented', (v) => v === ''),
  user: refused('WebLLM refuses it too (there is no end user to attribute a local request to)'),
  best_of: refused('best_of > 1 is not implemented (use n for several completions)', (v) => v === 1),
};

/** A message's fields. */
export const MESSAGE_FIELDS: FieldTable = {
  role: honoured(checks.oneOf(['system', 'user', 'assistant', 'tool'])),
  content: honoured((v) => (typeof v === 'string' || v === null || Array.isArray(v) ? null : 'a string or an array of content parts')),
  name: refused('chat templates get role and content only'),
  tool_calls: honoured((v) => (Array.isArray(v) ? null : 'an array of tool calls')),
  tool_call_id: honoured(checks.nonEmptyString),
};

const appConfig: Check = (v) => (typeof v === 'object' && v !== null && Array.isArray((v as { model_list?: unknown }).model_list) ? null : 'an AppConfig { model_list: ModelRecord[] }');

/** MLCEngineConfig (WebLLM) and pop-llm's load options. */
export const ENGINE_CONFIG_FIELDS: FieldTable = {
  appConfig: honoured(appConfig),
  initProgressCallback: honoured(checks.func),
  logitProcessorRegistry: honoured((v) => (v instanceof Map ? null : 'a Map from model id to LogitProcessor')),
  logLevel: honoured(checks.oneOf(Object.keys(LOG_LEVELS))),
  // pop-llm's own
  pop: honoured(popSetting),
  contextWindow: honoured(checks.int(1)),
  hubBase: honoured(checks.nonEmptyString),
  useCache: honoured(checks.bool),
  weightDtype: honoured(checks.oneOf(['auto', 'f32', 'f16'])),
  kvDtype: honoured(checks.oneOf(['auto', 'f32', 'f16'])),
  maxImagePixels: honoured(checks.int(1)),
  memoryBytes: honoured(checks.num(0, Infinity, { minOpen: true })),
  quantization: honoured(checks.oneOf(['none', 'q4', 'q4-asym'])),
  quantizeLmHead: honoured(checks.bool),
  embeddingDtype: honoured(checks.oneOf(['auto', 'q4', 'f16', 'f32'])),
  lmHeadDtype: honoured(checks.oneOf(['auto', 'q4', 'f16', 'f32'])),
  checkWeights: honoured(checks.bool),
};

const FROM_MODEL = 'pop-llm reads it from the model folder (config.json, tokenizer.json, the chat template)';
/** ChatOptions: WebLLM's ChatConfig overrides (reload's chatOpts, ModelRecord.overrides). */
export const CHAT_OPTIONS_FIELDS: FieldTable = {
  context_window_size: honoured(checks.int(1)),
  temperature: honoured(checks.num(0, Infinity)),
  top_p: honoured(checks.num(0, 1, { minOpen: true })),
  repetition_penalty: honoured(checks.num(0, Infinity, { minOpen: true })),
  frequency_penalty: honoured(checks.num(-2, 2)),
  presence_penalty: honoured(checks.num(-2, 2)),
  tokenizer_files: refused(FROM_MODEL),
  tokenizer_info: refused(FROM_MODEL),
  token_table_postproc_method: refused(FROM_MODEL),
  vocab_size: refused(FROM_MODEL),
  conv_config: refused(FROM_MODEL),
  conv_template: refused(FROM_MODEL),
  bos_token_id: refused(FROM_MODEL),
  sliding_window_size: refused(`${FROM_MODEL}: sliding windows are the model's own`, (v) => v === -1),
  attention_sink_size: refused('attention sinks are not implemented', (v) => v === -1 || v === 0),
};

/** ModelRecord (AppConfig.model_list entries). */
export const MODEL_RECORD_FIELDS: FieldTable = {
  model: honoured(checks.nonEmptyString),
  model_id: honoured(checks.nonEmptyString),
  // WebLLM's compiled model library: pop-llm runs its own kernels, so there is nothing to fetch.
  model_lib: honoured(checks.string),
  overrides: honoured((v) => (typeof v === 'object' && v !== null ? null : 'a ChatOptions object')),
  // Sizes for apps to show or filter on; WebLLM does not enforce them either (fit: engine.checkFit).
  vram_required_MB: honoured(checks.num(0, Infinity)),
  low_resource_required: honoured(checks.bool),
  buffer_size_required_bytes: honoured(checks.num(0, Infinity)),
  // Checked against the adapter at reload (UNSUPPORTED_FEATURE).
  required_features: honoured((v) => (Array.isArray(v) && v.every((f) => typeof f === 'string') ? null : 'an array of WebGPU feature names')),
  model_type: honoured(checks.oneOf([0, 2])),
};

/**
 * Checks an object against a table: unknown and refused fields are UNSUPPORTED_FIELD, bad
 * values INVALID_REQUEST (named `where.field`). Absent (undefined) fields pass; null passes
 * for refused fields (it asks for nothing) and for honoured ones whose check allows it.
 */
export function checkFields(obj: unknown, table: FieldTable, where: string, kind = where): void {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new InvalidRequestError(where, `an object (${kind})`, obj);
  for (const [field, value] of Object.entries(obj)) {
    if (value === undefined) continue;
    const rule = Object.hasOwn(table, field) ? table[field] : undefined;
    if (!rule) throw new UnsupportedFieldError(field, where, `not a field of ${kind}`);
    if (rule.status === 'refused') {
      if (value === null || rule.noop?.(value)) continue;
      throw new UnsupportedFieldError(field, where, rule.reason);
    }
    const allowed = rule.check(value);
    if (allowed !== null) throw new InvalidRequestError(`${where}.${field}`, allowed, value);
  }
}

/** Checks messages and their content parts (roles, order, image parts). */
export function checkMessages(messages: readonly unknown[]): void {
  messages.forEach((m, i) => {
    const where = `messages[${i}]`;
    checkFields(m, MESSAGE_FIELDS, where, 'ChatCompletionMessageParam');
    const msg = m as { role?: unknown; content?: unknown };
    if (msg.role === undefined) throw new InvalidRequestError(`${where}.role`, "'system' | 'user' | 'assistant' | 'tool'", undefined);
    if (msg.role === 'tool' && typeof (m as { tool_call_id?: unknown }).tool_call_id !== 'string') throw new InvalidRequestError(`${where}.tool_call_id`, "the id of the call a 'tool' message answers", undefined);
    if (msg.role === 'system' && i !== 0) throw new InvalidRequestError(`${where}.role`, "'system' only as the first message", msg.role);
    if (msg.role !== 'assistant' && (msg.content === undefined || msg.content === null)) throw new InvalidRequestError(`${where}.content`, 'a string or an array of content parts', msg.content);
    if (Array.isArray(msg.content)) {
      if (msg.role !== 'user') throw new InvalidRequestError(`${where}.content`, 'a string (content parts are for user messages)', msg.content);
      msg.content.forEach((p, j) => checkPart(p, `${where}.content[${j}]`));
    }
  });
  const last = messages[messages.length - 1] as { role?: unknown };
  if (last.role !== 'user' && last.role !== 'tool') throw new InvalidRequestError(`messages[${messages.length - 1}].role`, "'user' or 'tool' for the last message", last.role);
}

function checkPart(p: unknown, where: string): void {
  const part = p as { type?: unknown; text?: unknown; image_url?: unknown };
  if (typeof p !== 'object' || p === null) throw new InvalidRequestError(where, 'a content part { type: "text" | "image_url" }', p);
  if (part.type === 'text') {
    checkFields(p, { type: honoured(checks.any), text: honoured(checks.string) }, where, 'ChatCompletionContentPartText');
    if (typeof part.text !== 'string') throw new InvalidRequestError(`${where}.text`, 'a string', part.text);
    return;
  }
  if (part.type !== 'image_url') throw new InvalidRequestError(`${where}.type`, "'text' | 'image_url'", part.type);
  checkFields(p, { type: honoured(checks.any), image_url: honoured(checks.any) }, where, 'ChatCompletionContentPartImage');
  const url = part.image_url;
  if (typeof url === 'string') return; // OpenAI's older form: the URL itself
  if (typeof url !== 'object' || url === null) throw new InvalidRequestError(`${where}.image_url`, '{ url }', url);
  checkFields(url, {
    url: honoured((v) => (typeof v === 'string' || typeof v === 'object' ? null : 'a URL string, File, Blob, ImageBitmap, <img> or canvas')),
    detail: refused('image detail levels are not implemented (each model preprocesses at its own size)', (v) => v === 'auto'),
  }, `${where}.image_url`, 'ImageURL');
  if ((url as { url?: unknown }).url === undefined || (url as { url?: unknown }).url === null) throw new InvalidRequestError(`${where}.image_url.url`, 'a URL string, File, Blob, ImageBitmap, <img> or canvas', undefined);
}

export function checkChatRequest(req: unknown): void {
  checkFields(req, CHAT_REQUEST_FIELDS, 'request', 'ChatCompletionRequest');
  checkLogprobs(req);
  const r = req as { messages?: unknown[]; stream?: unknown; stream_options?: unknown };
  if (r.messages === undefined) throw new InvalidRequestError('request.messages', 'a non-empty array of messages', undefined);
  checkMessages(r.messages);
  checkStreamOptions(r);
}

export function checkCompletionRequest(req: unknown): void {
  checkFields(req, COMPLETION_REQUEST_FIELDS, 'request', 'CompletionCreateParams');
  checkLogprobs(req);
  const r = req as { prompt?: unknown; echo?: unknown; stream?: unknown; stream_options?: unknown };
  if (typeof r.prompt !== 'string') throw new InvalidRequestError('request.prompt', 'a string', r.prompt);
  if (r.echo && r.stream) throw new UnsupportedFieldError('echo', 'request', 'echo with stream: true (WebLLM echoes non-streaming completions only)');
  checkStreamOptions(r);
}

/** top_logprobs needs logprobs: true (as WebLLM and OpenAI). */
function checkLogprobs(req: unknown): void {
  const r = req as { logprobs?: unknown; top_logprobs?: unknown };
  if (!isAbsent(r.top_logprobs) && r.logprobs !== true) throw new InvalidRequestError('request.top_logprobs', 'only with logprobs: true', r.top_logprobs);
}

function checkStreamOptions(r: { stream?: unknown; stream_options?: unknown }): void {
  if (r.stream_options === undefined || r.stream_options === null) return;
  if (!r.stream) throw new InvalidRequestError('request.stream_options', 'only with stream: true', r.stream_options);
  checkFields(r.stream_options, { include_usage: honoured(checks.bool) }, 'request.stream_options', 'ChatCompletionStreamOptions');
}

export function checkEngineConfig(config: unknown): void {
  if (config === undefined) return;
  checkFields(config, ENGINE_CONFIG_FIELDS, 'engineConfig', 'MLCEngineConfig');
  const app = (config as { appConfig?: unknown }).appConfig;
  if (app !== undefined) checkAppConfig(app);
}

export function checkAppConfig(app: unknown): void {
  checkFields(app, { model_list: honoured(appConfigList), useIndexedDBCache: refused('pop-llm keeps models in the Cache API (with IndexedDB metadata)', (v) => v === false) }, 'appConfig', 'AppConfig');
  (app as { model_list: unknown[] }).model_list.forEach((r, i) => {
    const where = `appConfig.model_list[${i}]`;
    checkFields(r, MODEL_RECORD_FIELDS, where, 'ModelRecord');
    for (const f of ['model', 'model_id'] as const) if ((r as Record<string, unknown>)[f] === undefined) throw new InvalidRequestError(`${where}.${f}`, 'a non-empty string', undefined);
    const o = (r as { overrides?: unknown }).overrides;
    if (o !== undefined) checkFields(o, CHAT_OPTIONS_FIELDS, `${where}.overrides`, 'ChatOptions');
  });
}
const appConfigList: Check = (v) => (Array.isArray(v) ? null : 'an array of ModelRecord');

export function checkChatOptions(opts: unknown, where = 'chatOpts'): void {
  if (opts === undefined) return;
  checkFields(opts, CHAT_OPTIONS_FIELDS, where, 'ChatOptions');
}

/** reload's third argument (pop-llm): load options for this load, and a signal. */
export function checkReloadOptions(o: unknown): void {
  if (o === undefined) return;
  const { appConfig: _a, initProgressCallback: _i, logitProcessorRegistry: _l, logLevel: _v, ...load } = ENGINE_CONFIG_FIELDS;
  checkFields(o, { ...load, signal: honoured(signal) }, 'reloadOptions', 'ReloadOptions');
}
