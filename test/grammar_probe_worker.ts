// Module worker for test/sample.spec.ts: compiles a JSON schema with xgrammar inside a worker.
import { GrammarCompiler } from '../src/engine/grammar.ts';
self.onmessage = async (ev: MessageEvent) => {
  try {
    const g = await GrammarCompiler.create(ev.data.tokenizerJson, ev.data.vocabSize, ev.data.stopIds);
    const m = await g.matcher({ kind: 'json_schema', schema: ev.data.schema });
    const mask = await m.nextMask();
    (self as any).postMessage({ ok: true, words: mask ? Array.from(mask) : null });
  } catch (e) {
    (self as any).postMessage({ ok: false, error: String((e as Error)?.message ?? e) });
  }
};
