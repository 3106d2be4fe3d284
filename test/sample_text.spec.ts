// Text-side pieces of issue 16, in Node (no page): tool-call parsing and checks, the
// reasoning splitter (Qwen3's <think>, Gemma 4's thought channel), and the thinking switch
// through a template.
import { test, expect } from '@playwright/test';
import { Template } from '@huggingface/jinja';
import { checkTools, parseToolCalls, templateMessage, toolGrammar, toolStyle } from '../src/api/tools.ts';
import { GEMMA4_THOUGHT_CHANNEL, promptOpensThinking, ReasoningSplitter, splitReasoning, THINK_TAGS, thinkingMarkers } from '../src/api/reasoning.ts';
import { THINKING_TEMPLATE, TOOL_TEMPLATE } from './fixtures/chat_templates.ts';

test('parseToolCalls: Hermes blocks (with text around, several, broken) and Llama 3 JSON', () => {
  const h = parseToolCalls('Let me check.\n<tool_call>\n{"name": "weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n<tool_call>{"name":"time","arguments":{"tz":1}}</tool_call>', 'hermes');
  expect(h.content).toBe('Let me check.');
  expect(h.toolCalls.map((c) => [c.type, c.function.name, JSON.parse(c.function.arguments)])).toEqual([['function', 'weather', { city: 'Oslo' }], ['function', 'time', { tz: 1 }]]);
  expect(new Set(h.toolCalls.map((c) => c.id)).size).toBe(2);
  const broken = parseToolCalls('<tool_call>{"name": "weather", "argu</tool_call>', 'hermes');
  expect(broken.toolCalls).toEqual([]);
  expect(broken.content).toBe('<tool_call>{"name": "weather", "argu</tool_call>');
  const l = parseToolCalls('<|python_tag|>{"name": "weather", "parameters": {"city": "Rome"}}', 'llama3');
  expect(l.content).toBe('');
  expect(l.toolCalls[0].function).toEqual({ name: 'weather', arguments: '{"city":"Rome"}' });
  expect(parseToolCalls('It is sunny.', 'llama3')).toEqual({ content: 'It is sunny.', toolCalls: [] });
});

test('tools and tool_choice are checked with typed errors; templates without tools are TOOLS_UNSUPPORTED', () => {
  const t = [{ type: 'function', function: { name: 'weather', parameters: { type: 'object' } } }];
  expect(checkTools(t, undefined).choice).toBe('auto');
  const bad: [unknown, unknown, string][] = [[[], 'auto', 'tools'], [[{ type: 'x' }], 'auto', 'tools[0]'], [t, 'sometimes', 'tool_choice'], [t, { type: 'function', function: { name: 'nope' } }, 'tool_choice'], [[t[0], t[0]], 'auto', 'tools']];
  for (const [tools, choice, field] of bad) {
    try {
      checkTools(tools, choice);
      throw new Error('accepted');
    } catch (e: any) {
      expect([e.code, e.fields?.argument]).toEqual(['INVALID_ARGUMENT', field]);
    }
  }
  for (const tpl of [null, '{% for m in messages %}{{ m.content }}{% endfor %}']) {
    try {
      toolStyle(tpl, 'm');
      throw new Error('accepted');
    } catch (e: any) {
      expect(e.code).toBe('TOOLS_UNSUPPORTED');
    }
  }
  expect(toolStyle(TOOL_TEMPLATE, 'm')).toBe('hermes');
  expect(toolStyle('{% if tools %}{{ tools | tojson }}{% endif %}', 'm')).toBe('llama3');
  // Forced calls: one schema per allowed tool, the call's JSON between the template's tags.
  const g = toolGrammar(t as any, { type: 'function', function: { name: 'weather' } }, 'hermes') as any;
  expect(g.wrap).toEqual({ begin: '<tool_call>\n', end: '\n</tool_call>' });
  expect(JSON.parse(g.schema).properties.name).toEqual({ const: 'weather' });
  expect(toolGrammar(t as any, 'auto', 'hermes')).toBeNull();
  // An assistant's call goes to the template with its arguments as an object; a tool result gets the call's name.
  const names = new Map<string, string>();
  const a = templateMessage({ role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'weather', arguments: '{"city":"Oslo"}' } }] }, names);
  expect((a.tool_calls as any)[0].function.arguments).toEqual({ city: 'Oslo' });
  expect(templateMessage({ role: 'tool', tool_call_id: 'c1', content: '{}' }, names).name).toBe('weather');
});

test('reasoning: <think> ... </think> is split from the answer, streamed in any token split', () => {
  const reply = '<think>\nThe user greets.\n</think>\n\nHello!';
  expect(splitReasoning(reply)).toEqual({ reasoning: 'The user greets.', content: 'Hello!' });
  for (const size of [1, 2, 3, 5, 7]) {
    const s = new ReasoningSplitter();
    let r = '', c = '';
    for (let i = 0; i < reply.length; i += size) {
      const d = s.push(reply.slice(i, i + size));
      r += d.reasoning;
      c += d.content;
      expect(d.content).not.toContain('<');
      expect(d.reasoning).not.toContain('</');
    }
    const d = s.flush();
    expect([(r + d.reasoning).trim(), c + d.content]).toEqual(['The user greets.', 'Hello!']);
  }
  expect(splitReasoning('No thinking here.')).toEqual({ reasoning: '', content: 'No thinking here.' });
  expect(splitReasoning('still thinking</think>Answer', true)).toEqual({ reasoning: 'still thinking', content: 'Answer' });
  expect(splitReasoning('a < b')).toEqual({ reasoning: '', content: 'a < b' });
});

test("thinking switch: enable_thinking false writes an empty think block into the prompt; the default does not", () => {
  const tpl = new Template(THINKING_TEMPLATE);
  const messages = [{ role: 'user', content: 'Hi' }];
  const on = tpl.render({ messages, add_generation_prompt: true });
  const off = tpl.render({ messages, add_generation_prompt: true, enable_thinking: false });
  expect(on.endsWith('<|im_start|>assistant\n')).toBe(true);
  expect(off.endsWith('<think>\n\n</think>\n\n')).toBe(true);
  expect(promptOpensThinking(on)).toBe(false);
  expect(promptOpensThinking(off)).toBe(false);
  expect(promptOpensThinking('<|im_start|>assistant\n<think>\n')).toBe(true);
});

test('TokenBytes: byte-fallback <0xNN> is one byte, ▁ a space, GPT-2 byte-level maps back to bytes', async () => {
  const { TokenBytes } = await import('../src/api/choice_output.ts');
  const { readFileSync } = await import('node:fs');
  const stories = new TokenBytes(JSON.parse(readFileSync(new URL('../public/models/stories260K/tokenizer.json', import.meta.url), 'utf8')));
  expect(stories.bytes(3 + 0x41)).toEqual([0x41]);
  expect(stories.bytes(3 + 0xe2)).toEqual([0xe2]);
  expect(stories.bytes(300)).toEqual([0x20, 0x68, 0x61]); // '▁ha'
  const bl = new TokenBytes({ model: { vocab: { 'Ġthe': 0, 'Ã©': 1, 'Ċ': 2 } }, decoder: { type: 'ByteLevel' }, added_tokens: [{ id: 3, content: '<|im_end|>', special: true }] });
  expect(bl.bytes(0)).toEqual([0x20, 0x74, 0x68, 0x65]);
  expect(bl.bytes(1)).toEqual([0xc3, 0xa9]); // "é" in UTF-8
  expect(bl.bytes(2)).toEqual([0x0a]);
  expect(bl.bytes(3)).toEqual([...new TextEncoder().encode('<|im_end|>')]);
});

test('Gemma 4: the thought channel is split from the answer, in any split; the template picks the markers; the prompt forms', async () => {
  const { readFileSync } = await import('node:fs');
  const gemmaTemplate = readFileSync(new URL('./fixtures/gemma4_chat_template.jinja', import.meta.url), 'utf8');
  const m = thinkingMarkers(gemmaTemplate);
  expect(m).toBe(GEMMA4_THOUGHT_CHANNEL);
  expect(thinkingMarkers(THINKING_TEMPLATE)).toBe(THINK_TAGS);
  expect(thinkingMarkers(null)).toBe(THINK_TAGS);
  const reply = '<|channel>thought\nThe user greets.<channel|>Hello!';
  expect(splitReasoning(reply, false, m)).toEqual({ reasoning: 'The user greets.', content: 'Hello!' });
  for (const size of [1, 2, 3, 5, 7]) {
    const s = new ReasoningSplitter(false, m);
    let r = '', c = '';
    for (let i = 0; i < reply.length; i += size) {
      const d = s.push(reply.slice(i, i + size));
      r += d.reasoning;
      c += d.content;
      expect(d.content).not.toContain('<');
      expect(d.reasoning).not.toContain('<');
    }
    const d = s.flush();
    expect([r + d.reasoning, c + d.content]).toEqual(['The user greets.', 'Hello!']);
  }
  expect(splitReasoning('No thinking here.', false, m)).toEqual({ reasoning: '', content: 'No thinking here.' });
  expect(splitReasoning('<think>x</think>y', false, m)).toEqual({ reasoning: '', content: '<think>x</think>y' });
  // Thinking on: the prompt ends at the model turn (the reply opens the channel); off: it holds an empty channel.
  const tpl = new Template(gemmaTemplate);
  const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }];
  const on = tpl.render({ messages, add_generation_prompt: true, enable_thinking: true, bos_token: '<bos>' });
  const off = tpl.render({ messages, add_generation_prompt: true, enable_thinking: false, bos_token: '<bos>' });
  expect(on.endsWith('<|turn>model\n')).toBe(true);
  expect(on).toContain('<|think|>');
  expect(off.endsWith('<|channel>thought\n<channel|>')).toBe(true);
  expect([promptOpensThinking(on, m), promptOpensThinking(off, m)]).toEqual([false, false]);
  expect(promptOpensThinking('<|turn>model\n<|channel>thought\n', m)).toBe(true);
  expect(splitReasoning('\nstill thinking<channel|>Answer', true, m)).toEqual({ reasoning: 'still thinking', content: 'Answer' });
});

test('streamed ids: special <|channel>/<channel|> tokens reach the splitter as markers, other special tokens stay skipped', async () => {
  const { readFileSync } = await import('node:fs');
  const { TextTokenizer } = await import('../src/model/tokenizer.ts');
  const { ChoiceOutput } = await import('../src/api/choice_output.ts');
  // stories260K's BPE with Gemma's normalizer / decoder (no prepended space) and added tokens as Gemma 4 flags them.
  const json = JSON.parse(readFileSync(new URL('../public/models/stories260K/tokenizer.json', import.meta.url), 'utf8'));
  json.normalizer = { type: 'Replace', pattern: { String: ' ' }, content: '▁' };
  json.decoder = { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }] };
  const added = (id: number, content: string, special: boolean) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special });
  json.added_tokens.push(added(512, '<|channel>', true), added(513, '<channel|>', true), added(514, '<|tool_call>', true), added(515, '<think>', false), added(516, '</think>', false));
  const tok = new TextTokenizer(json, null);
  expect(tok.decode([512, 513])).toBe('');
  const run = (text: string, extra: number[], o: Partial<ConstructorParameters<typeof ChoiceOutput>[2]>) => {
    const ids = [...tok.encode(text, false), ...extra];
    const out = new ChoiceOutput(tok, null, { stops: [], eosIds: [2], reasoning: true, toolStyle: null, logprobs: false, ...o });
    let r = '', c = '';
    for (const id of ids) {
      const d = out.push(id, { id });
      r += d.reasoning;
      c += d.content;
    }
    const f = out.finish();
    return { ids, r: r + f.tail.reasoning, c: c + f.tail.content, f };
  };
  const g = run('<|channel>thought\nThe user greets.<channel|>Hello there!', [514, 2], { markers: GEMMA4_THOUGHT_CHANNEL });
  expect(g.ids.slice(0, 1)).toEqual([512]);
  expect(g.ids).toContain(513);
  expect(g.ids.length).toBeGreaterThan(8); // words span several tokens: markers and text split across token boundaries
  expect([g.r, g.c]).toEqual(['The user greets.', 'Hello there!']);
  expect([g.f.reasoning, g.f.content]).toEqual(['The user greets.', 'Hello there!']);
  // Reasoning off (completions): every special token is skipped, markers included.
  const plain = run('<|channel>thought\nHm.<channel|>Hi', [514], { reasoning: false, markers: GEMMA4_THOUGHT_CHANNEL });
  expect(plain.c).toBe('thought\nHm.Hi');
  // Qwen3's <think> (added, not special) through the same path.
  const q = run('<think>\nThe user greets.\n</think>\n\nHello!', [514], {});
  expect(q.ids[0]).toBe(515);
  expect([q.r.trim(), q.f.reasoning, q.c]).toEqual(['The user greets.', 'The user greets.', 'Hello!']);
});
