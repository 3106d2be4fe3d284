// The page of `pop-llm bench --vs-webllm` (webllm.html): WebLLM 0.2.79 (bundled by Vite) and
// pop-llm run the same MLC weight folder on this tab's WebGPU adapter, one after the other
// (the Node side gives each its own page). Greedy, raw completion, EOS ignored; the figures
// are each runtime's own: WebLLM's usage.extra and pop-llm's GenerateStats, defined alike
// (TTFT = prefill + first sample; decode tok/s = decode steps / decode time).
import { CreateMLCEngine, type AppConfig } from '@mlc-ai/web-llm';
import { createGpuEngine, describeGpuEngine } from '../../src/engine/create.ts';
import { engineMemory } from '../../src/engine/stats.ts';
import { parsePopSetting } from '../../src/engine/pop.ts';
import { urlSource } from '../../src/model/source.ts';

export interface RunFigures {
  loadMs: number;
  promptIds: number[];
  ids: number[];
  ttftMs: number;
  prefillTokensPerS: number;
  decodeTokensPerS: number;
  /** Wall time of the timed request, as the caller sees it. */
  wallMs: number;
  detail: Record<string, unknown>;
}

const log = (s: string) => console.log(`[vs] ${s}`);

/**
 * WebLLM: CreateMLCEngine on a custom appConfig (the folder and the model library on
 * localhost), then one completion of a prompt made to encode to exactly `promptTokens` ids.
 */
async function runWebllm(req: { modelUrl: string; wasmUrl: string; modelId: string; text: string; promptTokens: number; maxTokens: number }): Promise<RunFigures> {
  const appConfig: AppConfig = { model_list: [{ model: req.modelUrl, model_id: req.modelId, model_lib: req.wasmUrl }], useIndexedDBCache: false };
  const t0 = performance.now();
  let last = 0;
  const engine = await CreateMLCEngine(req.modelId, {
    appConfig,
    initProgressCallback: (r) => {
      if (performance.now() - last > 10_000 || r.text.startsWith('Finish')) (last = performance.now()), log(`webllm: ${r.text}`);
    },
  });
  const loadMs = performance.now() - t0;
  // The pipeline's tokenizer and output ids (fields of WebLLM's LLMChatPipeline).
  const pipeline = (engine as any).loadedModelIdToPipeline.get(req.modelId);
  const encode = (s: string): number[] => Array.from(pipeline.tokenizer.encode(s) as Int32Array);
  let text = req.text, ids = encode(text);
  // Trim whole words, then pad one ' a' at a time, until the prompt is exactly promptTokens.
  const words = text.split(' ');
  while (ids.length > req.promptTokens && words.length > 1) (text = (words.pop(), words.join(' '))), (ids = encode(text));
  for (let i = 0; ids.length < req.promptTokens && i < 4 * req.promptTokens; i++) (text += ' a'), (ids = encode(text));
  if (ids.length !== req.promptTokens) throw new Error(`could not make a prompt of ${req.promptTokens} tokens (got ${ids.length})`);
  log(`webllm: loaded in ${(loadMs / 1000).toFixed(1)} s; generating (${ids.length} prompt tokens, ${req.maxTokens} new)`);
  const t1 = performance.now();
  const r = await engine.completions.create({ prompt: text, max_tokens: req.maxTokens, temperature: 0, ignore_eos: true, stream: false });
  const wallMs = performance.now() - t1;
  const out = [...(pipeline.outputIds as number[])];
  const extra = (r.usage as any)?.extra ?? {};
  await engine.unload();
  return {
    loadMs, promptIds: ids, ids: out, wallMs,
    ttftMs: extra.time_to_first_token_s * 1000,
    prefillTokensPerS: extra.prefill_tokens_per_s,
    decodeTokensPerS: extra.decode_tokens_per_s,
    detail: { usage: r.usage, text: r.choices[0]?.text ?? '', prompt: text },
  };
}

/** pop-llm: the MLC loader on the same folder; a short warm-up compiles the pipelines, then the timed run. */
async function runPop(req: { modelUrl: string; promptIds: number[]; maxTokens: number; pop: string[] }): Promise<RunFigures[]> {
  const t0 = performance.now();
  const engine = await createGpuEngine(urlSource(req.modelUrl));
  const loadMs = performance.now() - t0;
  const d = describeGpuEngine(engine);
  const mem = engineMemory(engine);
  log(`pop-llm: loaded in ${(loadMs / 1000).toFixed(1)} s (${engine.files.mlc?.quantization}, ${engine.config.numLayers} layers, ${((d.gpuBytes as number) / 1e6).toFixed(0)} MB on the GPU); warm-up`);
  const warm = req.promptIds.slice(0, 4);
  for (const p of new Set(['off', ...req.pop])) await engine.generate(warm, { maxTokens: 2, ignoreEos: true, pop: parsePopSetting(p) });
  const out: RunFigures[] = [];
  for (const p of req.pop) {
    log(`pop-llm: generating (pop ${p})`);
    const t1 = performance.now();
    const r = await engine.generate(req.promptIds, { maxTokens: req.maxTokens, temperature: 0, ignoreEos: true, pop: parsePopSetting(p) });
    const wallMs = performance.now() - t1;
    out.push({
      loadMs, promptIds: req.promptIds, ids: r.ids, wallMs,
      ttftMs: r.stats.ttftMs, prefillTokensPerS: r.stats.prefillTokensPerS, decodeTokensPerS: r.stats.decodeTokensPerS,
      detail: { pop: p, keep: r.stats.keep, layers: r.stats.layers, variants: d.variants, gpuBytes: d.gpuBytes, weightBytes: mem.weightBytes, kvBytes: mem.kvBytes, kvDtype: d.kvDtype },
    });
  }
  engine.unload();
  return out;
}

const wrap = <A, R>(f: (a: A) => Promise<R>) => async (a: A): Promise<{ ok: R } | { error: { code: string; message: string } }> => {
  try {
    return { ok: await f(a) };
  } catch (e) {
    const err = e as { code?: string; message?: string; name?: string };
    return { error: { code: err?.code ?? 'INTERNAL_ERROR', message: `${err?.name ?? 'Error'}: ${err?.message ?? String(e)}` } };
  }
};

(globalThis as any).vsWebllm = { runWebllm: wrap(runWebllm), runPop: wrap(runPop) };
(globalThis as any).__popReady = true;
