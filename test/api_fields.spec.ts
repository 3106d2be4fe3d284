// Every field of WebLLM 0.2.79's ChatCompletionRequest, CompletionCreateParams, MLCEngineConfig
// and ChatOptions (read from its .d.ts files here, so a field this table lacks fails the test),
// plus pop-llm's own, sent with a good and a bad value through the real engine on stories260K:
// an honoured field runs with its good value and refuses its bad one with INVALID_REQUEST
// naming it; a refused field gets UNSUPPORTED_FIELD naming it (its no-op value runs). Unknown
// fields are refused too.
import { readFileSync } from 'node:fs';
import { test, expect } from './fixtures.ts';

const WEBLLM = new URL('../node_modules/@mlc-ai/web-llm/lib/', import.meta.url);

/** The field names of `export interface NAME {...}` in a WebLLM .d.ts (comments skipped). */
function interfaceFields(file: string, name: string): string[] {
  const src = readFileSync(new URL(file, WEBLLM), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const start = src.indexOf(`export interface ${name} `);
  if (start < 0) throw new Error(`${name} not in ${file}`);
  let depth = 0, i = src.indexOf('{', start), body = '';
  for (; i < src.length; i++) {
    const ch = src[i];
    if (ch === '{') depth++;
    if (ch === '}' && --depth === 0) break;
    body += depth === 1 ? ch : ch === '{' ? '{' : '';
  }
  return [...body.matchAll(/^\s*(\w+)\??\s*:/gm)].map((m) => m[1]);
}

type Status = 'honoured' | 'refused';
/** A case: the field's status, a request part that should run (honoured; refused: its no-op), one that should fail. */
interface Case { status: Status; good: Record<string, unknown>; bad: Record<string, unknown>; refusedValue?: Record<string, unknown> }

const MSG = [{ role: 'user', content: 'Once upon a time' }];
const GENERATION: Record<string, Case> = {
  stream: { status: 'honoured', good: { stream: true }, bad: { stream: 'yes' } },
  stream_options: { status: 'honoured', good: { stream: true, stream_options: { include_usage: true } }, bad: { stream: true, stream_options: 'usage' } },
  n: { status: 'honoured', good: { n: 2, temperature: 1 }, bad: { n: 'two' } },
  frequency_penalty: { status: 'honoured', good: { frequency_penalty: 0.5 }, bad: { frequency_penalty: 3 } },
  presence_penalty: { status: 'honoured', good: { presence_penalty: -0.5 }, bad: { presence_penalty: 'x' } },
  max_tokens: { status: 'honoured', good: { max_tokens: 2 }, bad: { max_tokens: 0 } },
  stop: { status: 'honoured', good: { stop: ['\n\n', 'zzz'] }, bad: { stop: [''] } },
  temperature: { status: 'honoured', good: { temperature: 0.7 }, bad: { temperature: -1 } },
  top_p: { status: 'honoured', good: { top_p: 0.9 }, bad: { top_p: 0 } },
  logit_bias: { status: 'honoured', good: { logit_bias: { 5: 10 } }, bad: { logit_bias: { 5: 101 } } },
  logprobs: { status: 'honoured', good: { logprobs: true }, bad: { logprobs: 'yes' } },
  top_logprobs: { status: 'honoured', good: { logprobs: true, top_logprobs: 3 }, bad: { logprobs: true, top_logprobs: 21 } },
  seed: { status: 'honoured', good: { seed: 7 }, bad: { seed: 1.5 } },
  ignore_eos: { status: 'honoured', good: { ignore_eos: true }, bad: { ignore_eos: 1 } },
  model: { status: 'honoured', good: { model: 'stories260K' }, bad: { model: 'not-loaded' } },
};
const CHAT: Record<string, Case> = {
  ...GENERATION,
  messages: { status: 'honoured', good: { messages: MSG }, bad: { messages: [] } },
  // stories260K has no chat template: tools run only with tool_choice 'none' (test/api_sample.spec.ts has a template with tools).
  tool_choice: { status: 'honoured', good: { tool_choice: 'none' }, bad: { tool_choice: 5 } },
  tools: { status: 'honoured', good: { tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: 'none' }, bad: { tools: 'x' } },
  response_format: { status: 'honoured', good: { response_format: { type: 'json_object' } }, bad: { response_format: 1 } },
  extra_body: { status: 'honoured', good: { extra_body: { enable_thinking: true } }, bad: { extra_body: 1 } },
  // pop-llm's own
  pop: { status: 'honoured', good: { pop: 'exact' }, bad: { pop: 'fast' } },
  top_k: { status: 'honoured', good: { top_k: 4 }, bad: { top_k: -1 } },
  repetition_penalty: { status: 'honoured', good: { repetition_penalty: 1.2 }, bad: { repetition_penalty: 0 } },
  min_p: { status: 'honoured', good: { min_p: 0.1, temperature: 1 }, bad: { min_p: 2 } },
};
const COMPLETION: Record<string, Case> = {
  ...GENERATION,
  prompt: { status: 'honoured', good: { prompt: 'The cat' }, bad: { prompt: 5 } },
  echo: { status: 'honoured', good: { echo: true }, bad: { echo: 'yes' } },
  suffix: { status: 'refused', good: { suffix: '' }, bad: { suffix: 5 }, refusedValue: { suffix: ' the end' } },
  user: { status: 'refused', good: {}, bad: { user: 5 }, refusedValue: { user: 'me' } },
  best_of: { status: 'refused', good: { best_of: 1 }, bad: { best_of: 'x' }, refusedValue: { best_of: 3 } },
  pop: CHAT.pop,
  top_k: CHAT.top_k,
  repetition_penalty: CHAT.repetition_penalty,
  min_p: CHAT.min_p,
};
// Engine config: functions and Maps cannot cross into the page, so they travel as markers.
const ENGINE: Record<string, Case> = {
  appConfig: { status: 'honoured', good: { appConfig: { model_list: [{ model_id: 'x', model: '/models/stories260K' }] } }, bad: { appConfig: { model_list: 'x' } } },
  initProgressCallback: { status: 'honoured', good: { initProgressCallback: '__fn__' }, bad: { initProgressCallback: 'x' } },
  logitProcessorRegistry: { status: 'honoured', good: { logitProcessorRegistry: '__map__' }, bad: { logitProcessorRegistry: {} } },
  logLevel: { status: 'honoured', good: { logLevel: 'ERROR' }, bad: { logLevel: 'LOUD' } },
};
const CHAT_OPTIONS: Record<string, Case> = {
  context_window_size: { status: 'honoured', good: { context_window_size: 256 }, bad: { context_window_size: 0 } },
  temperature: { status: 'honoured', good: { temperature: 0 }, bad: { temperature: -2 } },
  top_p: { status: 'honoured', good: { top_p: 1 }, bad: { top_p: 2 } },
  repetition_penalty: { status: 'honoured', good: { repetition_penalty: 1.1 }, bad: { repetition_penalty: 'x' } },
  frequency_penalty: { status: 'honoured', good: { frequency_penalty: 0.2 }, bad: { frequency_penalty: 'x' } },
  presence_penalty: { status: 'honoured', good: { presence_penalty: 0.2 }, bad: { presence_penalty: 'x' } },
  sliding_window_size: { status: 'refused', good: { sliding_window_size: -1 }, bad: { sliding_window_size: 'x' }, refusedValue: { sliding_window_size: 1024 } },
  attention_sink_size: { status: 'refused', good: { attention_sink_size: 0 }, bad: { attention_sink_size: 'x' }, refusedValue: { attention_sink_size: 4 } },
  ...Object.fromEntries(['tokenizer_files', 'tokenizer_info', 'token_table_postproc_method', 'vocab_size', 'conv_config', 'conv_template', 'bos_token_id']
    .map((f) => [f, { status: 'refused' as Status, good: {}, bad: { [f]: 5 }, refusedValue: { [f]: f === 'vocab_size' || f === 'bos_token_id' ? 512 : ['x'] } }])),
};

test('the case tables cover every field of WebLLM 0.2.79', () => {
  const missing = (name: string, fields: string[], cases: Record<string, Case>) => fields.filter((f) => !(f in cases)).map((f) => `${name}.${f}`);
  const chat = interfaceFields('openai_api_protocols/chat_completion.d.ts', 'ChatCompletionRequestBase');
  const completion = interfaceFields('openai_api_protocols/completion.d.ts', 'CompletionCreateParamsBase');
  const engine = interfaceFields('config.d.ts', 'MLCEngineConfig');
  const chatConfig = interfaceFields('config.d.ts', 'ChatConfig');
  expect(chat.length).toBeGreaterThan(15);
  expect(chatConfig.length).toBeGreaterThan(10);
  expect([...missing('ChatCompletionRequest', chat, CHAT), ...missing('CompletionCreateParams', completion, COMPLETION), ...missing('MLCEngineConfig', engine, ENGINE), ...missing('ChatOptions', chatConfig, CHAT_OPTIONS)]).toEqual([]);
});

test('every request field with a good and a bad value, through the engine; unknown fields are refused', async ({ harness }) => {
  test.setTimeout(300_000);
  const r = await harness.evaluate(async ({ CHAT, COMPLETION, MSG }) => {
    const g = globalThis as any;
    g.__api ??= await g.pop.api.CreateMLCEngine('stories260K');
    const e = g.__api;
    const outcome = async (p: () => Promise<any>) => {
      try {
        const res = await p();
        if (res && typeof res[Symbol.asyncIterator] === 'function') for await (const _ of res);
        return 'ok';
      } catch (x: any) {
        return `${x.code}:${x.fields?.field ?? x.fields?.argument ?? ''}`;
      }
    };
    const out: Record<string, Record<string, string>> = {};
    for (const [kind, table] of [['chat', CHAT], ['text', COMPLETION]] as const) {
      const base = kind === 'chat' ? { messages: MSG, max_tokens: 2 } : { prompt: 'Once upon a time', max_tokens: 2 };
      const send = (part: Record<string, unknown>) => outcome(() => (kind === 'chat' ? e.chat.completions.create({ ...base, ...part }) : e.completions.create({ ...base, ...part })));
      for (const [field, c] of Object.entries(table as Record<string, any>)) {
        out[`${kind}.${field}`] = { good: await send(c.good), bad: await send(c.bad), ...(c.refusedValue ? { refused: await send(c.refusedValue) } : {}) };
      }
      out[`${kind}.unknown`] = { bad: await send({ frobnicate: 1 }) };
    }
    // Messages and parts: roles, order, image parts.
    const chat = (messages: unknown) => outcome(() => e.chat.completions.create({ messages, max_tokens: 1 }));
    const messages = {
      unknownRole: await chat([{ role: 'robot', content: 'hi' }]),
      systemNotFirst: await chat([{ role: 'user', content: 'a' }, { role: 'system', content: 'b' }, { role: 'user', content: 'c' }]),
      lastNotUser: await chat([{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }]),
      name: await chat([{ role: 'user', content: 'a', name: 'bob' }]),
      tool: await chat([{ role: 'tool', content: 'a', tool_call_id: 'x' }]),
      badPart: await chat([{ role: 'user', content: [{ type: 'audio', data: 'x' }] }]),
      detail: await chat([{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA', detail: 'high' } }] }]),
      textPart: await chat([{ role: 'user', content: [{ type: 'text', text: 'Once upon a time' }] }]),
    };
    return { out, messages };
  }, { CHAT, COMPLETION, MSG });
  for (const [key, o] of Object.entries(r.out)) {
    const [kind, field] = key.split('.');
    if (field === 'unknown') {
      expect(o.bad, key).toBe('UNSUPPORTED_FIELD:frobnicate');
      continue;
    }
    const c = (kind === 'chat' ? CHAT : COMPLETION)[field];
    expect(o.good, `${key} good`).toBe('ok');
    if (c.status === 'honoured') {
      // A bad model id is reported under the model-selection rule's name.
      expect(o.bad, `${key} bad`).toBe(field === 'model' ? `INVALID_REQUEST:${kind === 'chat' ? 'ChatCompletionRequest' : 'CompletionCreateParams'}.model` : `INVALID_REQUEST:request.${field}`);
    } else {
      expect(o.bad, `${key} bad`).toBe(`UNSUPPORTED_FIELD:${field}`);
      expect(o.refused, `${key} refused`).toBe(`UNSUPPORTED_FIELD:${field}`);
    }
  }
  expect(r.messages).toEqual({
    unknownRole: 'INVALID_REQUEST:messages[0].role',
    systemNotFirst: 'INVALID_REQUEST:messages[1].role',
    lastNotUser: 'INVALID_REQUEST:messages[1].role',
    name: 'UNSUPPORTED_FIELD:name',
    tool: 'ok',
    badPart: 'INVALID_REQUEST:messages[0].content[0].type',
    detail: 'UNSUPPORTED_FIELD:detail',
    textPart: 'ok',
  });
});

test('every engine config and ChatOptions field with a good and a bad value; a reload with the good ChatOptions runs', async ({ harness }) => {
  test.setTimeout(300_000);
  const r = await harness.evaluate(async ({ ENGINE, CHAT_OPTIONS }) => {
    const { api } = (globalThis as any).pop;
    const revive = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v === '__fn__' ? () => {} : v === '__map__' ? new Map() : v]));
    const outcome = async (p: () => unknown) => {
      try {
        await p();
        return 'ok';
      } catch (x: any) {
        return `${x.code}:${x.fields?.field ?? ''}`;
      }
    };
    const engine: Record<string, Record<string, string>> = {};
    for (const [f, c] of Object.entries(ENGINE as Record<string, any>)) engine[f] = { good: await outcome(() => new api.MLCEngine(revive(c.good))), bad: await outcome(() => new api.MLCEngine(revive(c.bad))) };
    engine.unknown = { bad: await outcome(() => new api.MLCEngine({ turbo: true })) };
    engine.popOwn = { good: await outcome(() => new api.MLCEngine({ quantization: 'q4', weightDtype: 'f32', maxImagePixels: 100, useCache: false })), bad: await outcome(() => new api.MLCEngine({ quantization: 'q3' })) };
    engine.record = {
      bad: await outcome(() => new api.MLCEngine({ appConfig: { model_list: [{ model_id: 'x', model: '/m', vram_required_MB: 'lots' }] } })),
      unknown: await outcome(() => new api.MLCEngine({ appConfig: { model_list: [{ model_id: 'x', model: '/m', colour: 'red' }] } })),
      overrides: await outcome(() => new api.MLCEngine({ appConfig: { model_list: [{ model_id: 'x', model: '/m', overrides: { conv_template: {} } }] } })),
    };
    // ChatOptions are checked before anything loads: bad and refused ones reject at once.
    const e = new api.MLCEngine();
    const options: Record<string, Record<string, string>> = {};
    for (const [f, c] of Object.entries(CHAT_OPTIONS as Record<string, any>)) {
      options[f] = { bad: await outcome(() => e.reload('stories260K', c.bad)), ...(c.refusedValue ? { refused: await outcome(() => e.reload('stories260K', c.refusedValue)) } : {}) };
    }
    options.unknown = { bad: await outcome(() => e.reload('stories260K', { turbo: 1 })) };
    // Every good value together, honoured ones and refused ones' no-ops: one real load.
    const good = Object.assign({}, ...Object.values(CHAT_OPTIONS as Record<string, any>).map((c) => c.good));
    const loaded = await outcome(() => e.reload('stories260K', good));
    const info = e.modelInfo;
    const reply = await outcome(() => e.completions.create({ prompt: 'Once', max_tokens: 2 }));
    await e.unload();
    return { engine, options, loaded, info, reply, good };
  }, { ENGINE, CHAT_OPTIONS });
  for (const [f, o] of Object.entries(r.engine)) {
    if (f === 'unknown') expect(o.bad).toBe('UNSUPPORTED_FIELD:turbo');
    else if (f === 'popOwn') expect(o).toEqual({ good: 'ok', bad: 'INVALID_REQUEST:engineConfig.quantization' });
    else if (f === 'record') expect(o).toEqual({ bad: 'INVALID_REQUEST:appConfig.model_list[0].vram_required_MB', unknown: 'UNSUPPORTED_FIELD:colour', overrides: 'UNSUPPORTED_FIELD:conv_template' });
    else expect(o, f).toEqual({ good: 'ok', bad: f === 'appConfig' ? 'INVALID_REQUEST:engineConfig.appConfig' : `INVALID_REQUEST:engineConfig.${f}` });
  }
  for (const [f, o] of Object.entries(r.options)) {
    if (f === 'unknown') {
      expect(o.bad).toBe('UNSUPPORTED_FIELD:turbo');
      continue;
    }
    const c = CHAT_OPTIONS[f];
    expect(o.bad, f).toBe(c.status === 'honoured' ? `INVALID_REQUEST:chatOpts.${f}` : `UNSUPPORTED_FIELD:${f}`);
    if (c.refusedValue) expect(o.refused, f).toBe(`UNSUPPORTED_FIELD:${f}`);
  }
  expect(r.loaded).toBe('ok');
  expect(r.info.contextWindow).toBe(256);
  expect(r.reply).toBe('ok');
});
