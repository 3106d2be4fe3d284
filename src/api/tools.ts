// Tool calls (OpenAI `tools` / `tool_choice`) over the model's own chat template: the tools
// and the conversation's earlier calls and results go into the template as transformers'
// apply_chat_template(tools=...) passes them; the model's reply is parsed back into
// `tool_calls` (Qwen / Hermes `<tool_call>{json}</tool_call>` blocks, or Llama 3's bare JSON
// object); with tool_choice 'required' or a named function the reply is constrained by a
// grammar (src/engine/grammar.ts) to calls whose arguments match the function's schema.
import { InvalidArgumentError, ToolsUnsupportedError } from '../errors.ts';
import type { GrammarSpec } from '../engine/grammar.ts';

export interface ToolFunction {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
}
export interface Tool {
  type: 'function';
  function: ToolFunction;
}
export type ToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** How a template's model writes calls: Hermes-style tags (Qwen2.5/3, SmolLM2) or Llama 3's JSON. */
export type ToolCallStyle = 'hermes' | 'llama3';

/** Whether the template renders `tools` (it names the variable), and how its model writes calls. */
export function toolStyle(template: string | null, model: string): ToolCallStyle {
  if (!template) throw new ToolsUnsupportedError(model, 'it has no chat template');
  if (!/\btools\b/.test(template)) throw new ToolsUnsupportedError(model, 'its chat template does not render `tools`');
  return template.includes('<tool_call>') ? 'hermes' : 'llama3';
}

/** Checks `tools` and `tool_choice` (typed errors naming the field). */
export function checkTools(tools: unknown, choice: unknown): { tools: Tool[]; choice: ToolChoice } {
  if (!Array.isArray(tools) || tools.length === 0) throw new InvalidArgumentError('tools', 'must be a non-empty array of { type: "function", function: { name, description?, parameters? } }');
  const names = new Set<string>();
  for (const [i, t] of tools.entries()) {
    const f = (t as Tool)?.function;
    if ((t as Tool)?.type !== 'function' || typeof f?.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(f.name)) throw new InvalidArgumentError(`tools[${i}]`, 'must be { type: "function", function: { name } } with a name of 1-64 letters, digits, _ or -');
    if (f.parameters !== undefined && (typeof f.parameters !== 'object' || f.parameters === null)) throw new InvalidArgumentError(`tools[${i}].function.parameters`, 'must be a JSON schema object');
    if (names.has(f.name)) throw new InvalidArgumentError('tools', `two tools are named '${f.name}'`);
    names.add(f.name);
  }
  const c = choice ?? 'auto';
  if (c === 'auto' || c === 'none' || c === 'required') return { tools: tools as Tool[], choice: c };
  const name = (c as { function?: { name?: unknown } })?.function?.name;
  if ((c as { type?: unknown }).type !== 'function' || typeof name !== 'string') throw new InvalidArgumentError('tool_choice', "must be 'auto', 'none', 'required' or { type: 'function', function: { name } }");
  if (!names.has(name)) throw new InvalidArgumentError('tool_choice', `names '${name}', which is not among the tools`);
  return { tools: tools as Tool[], choice: c as ToolChoice };
}

/**
 * A message as chat templates take it: an assistant's tool_calls with their arguments as
 * objects (templates write them with `tojson`), a tool result with its tool_call_id and name.
 */
export function templateMessage(m: Record<string, unknown>, names: Map<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...m };
  if (m.role === 'assistant' && Array.isArray(m.tool_calls)) {
    out.tool_calls = (m.tool_calls as ToolCall[]).map((c, i) => {
      if (c?.type !== 'function' || typeof c.function?.name !== 'string') throw new InvalidArgumentError(`tool_calls[${i}]`, 'must be { id, type: "function", function: { name, arguments } }');
      if (c.id) names.set(c.id, c.function.name);
      let args: unknown = c.function.arguments;
      if (typeof args === 'string') {
        try {
          args = JSON.parse(args);
        } catch {
          throw new InvalidArgumentError(`tool_calls[${i}].function.arguments`, 'must be a JSON string');
        }
      }
      return { id: c.id, type: 'function', function: { name: c.function.name, arguments: args } };
    });
    if (out.content === null || out.content === undefined) out.content = '';
  }
  if (m.role === 'tool') {
    if (typeof m.tool_call_id !== 'string') throw new InvalidArgumentError('messages', "a 'tool' message needs its tool_call_id");
    out.name = names.get(m.tool_call_id) ?? m.name;
  }
  return out;
}

/**
 * The grammar a forced call must follow ('required': any tool, or the named one): in the
 * template's style, {"name": <the name>, "arguments": <its parameters schema>}. null for
 * 'auto' / 'none' (the model decides; 'none' renders no tools).
 */
export function toolGrammar(tools: Tool[], choice: ToolChoice, style: ToolCallStyle): GrammarSpec | null {
  if (choice === 'auto' || choice === 'none') return null;
  const pick = typeof choice === 'object' ? tools.filter((t) => t.function.name === choice.function.name) : tools;
  const argKey = style === 'llama3' ? 'parameters' : 'arguments';
  const call = (t: Tool) => ({
    type: 'object',
    properties: { name: { const: t.function.name }, [argKey]: t.function.parameters ?? { type: 'object' } },
    required: ['name', argKey],
    additionalProperties: false,
  });
  const schema = pick.length === 1 ? call(pick[0]) : { anyOf: pick.map(call) };
  if (style === 'llama3') return { kind: 'json_schema', schema: JSON.stringify(schema) };
  return { kind: 'json_schema', schema: JSON.stringify(schema), wrap: { begin: '<tool_call>\n', end: '\n</tool_call>' } };
}

let callCounter = 0;
function callId(): string {
  callCounter = (callCounter + 1) % 1e9;
  return `call_${Date.now().toString(36)}${callCounter.toString(36)}`;
}

/**
 * Splits a reply into text and tool calls. Hermes: every `<tool_call>{...}</tool_call>` block
 * (the text around them is content); Llama 3: a reply that is one JSON object with `name` and
 * `parameters` (or `arguments`), optionally after `<|python_tag|>`. A block that does not
 * parse stays in the content.
 */
export function parseToolCalls(text: string, style: ToolCallStyle): { content: string; toolCalls: ToolCall[] } {
  const calls: ToolCall[] = [];
  const toCall = (o: unknown): ToolCall | null => {
    const obj = o as { name?: unknown; arguments?: unknown; parameters?: unknown };
    if (!obj || typeof obj !== 'object' || typeof obj.name !== 'string') return null;
    const args = obj.arguments ?? obj.parameters ?? {};
    return { id: callId(), type: 'function', function: { name: obj.name, arguments: typeof args === 'string' ? args : JSON.stringify(args) } };
  };
  if (style === 'hermes') {
    const content = text.replace(/<tool_call>\s*([\s\S]*?)\s*<\/tool_call>/g, (whole, body: string) => {
      try {
        const c = toCall(JSON.parse(body));
        if (c) {
          calls.push(c);
          return '';
        }
      } catch {
        /* not a call: keep the text */
      }
      return whole;
    });
    return { content: calls.length ? content.trim() : content, toolCalls: calls };
  }
  const body = text.replace(/^\s*(<\|python_tag\|>)?/, '').trim();
  if (body.startsWith('{')) {
    try {
      const c = toCall(JSON.parse(body));
      if (c) return { content: '', toolCalls: [c] };
    } catch {
      /* plain text */
    }
  }
  return { content: text, toolCalls: [] };
}
