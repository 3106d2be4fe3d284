// The request fields of issue 16 through the WebLLM-style API (MLCEngine) on stories260K:
// logprobs in OpenAI's shape (and streamed), n choices, response_format, tools with a
// template that renders them, thinking with reasoning_content.
import { test, expect } from './fixtures.ts';

const both = (page: any, kind: string, req: Record<string, unknown>) => page.evaluate(([k, r]: [string, any]) => (globalThis as any).pop.apiSampleCases.both(k, r), [kind, req]);
const errorOf = (page: any, kind: string, req: Record<string, unknown>) => page.evaluate(([k, r]: [string, any]) => (globalThis as any).pop.apiSampleCases.errorOf(k, r), [kind, req]);
const MSG = [{ role: 'user', content: 'Once upon a time' }];

test('logprobs: choices[0].logprobs.content with token, logprob, bytes, top_logprobs; streamed chunks carry the same', async ({ harness }) => {
  const { response, chunks } = await both(harness, 'plain', { messages: MSG, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3, ignore_eos: true });
  const content = response.choices[0].logprobs.content;
  expect(content.length).toBe(6);
  for (const t of content) {
    expect(typeof t.token).toBe('string');
    expect(t.logprob).toBeLessThanOrEqual(0);
    expect(Array.isArray(t.bytes)).toBe(true);
    expect(t.top_logprobs.length).toBe(3);
    // Greedy: the sampled token is the most probable one.
    expect(t.top_logprobs[0].token).toBe(t.token);
    expect(Math.abs(t.top_logprobs[0].logprob - t.logprob)).toBeLessThan(1e-6);
    expect(t.top_logprobs[1].logprob).toBeLessThanOrEqual(t.top_logprobs[0].logprob);
  }
  expect(content.map((t: any) => t.token).join('').trim()).toBe(response.choices[0].message.content.trim());
  // The streamed run reuses the first one's prompt K/V: the same tokens, logprobs within rounding.
  const streamed = chunks.flatMap((c: any) => c.choices[0]?.logprobs?.content ?? []);
  expect(streamed.map((t: any) => [t.token, t.bytes, t.top_logprobs.map((x: any) => x.token)])).toEqual(content.map((t: any) => [t.token, t.bytes, t.top_logprobs.map((x: any) => x.token)]));
  streamed.forEach((t: any, i: number) => expect(Math.abs(t.logprob - content[i].logprob)).toBeLessThan(1e-4));
  expect(response.choices[0].finish_reason).toBe('length');
});

test('n: 3 choices with a seed: indexed choices, reproducible, streamed per index with a final chunk each', async ({ harness }) => {
  const req = { messages: MSG, max_tokens: 8, temperature: 1, seed: 11, n: 3, ignore_eos: true };
  const a = await both(harness, 'plain', req);
  const b = await both(harness, 'plain', req);
  expect(a.response.choices.map((c: any) => c.index)).toEqual([0, 1, 2]);
  expect(a.response.choices.map((c: any) => c.message.content)).toEqual(b.response.choices.map((c: any) => c.message.content));
  expect(new Set(a.response.choices.map((c: any) => c.message.content)).size).toBe(3);
  const text = [0, 1, 2].map((i) => a.chunks.filter((c: any) => c.choices[0]?.index === i).map((c: any) => c.choices[0].delta.content ?? '').join(''));
  expect(text).toEqual(a.response.choices.map((c: any) => c.message.content));
  const finals = a.chunks.filter((c: any) => c.choices[0]?.finish_reason);
  expect(finals.map((c: any) => [c.choices[0].index, c.choices[0].finish_reason])).toEqual([[0, 'length'], [1, 'length'], [2, 'length']]);
});

test('n: 2 without max_tokens (stories260K, 512-token window): each choice runs to the default length; the chat goes on after', async ({ harness }) => {
  const r = await harness.evaluate(async (messages: any[]) => {
    const e = await (globalThis as any).pop.apiSampleCases.openApi('plain');
    const response = await e.chat.completions.create({ messages, temperature: 1, seed: 4, n: 2, ignore_eos: true });
    const next = await e.chat.completions.create({ messages: [...messages, response.choices[0].message, { role: 'user', content: 'And then?' }], max_tokens: 4, temperature: 0, ignore_eos: true });
    await e.resetChat();
    return { finish: response.choices.map((c: any) => c.finish_reason), completion: response.usage.completion_tokens, next: next.choices[0].message.content };
  }, MSG);
  expect(r.finish).toEqual(['length', 'length']);
  expect(r.completion).toBe(2 * 256);
  expect(r.next.length).toBeGreaterThan(0);
});

test("response_format: OpenAI's json_schema and WebLLM's json_object with a schema give JSON that validates; a bad schema is INVALID_RESPONSE_FORMAT", async ({ harness }) => {
  const { default: Ajv } = await import('ajv');
  const schema = { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['ok', 'n'] };
  const validate = new Ajv().compile(schema);
  for (const response_format of [{ type: 'json_schema', json_schema: { name: 'flag', schema, strict: true } }, { type: 'json_object', schema: JSON.stringify(schema) }]) {
    const { response, chunks } = await both(harness, 'plain', { messages: MSG, max_tokens: 40, temperature: 1, seed: 3, response_format });
    const text = response.choices[0].message.content;
    expect(validate(JSON.parse(text)), text).toBe(true);
    expect(chunks.map((c: any) => c.choices[0]?.delta?.content ?? '').join('')).toBe(text);
  }
  expect(await errorOf(harness, 'plain', { messages: MSG, response_format: { type: 'grammar', grammar: 'root ::= nothing_here' } })).toBe('INVALID_RESPONSE_FORMAT');
  expect(await errorOf(harness, 'plain', { messages: MSG, tools: [{ type: 'function', function: { name: 'f' } }] })).toBe('TOOLS_UNSUPPORTED');
});

const WEATHER = { type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 6 } }, required: ['city'] } } };

test("tools: a named tool_choice comes back as tool_calls (finish_reason 'tool_calls', streamed as delta.tool_calls); the tool's result continues the chat", async ({ harness }) => {
  const req = { messages: [{ role: 'user', content: 'Weather in Oslo?' }], tools: [WEATHER], tool_choice: { type: 'function', function: { name: 'weather' } }, max_tokens: 100, temperature: 1, seed: 4 };
  const { response, chunks } = await both(harness, 'tools', req);
  const choice = response.choices[0];
  expect(choice.finish_reason).toBe('tool_calls');
  expect(choice.message.tool_calls.length).toBe(1);
  const call = choice.message.tool_calls[0];
  expect(call.type).toBe('function');
  expect(call.function.name).toBe('weather');
  expect(typeof JSON.parse(call.function.arguments).city).toBe('string');
  const last = chunks.filter((c: any) => c.choices[0]?.finish_reason)[0].choices[0];
  expect(last.finish_reason).toBe('tool_calls');
  expect(last.delta.tool_calls[0].function.name).toBe('weather');
  expect(chunks.some((c: any) => (c.choices[0]?.delta?.content ?? '').includes('<tool_call>'))).toBe(false);
  const next = await both(harness, 'tools', { messages: [...req.messages, { role: 'assistant', content: null, tool_calls: [call] }, { role: 'tool', tool_call_id: call.id, content: '{"t":21}' }], tools: [WEATHER], max_tokens: 8, temperature: 0 });
  expect(['stop', 'length', 'tool_calls']).toContain(next.response.choices[0].finish_reason);
});

test('thinking: extra_body.enable_thinking reaches the template; <think> text comes back as reasoning_content, in messages and deltas', async ({ harness }) => {
  // stories260K does not think on its own: a grammar makes it write a think block and an answer.
  const grammar = 'root ::= "<think>" [a-z ]{3,12} "</think>" [a-z]{2,8}';
  const { response, chunks } = await both(harness, 'thinking', { messages: MSG, max_tokens: 40, temperature: 1, seed: 2, response_format: { type: 'grammar', grammar }, extra_body: { enable_thinking: true } });
  const m = response.choices[0].message;
  expect(m.reasoning_content).toMatch(/^[a-z ]{1,12}$/);
  expect(m.content).toMatch(/^[a-z]{2,8}$/);
  expect(chunks.map((c: any) => c.choices[0]?.delta?.reasoning_content ?? '').join('').trim()).toBe(m.reasoning_content);
  expect(chunks.map((c: any) => c.choices[0]?.delta?.content ?? '').join('')).toBe(m.content);
  // enable_thinking: false: the template writes the empty block into the prompt (more prompt tokens).
  const on = await both(harness, 'thinking', { messages: MSG, max_tokens: 1, extra_body: { enable_thinking: true } });
  const off = await both(harness, 'thinking', { messages: MSG, max_tokens: 1, extra_body: { enable_thinking: false } });
  expect(off.response.usage.prompt_tokens).toBeGreaterThan(on.response.usage.prompt_tokens);
});
