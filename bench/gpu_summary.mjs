// bench/gpu.sh's summary: reads the JSON lines of `pop-llm bench --json` runs and prints, per
// run, the achieved decode bandwidth (GB/s) and prefill rate (TFLOP/s) against the device's
// peak. WebGPU does not report a peak: it comes from --peak-gbps / --peak-tflops, else from
// PEAKS below by the adapter's name (Dawn's adapter strings, and GPU_NAME, e.g. nvidia-smi's).
//   node bench/gpu_summary.mjs RESULTS.jsonl [--peak-gbps N] [--peak-tflops N] [--gpu-name NAME]
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * Vendor figures (approximate): memory bandwidth in GB/s, and vector (non-tensor-core) f32 and
 * f16 TFLOP/s, since WGSL reaches no tensor cores. First match wins: more specific names first.
 */
export const PEAKS = [
  { match: /H200/i, name: 'NVIDIA H200 (SXM)', gbps: 4800, f32: 66.9, f16: 133.8 },
  { match: /H100.*PCIe/i, name: 'NVIDIA H100 PCIe', gbps: 2000, f32: 51.2, f16: 102.4 },
  { match: /H100/i, name: 'NVIDIA H100 (SXM)', gbps: 3350, f32: 66.9, f16: 133.8 },
  { match: /A100.*80/i, name: 'NVIDIA A100 80GB (SXM)', gbps: 2039, f32: 19.5, f16: 78 },
  { match: /A100/i, name: 'NVIDIA A100 40GB', gbps: 1555, f32: 19.5, f16: 78 },
  { match: /L40S/i, name: 'NVIDIA L40S', gbps: 864, f32: 91.6, f16: 91.6 },
  { match: /\bL4\b/i, name: 'NVIDIA L4', gbps: 300, f32: 30.3, f16: 30.3 },
  { match: /A10G?\b/i, name: 'NVIDIA A10', gbps: 600, f32: 31.2, f16: 31.2 },
  { match: /\bT4\b/i, name: 'NVIDIA T4', gbps: 320, f32: 8.1, f16: 16.2 },
  { match: /RTX 4090/i, name: 'NVIDIA GeForce RTX 4090', gbps: 1008, f32: 82.6, f16: 82.6 },
  { match: /RTX 3090/i, name: 'NVIDIA GeForce RTX 3090', gbps: 936, f32: 35.6, f16: 35.6 },
];

function option(args, name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

const args = process.argv.slice(2);
const file = args.find((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--')));
if (!file || !existsSync(file)) {
  console.error('usage: node bench/gpu_summary.mjs RESULTS.jsonl [--peak-gbps N] [--peak-tflops N] [--gpu-name NAME]');
  process.exit(1);
}
const rows = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l));
const flagGb = Number(option(args, '--peak-gbps') ?? process.env.GPU_PEAK_GBPS) || null;
const flagTf = Number(option(args, '--peak-tflops') ?? process.env.GPU_PEAK_TFLOPS) || null;
const gpuName = option(args, '--gpu-name') ?? process.env.GPU_NAME ?? '';

const engines = new Map(), mem = new Map();
for (const r of rows) {
  if (r.kind === 'engine') engines.set(`${r.model}|${r.quant}`, r);
  if (r.kind === 'memory') mem.set(`${r.model}|${r.quant}`, r);
}
const adapterName = (a) => (a ? [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' ') : '');
const anyEngine = [...engines.values()][0];
const names = `${gpuName} ${adapterName(anyEngine?.adapter)}`;
const peak = PEAKS.find((p) => p.match.test(names)) ?? null;
console.log(`device: ${gpuName || '(no GPU_NAME)'}; adapter: ${adapterName(anyEngine?.adapter) || '(none: no bench row ran)'}`);
console.log(`peak: ${flagGb ?? peak?.gbps ?? '?'} GB/s, ${flagTf ?? (peak ? `${peak.f32} (f32) / ${peak.f16} (f16)` : '?')} TFLOP/s (${flagGb || flagTf ? 'flags' : peak ? `table: ${peak.name}` : 'unknown: give --peak-gbps / --peak-tflops'})`);

for (const r of rows) {
  if (r.error) console.log(`error ${r.error.code}: ${r.error.message}`);
  if (r.kind === 'kernel_choice') console.log(`${r.model} kernels: ${r.family}: ${r.choice} ${JSON.stringify(r.timings)} ${r.unit}`);
}

const tied = (model) => {
  const dir = model.startsWith('random:') ? model.slice('random:'.length) : model;
  const p = resolve(dir, 'config.json');
  if (!existsSync(p)) return true;
  const c = JSON.parse(readFileSync(p, 'utf8'));
  return !!(c.tie_word_embeddings ?? c.text_config?.tie_word_embeddings);
};
const fmt = (v) => (v >= 100 ? v.toFixed(0) : v.toPrecision(3));
const pct = (v, p) => (p ? ` (${((100 * v) / p).toFixed(0)}% of peak)` : '');
for (const r of rows) {
  if (r.kind || r.prefill_ms === undefined) continue;
  const m = mem.get(`${r.model}|${r.quant}`), e = engines.get(`${r.model}|${r.quant}`);
  if (!m) continue;
  // Decode reads every layer weight and the LM head once per token (the embedding table is the
  // LM head when tied; else one row of it), and the KV cache written so far; not POP's deep K/V.
  const weights = m.weight_bytes - m.deep_kv_bytes - (tied(r.model) ? 0 : m.embed_bytes);
  const kvPerToken = m.kv_bytes / m.context;
  const gbps = (r.decode_tokens_per_s * (weights + kvPerToken * (r.prompt_tokens + r.max_tokens / 2))) / 1e9;
  // Prefill FLOPs actually run: POP runs keep of the layers for all but the last row (deep K/V projections left out).
  const tflops = (r.full_depth_prefill_flops * (r.keep / r.layers)) / (r.prefill_ms / 1000) / 1e12;
  const dtype = r.quant === 'none' ? (e?.weight_dtype ?? 'f32') : r.quant;
  const half = r.quant === 'none' && e?.f16_arithmetic;
  const peakTf = flagTf ?? (peak ? (half ? peak.f16 : peak.f32) : null);
  console.log(`${r.model.replace(/^random:configs\//, '')} ${dtype}${half ? ' (f16 math)' : ''} ${r.prompt_tokens} tok pop ${r.pop} (keep ${r.keep}/${r.layers}): `
    + `decode ${r.decode_tokens_per_s} tok/s = ${fmt(gbps)} GB/s${pct(gbps, flagGb ?? peak?.gbps)}; `
    + `prefill ${r.prefill_ms} ms = ${fmt(tflops)} TFLOP/s${pct(tflops, peakTf)}; TTFT ${r.ttft_ms} ms, ${r.speedup_vs_off ?? '-'}x vs off`);
}
