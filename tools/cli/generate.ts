// `pop-llm generate`: one request, streamed to stdout (text) or printed as one JSON object.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { InvalidArgumentError, ModelFileMissingError } from '../../src/errors.ts';
import { checkKnown, intList, num, popOption, type ParsedArgs } from './args.ts';
import type { ImagePayload } from './protocol.ts';
import type { Session } from './session.ts';

export const DEFAULT_MODEL = 'public/models/stories260K';

export const GENERATE_OPTIONS = ['model', 'prompt', 'ids', 'max-tokens', 'temperature', 'top-p', 'top-k', 'seed', 'pop', 'pop-ratio', 'context', 'ignore-eos', 'json', 'image', 'help', 'host'];

export interface GenerateCommand {
  model: string;
  prompt?: string;
  ids?: number[];
  maxTokens: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  pop: ReturnType<typeof popOption>;
  context?: number;
  ignoreEos: boolean;
  json: boolean;
  /** --image FILE (repeatable, VLMs): the images of the user turn, before the --prompt text. */
  images: ImagePayload[];
}

export function parseGenerate(p: ParsedArgs): GenerateCommand {
  checkKnown(p, GENERATE_OPTIONS);
  const prompt = p.values.get('prompt');
  const ids = intList(p, 'ids', 0);
  if (prompt !== undefined && ids !== undefined) throw new InvalidArgumentError('--prompt', 'give either --prompt or --ids, not both');
  if (prompt === undefined && ids === undefined) throw new InvalidArgumentError('--prompt', 'give --prompt TEXT or --ids 1,2,3');
  const images = (p.lists.get('image') ?? []).map((f) => {
    if (!existsSync(f) || !statSync(f).isFile()) throw new ModelFileMissingError(f);
    return { kind: 'file' as const, name: basename(f), base64: readFileSync(f).toString('base64') };
  });
  if (images.length && ids !== undefined) throw new InvalidArgumentError('--image', 'goes with --prompt (the image tokens are laid out from the text), not --ids');
  return {
    model: p.values.get('model') ?? DEFAULT_MODEL,
    prompt, ids,
    maxTokens: num(p, 'max-tokens', { integer: true, min: 1 }) ?? 128,
    temperature: num(p, 'temperature', { min: 0 }),
    topP: num(p, 'top-p', { min: 0, max: 1 }),
    topK: num(p, 'top-k', { integer: true, min: 0 }),
    seed: num(p, 'seed', { integer: true, min: 0 }),
    pop: popOption(p),
    context: num(p, 'context', { integer: true, min: 1 }),
    ignoreEos: p.flags.has('ignore-eos'),
    json: p.flags.has('json'),
    images,
  };
}

const round = (x: number, d = 2) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

export async function runGenerate(s: Session, g: GenerateCommand): Promise<void> {
  const info = await s.load({ arg: g.model, model: s.modelSpec(g.model), contextWindow: g.context });
  const onToken = g.json ? undefined : (_id: number, text: string) => void (text && process.stdout.write(text));
  const r = await s.generate(
    { promptIds: g.ids, prompt: g.ids ? undefined : g.prompt, maxTokens: g.maxTokens, temperature: g.temperature, topP: g.topP, topK: g.topK, seed: g.seed, pop: g.pop.setting, ignoreEos: g.ignoreEos, images: g.images.length ? g.images : undefined },
    onToken,
  );
  if (g.json) {
    const out = {
      model: g.model, prompt_ids: r.promptIds, ids: r.ids, text: r.text,
      prefill_ms: round(r.prefillMs), decode_ms: round(r.decodeMs), ttft_ms: round(r.ttftMs),
      prefill_tokens_per_s: round(r.prefillTokensPerS), decode_tokens_per_s: round(r.decodeTokensPerS),
      pop: g.pop.label, keep: r.keep, keep_reason: r.keepReason, layers: r.layers, finish_reason: r.finishReason,
      variants: info.variants, adapter: info.adapter,
    };
    process.stdout.write(JSON.stringify(out) + '\n');
    return;
  }
  // Text held back by the streamer (or, for a model without a tokenizer, the ids).
  if (r.text === null) process.stdout.write(r.ids.join(' '));
  else if (r.streamTail) process.stdout.write(r.streamTail);
  process.stdout.write('\n');
  process.stderr.write(
    `[pop-llm] ${r.promptIds.length} prompt tokens: prefill ${round(r.prefillMs, 1)} ms (${round(r.prefillTokensPerS, 1)} tok/s), ttft ${round(r.ttftMs, 1)} ms; ` +
      `${r.ids.length} tokens: decode ${round(r.decodeMs, 1)} ms (${round(r.decodeTokensPerS, 1)} tok/s); ` +
      `pop ${g.pop.label} keep ${r.keep}/${r.layers}; ${r.finishReason}; matmul ${info.variants.matmul}, matvec ${info.variants.matvec}\n`,
  );
}
