// API-level cases for test/api_sample.spec.ts: stories260K behind MLCEngine, as a folder of
// Files whose tokenizer_config.json carries a test chat template (tools / thinking).
import { MLCEngine } from '../src/api/engine.ts';
import { THINKING_TEMPLATE, TOOL_TEMPLATE } from './fixtures/chat_templates.ts';

const FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'pop.json'];

/** stories260K's files, with `template` as its chat template. */
async function storiesFiles(template: string | null): Promise<File[]> {
  return Promise.all(FILES.map(async (name) => {
    let body: BlobPart = await (await fetch(`/models/stories260K/${name}`)).arrayBuffer();
    if (name === 'tokenizer_config.json' && template) body = JSON.stringify({ ...JSON.parse(new TextDecoder().decode(body as ArrayBuffer)), chat_template: template });
    return new File([body], name);
  }));
}

const engines = new Map<string, Promise<MLCEngine>>();
export function openApi(kind: 'plain' | 'tools' | 'thinking'): Promise<MLCEngine> {
  let e = engines.get(kind);
  if (!e) {
    engines.set(kind, (e = (async () => {
      const engine = new MLCEngine();
      if (kind === 'plain') await engine.reload('stories260K');
      else await engine.reload(await storiesFiles(kind === 'tools' ? TOOL_TEMPLATE : THINKING_TEMPLATE), { context_window_size: 1024 });
      return engine;
    })()));
  }
  return e;
}

/** A request's response, and its stream's chunks (the same request with stream: true). */
export async function both(kind: 'plain' | 'tools' | 'thinking', req: Record<string, unknown>): Promise<{ response: any; chunks: any[] }> {
  const e = await openApi(kind);
  const response = await e.chat.completions.create({ ...req, stream: false } as any);
  const chunks: any[] = [];
  for await (const c of (await e.chat.completions.create({ ...req, stream: true } as any)) as unknown as AsyncIterable<any>) chunks.push(c);
  await e.resetChat();
  return { response, chunks };
}

export async function errorOf(kind: 'plain' | 'tools' | 'thinking', req: Record<string, unknown>): Promise<string> {
  try {
    await (await openApi(kind)).chat.completions.create(req as any);
    return 'ok';
  } catch (x: any) {
    return x.code;
  }
}
