// The bench page: one prompt at several lengths, POP off / exact / auto, time to first token
// measured by the engine (usage.extra) through the worker; an inline SVG chart and a table.
// Then an image+text prompt (a test-pattern PNG and a question, as an OpenAI image part) per
// POP setting, when the model is a vision-language model ("needs a vision-language model"
// otherwise): TTFT is the wall time of a one-token request (image decode, tower, prefill).
// Query parameters (used by the e2e tests): model, lengths, modes, max_tokens, reps, image=0|1,
// image_size=WxH, autorun=1. Results are also left on window.__bench. A WebLLM baseline runs
// only on request, online.
import { CreateWorkerEngine, type WorkerEngine } from '../../src/api/client.ts';
import type { CompletionUsage } from '../../src/api/protocol.ts';
import { errorCode, errorText, parsePop } from '../embed/chat.ts';
import { InternalError, InvalidArgumentError } from '../../src/errors.ts';

export interface BenchRow {
  mode: string;
  targetTokens: number;
  promptTokens: number;
  keep: number;
  layers: number;
  ttftMs: number;
  prefillTokPerS: number;
  decodeTokPerS: number;
  firstToken: string;
  text: string;
  /** TTFT of every repetition; ttftMs is their median. */
  runs: number[];
}
export interface ImageBenchRow {
  mode: string;
  promptTokens: number;
  keep: number;
  layers: number;
  /** Wall time of a one-token request (image decode + tower + prefill + first token), median of the runs. */
  ttftMs: number;
  /** The engine's own TTFT (usage.extra.ttft_ms) of that run. */
  engineTtftMs: number;
  speedupVsOff: number | null;
  firstToken: string;
  runs: number[];
}
export interface ImageBenchState {
  status: 'idle' | 'running' | 'done' | 'needs-vlm' | 'skipped' | 'error';
  image: string;
  rows: ImageBenchRow[];
  error?: { code: string; message: string };
}
interface BenchState { status: 'idle' | 'running' | 'done' | 'error'; model: string; rows: BenchRow[]; error?: { code: string; message: string }; image: ImageBenchState }

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const form = $<HTMLFormElement>('bench-form');
const modelIn = $<HTMLInputElement>('bench-model');
const lengthsIn = $<HTMLInputElement>('bench-lengths');
const modesIn = $<HTMLInputElement>('bench-modes');
const maxIn = $<HTMLInputElement>('bench-max-tokens');
const repsIn = $<HTMLInputElement>('bench-reps');
const imageIn = $<HTMLInputElement>('bench-image');
const imageSizeIn = $<HTMLInputElement>('bench-image-size');
const imageStatus = $('image-status');
const imageBody = $('image-results').querySelector('tbody')!;
const status = $('bench-status');
const errorBox = $('error');
const chart = $('chart') as unknown as SVGSVGElement;
const tbody = $('results').querySelector('tbody')!;
const bench: BenchState = { status: 'idle', model: '', rows: [], image: { status: 'idle', image: '', rows: [] } };
(globalThis as { __bench?: BenchState }).__bench = bench;

const q = new URLSearchParams(location.search);
if (q.get('model')) modelIn.value = q.get('model')!;
if (q.get('lengths')) lengthsIn.value = q.get('lengths')!;
if (q.get('modes')) modesIn.value = q.get('modes')!;
if (q.get('max_tokens')) maxIn.value = q.get('max_tokens')!;
if (q.get('reps')) repsIn.value = q.get('reps')!;
if (q.get('image')) imageIn.checked = q.get('image') !== '0';
if (q.get('image_size')) imageSizeIn.value = q.get('image_size')!;

// Words that are one token each in the embedded model's tokenizer: N-1 of them plus BOS make
// an N-token prompt there (other tokenizers count differently; the table shows the real count).
const WORDS = 'the little saw a big happy day and she said to play time he was'.split(' ');
export function promptOf(tokens: number): string {
  return Array.from({ length: Math.max(1, tokens - 1) }, (_, i) => WORDS[(i * 7) % WORDS.length]).join(' ');
}

let engine: WorkerEngine | null = null;
let loadedModel = '';

async function runOne(mode: string, target: number, maxTokens: number): Promise<BenchRow> {
  const chunks = await engine!.completions.create({ prompt: promptOf(target), max_tokens: maxTokens, ignore_eos: true, pop: parsePop(mode), stream: true, stream_options: { include_usage: true }, temperature: 0 });
  let text = '';
  let first: string | null = null;
  let usage: CompletionUsage | undefined;
  for await (const c of chunks) {
    const t = c.choices[0]?.text ?? '';
    if (t && first === null) first = t;
    text += t;
    if (c.usage) usage = c.usage;
  }
  const x = usage!.extra;
  return {
    mode, targetTokens: target, promptTokens: usage!.prompt_tokens, keep: x.pop_keep, layers: x.layers,
    ttftMs: x.ttft_ms, prefillTokPerS: x.prefill_tokens_per_s, decodeTokPerS: x.decode_tokens_per_s, firstToken: first ?? '', text, runs: [x.ttft_ms],
  };
}

/** The question that goes with the image (SmolVLM-style: the image first, then the text). */
export const IMAGE_QUESTION = 'Describe this image in one sentence.';

/** A deterministic test pattern (gradients + a checker) as a PNG. */
async function patternPng(width: number, height: number): Promise<Blob> {
  const c = new OffscreenCanvas(width, height);
  const g = c.getContext('2d')!;
  const grad = g.createLinearGradient(0, 0, width, height);
  grad.addColorStop(0, '#d9480f');
  grad.addColorStop(1, '#2f6fdf');
  g.fillStyle = grad;
  g.fillRect(0, 0, width, height);
  g.fillStyle = 'rgba(255,255,255,0.7)';
  const s = Math.max(4, Math.round(Math.min(width, height) / 8));
  for (let y = 0; y < height; y += s) for (let x = ((y / s) % 2) * s; x < width; x += 2 * s) g.fillRect(x, y, s, s);
  return c.convertToBlob({ type: 'image/png' });
}

/** One image+text request of one token; TTFT is its wall time. */
async function runImageOne(image: Blob, mode: string): Promise<Omit<ImageBenchRow, 'speedupVsOff' | 'runs'>> {
  const t0 = performance.now();
  const chunks = await engine!.chat.completions.create({
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: image as unknown as string } }, { type: 'text', text: IMAGE_QUESTION }] }],
    max_tokens: 1, ignore_eos: true, pop: parsePop(mode), stream: true, stream_options: { include_usage: true }, temperature: 0,
  });
  let text = '';
  let usage: CompletionUsage | undefined;
  for await (const c of chunks) {
    text += c.choices[0]?.delta.content ?? '';
    if (c.usage) usage = c.usage;
  }
  const wall = performance.now() - t0;
  const x = usage!.extra;
  return { mode, promptTokens: usage!.prompt_tokens, keep: x.pop_keep, layers: x.layers, ttftMs: wall, engineTtftMs: x.ttft_ms, firstToken: text };
}

/** The image-prompt rows: a warm-up (compiles the tower's kernels; a text-only model says so here), then each mode. */
async function runImage(modes: string[], reps: number): Promise<void> {
  const im = bench.image;
  imageBody.replaceChildren();
  const size = /^(\d+)\s*x\s*(\d+)$/.exec(imageSizeIn.value.trim());
  Object.assign(im, { status: 'running', image: size ? `${size[1]}x${size[2]}` : '', rows: [], error: undefined });
  if (!imageIn.checked) {
    im.status = 'skipped';
    imageStatus.textContent = 'Skipped (image prompt unchecked).';
    return;
  }
  if (!size) throw new InvalidArgumentError('image size', `'${imageSizeIn.value}' is not WIDTHxHEIGHT`);
  const image = await patternPng(Number(size[1]), Number(size[2]));
  imageStatus.textContent = 'Image prompt: warming up…';
  try {
    await runImageOne(image, 'off');
  } catch (e) {
    if (errorCode(e) === 'INVALID_ARGUMENT' && /image/i.test((e as Error).message)) {
      im.status = 'needs-vlm';
      imageStatus.textContent = 'Image prompt: needs a vision-language model (this one is text-only). Load one, e.g. a SmolVLM.';
      return;
    }
    throw e;
  }
  let off: number | null = null;
  for (const mode of modes) {
    const runs: Omit<ImageBenchRow, 'speedupVsOff' | 'runs'>[] = [];
    for (let r = 0; r < reps; r++) {
      imageStatus.textContent = `Image prompt (${im.image}), POP ${mode} (run ${r + 1}/${reps})…`;
      runs.push(await runImageOne(image, mode));
    }
    const sorted = [...runs].sort((a, b) => a.ttftMs - b.ttftMs);
    const med = sorted[(reps - 1) >> 1];
    if (runs.some((r) => r.firstToken !== med.firstToken)) throw new InternalError(`image prompt, POP ${mode}: different first tokens between repetitions`);
    if (mode === 'off') off = med.ttftMs;
    const row: ImageBenchRow = { ...med, speedupVsOff: off === null ? null : off / med.ttftMs, runs: runs.map((r) => r.ttftMs) };
    im.rows.push(row);
    const tr = document.createElement('tr');
    for (const v of [row.mode, row.promptTokens, `${row.keep}/${row.layers}`, row.ttftMs.toFixed(1), row.engineTtftMs.toFixed(1), row.speedupVsOff === null ? '-' : `${row.speedupVsOff.toFixed(2)}x`, JSON.stringify(row.firstToken)]) {
      const td = document.createElement('td');
      td.textContent = String(v);
      tr.append(td);
    }
    imageBody.append(tr);
  }
  im.status = 'done';
  imageStatus.textContent = `Image prompt (${im.image} test pattern + "${IMAGE_QUESTION}"): TTFT is the wall time of a one-token request (image decode, vision tower, prefill).`;
}

async function run(): Promise<void> {
  const model = modelIn.value.trim();
  const lengths = lengthsIn.value.split(',').map((s) => parseInt(s, 10)).filter((n) => n > 0);
  const modes = modesIn.value.split(',').map((s) => s.trim()).filter(Boolean);
  const maxTokens = Math.max(1, Number(maxIn.value) || 4);
  const reps = Math.max(1, Number(repsIn.value) || 1);
  Object.assign(bench, { status: 'running', model, rows: [], error: undefined });
  Object.assign(bench.image, { status: 'idle', rows: [], error: undefined });
  imageBody.replaceChildren();
  imageStatus.textContent = 'Not run yet.';
  document.body.dataset.state = 'running';
  errorBox.hidden = true;
  tbody.replaceChildren();
  draw([]);
  try {
    if (!engine || loadedModel !== model) {
      const onProgress = (r: { text: string }) => (status.textContent = `Loading ${model}: ${r.text}`);
      if (engine) (engine.setInitProgressCallback(onProgress), await engine.reload(model));
      else engine = await CreateWorkerEngine(model, { initProgressCallback: onProgress });
      loadedModel = model;
    }
    status.textContent = 'Warming up (shader compilation)…';
    if (lengths.length) await runOne('off', Math.min(...lengths), 2);
    for (const n of lengths) {
      for (const mode of modes) {
        // Repetitions: the median TTFT is reported; the tokens must not change between them.
        const runs: BenchRow[] = [];
        for (let r = 0; r < reps; r++) {
          status.textContent = `POP ${mode}, ${n} prompt tokens (run ${r + 1}/${reps})…`;
          runs.push(await runOne(mode, n, maxTokens));
        }
        const sorted = [...runs].sort((a, b) => a.ttftMs - b.ttftMs);
        const row = { ...sorted[(reps - 1) >> 1], runs: runs.map((r) => r.ttftMs) };
        if (runs.some((r) => r.text !== row.text)) throw new InternalError(`POP ${mode} at ${n} tokens gave different tokens between repetitions`);
        bench.rows.push(row);
        addRow(row);
        draw(bench.rows);
      }
    }
    status.textContent = 'Image prompt…';
    await runImage(modes, reps);
    bench.status = 'done';
    status.textContent = `Done: ${bench.rows.length} runs on ${model}` + (bench.image.rows.length ? `, ${bench.image.rows.length} image-prompt rows.` : '.');
  } catch (e) {
    if (errorCode(e) !== 'ENGINE_NOT_LOADED') loadedModel = '';
    if (bench.image.status === 'running') {
      bench.image.status = 'error';
      bench.image.error = { code: errorCode(e), message: (e as Error).message };
      imageStatus.textContent = `Image prompt failed: ${errorText(e)}`;
    }
    bench.status = 'error';
    bench.error = { code: errorCode(e), message: (e as Error).message };
    errorBox.textContent = errorText(e);
    errorBox.hidden = false;
    status.textContent = 'Failed.';
  }
  document.body.dataset.state = bench.status;
}

function addRow(r: BenchRow): void {
  const tr = document.createElement('tr');
  for (const v of [r.mode, r.promptTokens, `${r.keep}/${r.layers}`, r.ttftMs.toFixed(1), r.prefillTokPerS.toFixed(1), r.decodeTokPerS.toFixed(1), JSON.stringify(r.firstToken)]) {
    const td = document.createElement('td');
    td.textContent = String(v);
    tr.append(td);
  }
  tbody.append(tr);
}

const COLORS = ['#d9480f', '#2f6fdf', '#2b8a3e', '#862e9c', '#e67700'];
const SVG = 'http://www.w3.org/2000/svg';

/** TTFT (y) vs prompt tokens (x), one line per POP mode. */
function draw(rows: BenchRow[]): void {
  const W = 640, H = 320, L = 56, R = 110, T = 28, B = 36;
  const el = (tag: string, attrs: Record<string, string | number>, text?: string) => {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    if (text !== undefined) n.textContent = text;
    chart.append(n);
    return n;
  };
  chart.replaceChildren();
  const xMax = Math.max(1, ...rows.map((r) => r.promptTokens));
  const yMax = Math.max(1, ...rows.map((r) => r.ttftMs)) * 1.1;
  const x = (v: number) => L + (v / xMax) * (W - L - R);
  const y = (v: number) => H - B - (v / yMax) * (H - T - B);
  el('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: 'currentColor' });
  el('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: 'currentColor' });
  for (let i = 0; i <= 4; i++) {
    el('text', { x: L - 6, y: y((yMax * i) / 4) + 4, 'text-anchor': 'end' }, ((yMax * i) / 4).toFixed(0));
    el('text', { x: x((xMax * i) / 4), y: H - B + 16, 'text-anchor': 'middle' }, ((xMax * i) / 4).toFixed(0));
  }
  el('text', { x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle' }, 'prompt tokens');
  el('text', { x: 8, y: 12 }, 'TTFT ms');
  const modes = [...new Set(rows.map((r) => r.mode))];
  modes.forEach((m, i) => {
    const pts = rows.filter((r) => r.mode === m).sort((a, b) => a.promptTokens - b.promptTokens);
    const color = COLORS[i % COLORS.length];
    el('polyline', { points: pts.map((r) => `${x(r.promptTokens)},${y(r.ttftMs)}`).join(' '), fill: 'none', stroke: color, 'stroke-width': 2, 'data-mode': m });
    for (const r of pts) el('circle', { cx: x(r.promptTokens), cy: y(r.ttftMs), r: 3, fill: color });
    el('text', { x: W - R + 10, y: T + 14 + i * 16, fill: color }, `POP ${m}`);
  });
}

// WebLLM side by side: only online, only on request (it downloads a prebuilt model library and
// hundreds of MB of weights). Offline it is skipped, never awaited.
const WEBLLM_MODEL = 'Qwen2.5-0.5B-Instruct-q4f32_1-MLC';
const webllmNote = $('webllm-note');
const webllmRun = $<HTMLButtonElement>('webllm-run');
function updateWebllm(): void {
  const online = navigator.onLine;
  webllmNote.textContent = `WebLLM baseline: needs network / prebuilt model (${WEBLLM_MODEL}).` + (online ? ' Press the button to download and run it on the same prompt lengths.' : ' Offline: skipped.');
  webllmRun.hidden = !online;
}
updateWebllm();
addEventListener('online', updateWebllm);
addEventListener('offline', updateWebllm);
webllmRun.addEventListener('click', async () => {
  webllmRun.disabled = true;
  try {
    const url = 'https://esm.run/@mlc-ai/web-llm@0.2.79';
    const webllm = await import(/* @vite-ignore */ url);
    const eng = await webllm.CreateMLCEngine(WEBLLM_MODEL, { initProgressCallback: (r: { text: string }) => (status.textContent = `WebLLM: ${r.text}`) });
    for (const n of lengthsIn.value.split(',').map((s) => parseInt(s, 10)).filter((v) => v > 0)) {
      status.textContent = `WebLLM, ${n} prompt tokens…`;
      const r = await eng.chat.completions.create({ messages: [{ role: 'user', content: promptOf(n) }], max_tokens: Number(maxIn.value) || 4, temperature: 0 });
      const u = r.usage;
      const row: BenchRow = {
        mode: 'webllm', targetTokens: n, promptTokens: u.prompt_tokens, keep: 0, layers: 0, ttftMs: (u.extra?.time_to_first_token_s ?? 0) * 1000,
        prefillTokPerS: u.extra?.prefill_tokens_per_s ?? 0, decodeTokPerS: u.extra?.decode_tokens_per_s ?? 0, firstToken: '', text: r.choices[0].message.content ?? '', runs: [],
      };
      row.runs.push(row.ttftMs);
      bench.rows.push(row);
      addRow(row);
      draw(bench.rows);
    }
    status.textContent = 'WebLLM baseline done.';
  } catch (e) {
    webllmNote.textContent = `WebLLM baseline failed (${(e as Error).message}); it needs network access and a prebuilt model.`;
  } finally {
    webllmRun.disabled = false;
  }
});

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (bench.status !== 'running') void run();
});
draw([]);
if (q.get('autorun') === '1') void run();
