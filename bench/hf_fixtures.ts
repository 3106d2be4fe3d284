// bench/gpu.sh's transformers comparison, first half: writes the tiny fixtures the tests use
// (stories260K, and random weights at real configs scaled down) as Hugging Face folders
// (config.json + model.safetensors, f32) and our CPU reference's results on each
// (src/reference/reference_model.ts: last-position logits of a fixed prompt, and greedy ids)
// to <out>/reference.json. bench/hf_compare.py runs transformers on the same folders.
//   npx tsx bench/hf_fixtures.ts [out-dir]   (default .cache/hf-compare)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadCheckpoint, loadModelFiles } from '../src/model/loader.ts';
import { randomModelFiles, scaleConfig } from '../src/model/random_model.ts';
import { memorySource } from '../src/model/source.ts';
import { ReferenceModel } from '../src/reference/reference_model.ts';

const OUT = resolve(process.argv[2] ?? '.cache/hf-compare');
const config = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, any>;
const SCALE = { layers: 2, hidden: 64, heads: 4, kvHeads: 2, inter: 128, vocab: 256, maxPositions: 256 };

/** The fixtures: a real model, then real configs scaled down with random weights (seed 7, as the tests). */
const FIXTURES: { name: string; files: () => Map<string, Uint8Array> }[] = [
  { name: 'stories260K', files: () => new Map(['config.json', 'model.safetensors'].map((f) => [f, new Uint8Array(readFileSync(join('public/models/stories260K', f)))])) },
  { name: 'smollm2_tiny', files: () => randomModelFiles(scaleConfig(config('configs/HuggingFaceTB__SmolLM2-135M-Instruct'), SCALE), { seed: 7 }) },
  { name: 'llama3.2_tiny', files: () => randomModelFiles(scaleConfig(config('configs/meta-llama__Llama-3.2-1B-Instruct'), SCALE), { seed: 7 }) },
  { name: 'qwen2.5_tiny', files: () => randomModelFiles(scaleConfig(config('configs/Qwen__Qwen2.5-0.5B-Instruct'), SCALE), { seed: 7 }) },
  { name: 'qwen3_tiny', files: () => randomModelFiles(scaleConfig(config('configs/Qwen__Qwen3-0.6B'), { ...SCALE, headDim: 16 }), { seed: 7 }) },
  { name: 'gemma3_tiny', files: () => randomModelFiles(scaleConfig(config('configs/google__gemma-3-1b-it'), { ...SCALE, heads: 4, kvHeads: 1, headDim: 16 }), { seed: 7 }) },
  { name: 'gemma4_e2b_tiny', files: () => randomModelFiles(config('test/fixtures/gemma4_e2b_tiny'), { seed: 7 }) },
];
const STEPS = 8;

const rows: unknown[] = [];
for (const f of FIXTURES) {
  const files = f.files();
  const dir = join(OUT, f.name);
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of files) if (name === 'config.json' || name.endsWith('.safetensors') || name.endsWith('.json')) writeFileSync(join(dir, name), bytes);
  const source = memorySource(files);
  const mf = await loadModelFiles(source);
  const ck = await loadCheckpoint(source);
  const c = mf.config;
  // The reference reads `model.*` names; a multimodal wrapper keeps its text model under `model.language_model.*`.
  const get = (n: string) => ck.get(n) ?? ck.get(n.replace(/^model\./, 'model.language_model.')) ?? null;
  const prompt = [c.bosTokenId ?? 1, ...Array.from({ length: 11 }, (_, i) => 3 + ((i * 37 + 11) % (c.vocabSize - 3)))];
  const ref = new ReferenceModel(c, get, mf.spec.normGainOffset);
  const logits = ref.feed(prompt, 0);
  const greedy = new ReferenceModel(c, get, mf.spec.normGainOffset).generateGreedy(prompt, STEPS);
  rows.push({ name: f.name, dir, model_type: c.modelType, prompt, logits: Array.from(logits), greedy });
  process.stderr.write(`${f.name}: ${c.modelType}, ${c.numLayers} layers, vocab ${c.vocabSize}: reference written\n`);
}
writeFileSync(join(OUT, 'reference.json'), JSON.stringify({ steps: STEPS, fixtures: rows }));
process.stdout.write(join(OUT, 'reference.json') + '\n');
