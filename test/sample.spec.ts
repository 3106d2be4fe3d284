// The request's sampling fields (issue 16): logit_bias, frequency / presence / repetition
// penalties, min_p, a grammar's token mask and logprobs in the GPU sampler against the CPU
// twin (src/reference/sample.ts); the engine on stories260K against the independent
// reference model; structured output through @mlc-ai/web-xgrammar.
import { test, expect } from './fixtures.ts';

const call = (page: any, fn: string, ...args: unknown[]) => page.evaluate(([f, a]: [string, unknown[]]) => (globalThis as any).pop.sampleCases[f](...a), [fn, args] as [string, unknown[]]);

// Sampler vs CPU twin on random logits. differ: fraction of draws whose ids differ (float
// rounding at a draw boundary may flip one); logprobs within 1e-4; adjustments within 1e-5.
const SAMPLER = [
  { name: 'greedy + penalties + bias', vocab: 512, draws: 12, temperature: 0, frequency: 0.7, presence: 0.4, repetition: 1.3, adjusted: 60, tol: 0 },
  { name: 'greedy + mask', vocab: 700, draws: 12, temperature: 0, allowed: 0.1, adjusted: 20, repetition: 1.2, tol: 0 },
  { name: 'temperature 0.9 + top-k + top-p + min-p + penalties', vocab: 512, draws: 30, temperature: 0.9, topK: 50, topP: 0.9, minP: 0.05, frequency: -0.5, presence: 1.5, repetition: 0.8, adjusted: 80, tol: 0.04 },
  { name: 'temperature 1 + min-p 0.2 + mask', vocab: 1000, draws: 30, temperature: 1, minP: 0.2, allowed: 0.3, tol: 0.04 },
  { name: 'logprobs top 20, greedy + mask', vocab: 1000, draws: 8, temperature: 0, allowed: 0.5, topLogprobs: 20, adjusted: 30, frequency: 1, tol: 0 },
  { name: 'logprobs top 5, temperature 0.7, 49152 vocab', vocab: 49152, draws: 3, temperature: 0.7, topLogprobs: 5, adjusted: 100, repetition: 1.1, tol: 0.34 },
  { name: 'logprobs top 0, mask allowing 3 tokens', vocab: 300, draws: 6, temperature: 1, allowed: 0.01, topLogprobs: 0, tol: 0.17 },
];

for (const c of SAMPLER) {
  test(`sampler vs CPU twin: ${c.name}`, async ({ harness }) => {
    const r = await call(harness, 'samplerVsCpu', c);
    expect(r.differ, JSON.stringify(r)).toBeLessThanOrEqual(c.tol);
    expect(r.adjustErr).toBeLessThan(1e-5);
    expect(r.maskedPicked).toBe(0);
    if (c.topLogprobs !== undefined) {
      expect(r.logprobErr).toBeLessThan(1e-4);
      expect(r.topIdMismatch).toBe(0);
    }
  });
}

const PROMPT = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 426, 338, 401, 396, 267, 337, 410];

const GREEDY: [string, Record<string, unknown>][] = [
  ['frequency_penalty 1.5', { frequencyPenalty: 1.5 }],
  ['presence_penalty 2', { presencePenalty: 2 }],
  ['presence_penalty -2 + frequency_penalty -1 (rewards repeats)', { presencePenalty: -2, frequencyPenalty: -1 }],
  ['repetition_penalty 1.5', { repetitionPenalty: 1.5 }],
  ['repetition_penalty 0.7', { repetitionPenalty: 0.7 }],
  ['logit_bias', { logitBias: { 261: -100, 285: 6, 400: 4.5 } }],
  ['min_p 0.3 (greedy: no change)', { minP: 0.3 }],
];

for (const [name, o] of GREEDY) {
  test(`stories260K greedy with ${name} equals the reference`, async ({ harness }) => {
    const r = await call(harness, 'greedyVsReference', PROMPT, 24, o);
    expect(r.got).toEqual(r.want);
    // The field changes the text (a test that cannot fail is a defect); min_p cannot under greedy.
    if (!('minP' in o)) expect(r.got).not.toEqual(r.plain);
    else expect(r.got).toEqual(r.plain);
  });
}

test('stories260K logprobs match the reference log-softmax within 1e-4 (greedy and T = 0.8)', async ({ harness }) => {
  for (const [T, k] of [[0, 5], [0.8, 20]] as const) {
    const r = await call(harness, 'logprobsVsReference', PROMPT, 12, T, k);
    expect(r.steps).toBe(12);
    expect(r.err, JSON.stringify(r)).toBeLessThan(1e-4);
    expect(r.topIdMismatch).toBe(0);
  }
});

test('engine refuses bad sampling fields with typed errors (INVALID_ARGUMENT, naming the field)', async ({ harness }) => {
  const r = await call(harness, 'badFields', [
    { frequencyPenalty: 2.5 }, { presencePenalty: -3 }, { repetitionPenalty: 0 }, { minP: 1.5 },
    { logitBias: { 999: 1 } }, { logitBias: { 5: 101 } }, { logitBias: { x: 1 } }, { topLogprobs: 21 }, { topLogprobs: 1.5 },
  ]);
  expect(r).toEqual(['frequency_penalty', 'presence_penalty', 'repetition_penalty', 'min_p', 'logit_bias', 'logit_bias', 'logit_bias', 'top_logprobs', 'top_logprobs'].map((f) => `INVALID_ARGUMENT:${f}`));
});

// Structured output: seeded samples at temperature 1 on stories260K (byte fallback: any JSON
// can be spelt) must all parse and validate. Small values keep the run short.
const SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 6 },
    age: { type: 'integer', minimum: 0, maximum: 99 },
    mood: { enum: ['happy', 'sad', 'calm'] },
    tags: { type: 'array', items: { type: 'string', maxLength: 3 }, maxItems: 2 },
    home: { type: 'object', properties: { town: { type: 'string', maxLength: 5 }, floor: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['town', 'floor'], additionalProperties: false },
  },
  required: ['name', 'age', 'mood', 'tags', 'home'],
  additionalProperties: false,
};

test('json_schema: 20 seeded samples at temperature 1 parse and validate', async ({ harness }) => {
  const { default: Ajv } = await import('ajv');
  const validate = new Ajv().compile(SCHEMA);
  const r = await call(harness, 'constrained', { kind: 'json_schema', schema: JSON.stringify(SCHEMA) }, 'Once upon a time', 20, 120);
  console.log(`json_schema: 20 samples in ${(r.ms / 1000).toFixed(1)} s, e.g. ${r.texts[0]}`);
  for (const [i, t] of r.texts.entries()) {
    expect(r.finish[i], t).toBe('stop');
    const v = JSON.parse(t);
    expect(validate(v), `${t}: ${JSON.stringify(validate.errors)}`).toBe(true);
  }
  expect(new Set(r.texts).size).toBeGreaterThan(10); // seeds give different samples
});

// json_object with a schema (WebLLM's form: { type: 'json_object', schema }): 20 samples.
const SMALL = { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer', minimum: 0, maximum: 9 }, w: { type: 'string', maxLength: 3 } }, required: ['ok', 'n', 'w'] };

test('json_object with a schema: 20 seeded samples at temperature 1 parse and validate', async ({ harness }) => {
  const { default: Ajv } = await import('ajv');
  const validate = new Ajv().compile(SMALL);
  const r = await call(harness, 'constrained', { kind: 'json_schema', schema: JSON.stringify(SMALL) }, 'Once upon a time', 20, 40);
  for (const [i, t] of r.texts.entries()) {
    expect(r.finish[i], t).toBe('stop');
    expect(validate(JSON.parse(t)), t).toBe(true);
  }
});

// Plain json_object (any JSON object): stories260K at temperature 1 tends to write its story
// inside a key, so a sample may not close within max_tokens; each must open an object, and
// those that stop parse as one.
test('json_object without a schema: samples open an object; finished ones parse as one', async ({ harness }) => {
  const r = await call(harness, 'constrained', { kind: 'json' }, 'Once upon a time', 4, 30);
  for (const [i, t] of r.texts.entries()) {
    expect(t.startsWith('{')).toBe(true);
    if (r.finish[i] === 'stop') expect(typeof JSON.parse(t)).toBe('object');
  }
  const g = await call(harness, 'constrained', { kind: 'json' }, 'Once upon a time', 1, 30, 0);
  expect(g.texts[0].startsWith('{')).toBe(true);
});

// A small EBNF grammar (WebLLM's { type: 'grammar' }): a list of 1-3 lowercase words of at
// most 4 letters, or a number, in parentheses.
const EBNF = String.raw`root ::= "(" item ("," item){0,2} ")"
item ::= word | num
word ::= [a-z]{1,4}
num ::= [1-9] [0-9]?`;
const EBNF_RE = /^\((?:[a-z]{1,4}|[1-9][0-9]?)(?:,(?:[a-z]{1,4}|[1-9][0-9]?)){0,2}\)$/;

test('grammar (EBNF): 20 seeded samples at temperature 1 match the grammar', async ({ harness }) => {
  const r = await call(harness, 'constrained', { kind: 'ebnf', grammar: EBNF }, 'Once upon a time', 20, 40);
  console.log(`ebnf: e.g. ${r.texts.slice(0, 4).join(' ')}`);
  for (const [i, t] of r.texts.entries()) {
    expect(r.finish[i], t).toBe('stop');
    expect(t).toMatch(EBNF_RE);
  }
});

test('the grammar composes with POP (keep 3 of 5), multi-turn reuse and n = 2', async ({ harness }) => {
  const { default: Ajv } = await import('ajv');
  const validate = new Ajv().compile(SMALL);
  const r = await call(harness, 'constrainedComposes', { kind: 'json_schema', schema: JSON.stringify(SMALL) });
  expect(r.reused).toBeGreaterThan(5);
  for (const t of [r.pop, r.reuse, ...r.choices]) expect(validate(JSON.parse(t)), t).toBe(true);
});

test('unsatisfiable or unsupported response formats are INVALID_RESPONSE_FORMAT before any token', async ({ harness }) => {
  for (const spec of [
    { kind: 'json_schema', schema: '{"type":"integer","minimum":5,"maximum":2}' },
    { kind: 'json_schema', schema: '{"type":"object","properties":{"a":{"$ref":"#/missing"}}}' },
    { kind: 'json_schema', schema: 'not json' },
    { kind: 'ebnf', grammar: 'root ::= undefined_rule' },
  ]) expect(await call(harness, 'grammarError', spec), JSON.stringify(spec)).toBe('INVALID_RESPONSE_FORMAT');
  expect(await call(harness, 'grammarError', { kind: 'ebnf', grammar: 'root ::= "a" | "b"' })).toBe('ok');
});

// n > 1: one prefill, the prompt's KV pages shared (copy on write: stories260K's pages are 16
// tokens, so a 20-token prompt leaves a shared partial page each choice must copy).
test('n: 3 with a seed is reproducible, prefills once, shares the prompt KV; each choice equals its stream alone', async ({ harness }) => {
  const r = await call(harness, 'nChoices', PROMPT, 3, 10, 42);
  expect(r.a).toEqual(r.b);
  expect(r.a).toEqual(r.alone);
  expect(new Set(r.a.map((x: number[]) => x.join())).size).toBe(3);
  expect(r.stats.prefills).toBe(1);
  expect(r.stats.choices).toBe(3);
  expect(r.stats.prefilledTokens).toBe(PROMPT.length);
  expect(r.stats.completionTokens).toBe(30);
  // 2 extra choices x 2 pages (20 tokens, 16 per page) x 16 tokens x 5 layers x 2 (K, V) x 32 dims x 4 bytes
  expect(r.stats.sharedKvBytes).toBe(2 * 2 * 16 * 5 * 2 * 32 * 4);
  // The partial prompt page is copied by the first two writers; the last holder writes it in place.
  expect(r.copied).toBe(2);
  expect(r.freePagesAfter).toBe(r.totalPages - 2); // only choice 0's sequence holds pages
});

// Two choices of 256 tokens after a 20-token prompt need more than stories260K's one window of
// pages (512 tokens) at once: a later choice gives its pages back, and when the pool cannot hold
// it beside choice 0's answer, that answer's K/V goes. Nothing changes in the tokens; afterwards
// only the prompt's pages are held.
test('n: 2 x 256 tokens in a 512-token window: both choices run to their length and equal their streams alone; the pool ends holding the prompt', async ({ harness }) => {
  const r = await call(harness, 'nChoices', PROMPT, 2, 256, 5);
  expect(r.a.map((x: number[]) => x.length)).toEqual([256, 256]);
  expect(r.a).toEqual(r.alone);
  expect(r.stats.completionTokens).toBe(512);
  expect(r.freePagesAfter).toBe(r.totalPages - 2);
});

// Tools: stories260K through a Hermes-style template; a forced call's arguments follow the
// function's schema; the call and the tool's result render into the next turn.
// (stories260K's window is 512 tokens and its byte-fallback vocabulary spells JSON nearly byte
// by byte: the tools are small.)
const WEATHER = { type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 6 }, unit: { enum: ['c', 'f'] } }, required: ['city', 'unit'] } } };
const TIME = { type: 'function', function: { name: 'time', parameters: { type: 'object', properties: { tz: { type: 'integer', minimum: -9, maximum: 9 } }, required: ['tz'] } } };

for (const [label, choice] of [['named', { type: 'function', function: { name: 'weather' } }], ['required', 'required']] as const) {
  test(`tool round trip (tool_choice ${label}): constrained call parses into tool_calls with valid arguments; the tool result continues the chat`, async ({ harness }) => {
    const { default: Ajv } = await import('ajv');
    const ajv = new Ajv();
    const schemas: Record<string, any> = { weather: ajv.compile(WEATHER.function.parameters), time: ajv.compile(TIME.function.parameters) };
    for (const seed of [1, 2, 3]) {
      const r = await call(harness, 'toolRoundTrip', [WEATHER, TIME], choice, seed);
      expect(r.prompt1).toContain('{"type": "function", "function": {"name": "weather", "parameters": {');
      expect(r.calls.toolCalls.length, r.reply).toBe(1);
      const c = r.calls.toolCalls[0];
      if (label === 'named') expect(c.function.name).toBe('weather');
      expect(schemas[c.function.name](JSON.parse(c.function.arguments)), c.function.arguments).toBe(true);
      expect(c.id).toMatch(/^call_/);
      expect(r.prompt2).toContain(`<|im_start|>assistant\n<tool_call>\n{"name": "${c.function.name}", "arguments": {`);
      expect(r.prompt2).toContain('<tool_response>\n{"t":21}\n</tool_response>');
      expect(r.prompt2.endsWith('<|im_start|>assistant\n')).toBe(true);
      expect(r.reply2.length).toBeGreaterThan(0);
    }
  });
}
