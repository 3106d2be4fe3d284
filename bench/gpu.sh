#!/usr/bin/env bash
# bench/gpu.sh: pop-llm's figures on a machine with a GPU (target: under 8 minutes there).
# Runs `pop-llm bench` on random weights at the SmolLM2-135M and Qwen2.5-0.5B shapes, f16 (the
# 'auto' weight dtype: f16 where the adapter has shader-f16, else f32) and q4, prompts of
# 128/512/2048 tokens, POP off/exact/2/3, and prints per run the achieved decode GB/s (weights
# and KV read per token x tok/s) and prefill TFLOP/s (layer GEMM + attention FLOPs / prefill s)
# against the device's peak, which WebGPU does not report: give it as GPU_PEAK_GBPS and
# GPU_PEAK_TFLOPS (e.g. 1000 and 80 for an RTX 4090's f16).
#   HOST=chromium (default): headless Chromium on the machine's GPU (POP_LLM_WEBGPU_ADAPTER=default).
#   HOST=node: the Node host on the npm 'webgpu' package (Dawn); it ends with a typed error
#   saying why where it cannot run (the Node engine is not built yet: tools/node/node_host.ts).
# Each bench prints its load-time kernel choices with every candidate's timing ("kernels:").
# Put the figures, with the device named, in bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
HOST="${HOST:-chromium}"
PROMPTS="${PROMPTS:-128,512,2048}"
export POP_LLM_WEBGPU_ADAPTER="${POP_LLM_WEBGPU_ADAPTER:-default}"
OUT="${OUT:-bench/gpu-$(date -u +%Y%m%dT%H%M%S).jsonl}"
: > "$OUT"
for model in HuggingFaceTB__SmolLM2-135M-Instruct Qwen__Qwen2.5-0.5B-Instruct; do
  for quant in none q4; do
    echo "== $model, weights ${quant/none/f16 (auto)}, host $HOST" >&2
    node bin/pop-llm.mjs bench --host "$HOST" --model "random:configs/$model" --quant "$quant" \
      --prompt-tokens "$PROMPTS" --pop off,exact,2/3 --max-tokens 32 --context 4096 --json | tee -a "$OUT" >&2
  done
done
node --input-type=module - "$OUT" <<'JS'
import { readFileSync } from 'node:fs';
const rows = readFileSync(process.argv[2], 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const peakGb = Number(process.env.GPU_PEAK_GBPS) || null, peakTf = Number(process.env.GPU_PEAK_TFLOPS) || null;
const mem = new Map();
for (const r of rows) if (r.kind === 'memory') mem.set(`${r.model}|${r.quant}`, r);
for (const r of rows) {
  if (r.kind === 'kernel_choice') { console.log(`${r.model} kernels: ${r.family}: ${r.choice} ${JSON.stringify(r.timings)} ${r.unit}`); continue; }
  if (r.kind || r.prefill_ms === undefined) continue;
  const m = mem.get(`${r.model}|${r.quant}`);
  // Decode reads every layer weight and the LM head once per token, plus the KV cache so far.
  const weights = m.weight_bytes - m.deep_kv_bytes, kvPerToken = m.kv_bytes / m.context;
  const gbps = r.decode_tokens_per_s * (weights + kvPerToken * (r.prompt_tokens + r.max_tokens / 2)) / 1e9;
  // The prefill's FLOPs at full depth (layer GEMMs + causal attention); POP runs keep of the layers for most rows.
  const tflops = (r.full_depth_prefill_flops * (r.keep / r.layers)) / (r.prefill_ms / 1000) / 1e12;
  const pct = (v, p) => (p ? ` (${((100 * v) / p).toFixed(0)}% of peak)` : '');
  console.log(`${r.model} ${r.quant} ${r.prompt_tokens} tok pop ${r.pop}: decode ${r.decode_tokens_per_s} tok/s = ${gbps.toFixed(1)} GB/s${pct(gbps, peakGb)}; prefill ${r.prefill_ms} ms = ${tflops.toFixed(2)} TFLOP/s${pct(tflops, peakTf)}; speedup ${r.speedup_vs_off}x`);
}
JS
echo "raw rows: $OUT" >&2
