#!/usr/bin/env bash
# bench/gpu.sh: pop-llm's figures on a machine with a GPU (target: under 8 minutes there).
# See bench/README.md ("bench/gpu.sh") for what it prints and how to read it.
#
#   bench/gpu.sh [--dry-run] [--host node|chromium] [--peak-gbps N] [--peak-tflops N]
#                [--prompts 128,512,2048] [--max-tokens 32] [--out FILE] [--no-webllm]
#
# 1. `pop-llm bench --host node` (the engine under Node on Dawn, tools/node/node_host.ts; or
#    --host chromium: headless Chromium on the machine's GPU) on random weights at the real
#    SmolLM2-135M and Qwen2.5-0.5B configs (configs/), f16 (the 'auto' weight dtype: f16 where
#    the adapter has shader-f16, else f32) and q4, prompts of 128/512/2048 tokens, POP
#    off/exact/2/3; each load prints its kernel choices with every candidate's timing.
# 2. bench/gpu_summary.mjs: per run, decode GB/s and prefill TFLOP/s against the device's peak
#    (--peak-gbps / --peak-tflops, else a table by adapter or nvidia-smi name).
# 3. Where Debian's chromium is installed (and not --no-webllm): `pop-llm bench --vs-webllm` in
#    Chromium on the GPU: WebLLM 0.2.79 and pop-llm on one random q4f32_1 Qwen2.5-0.5B folder
#    (skipped when the benches failed).
# 4. If python3 has torch and transformers: our CPU reference against transformers on the tiny
#    fixtures (bench/hf_fixtures.ts writes them and our logits, bench/hf_compare.py compares).
# The first bench that fails ends the bench step with its typed error (no GPU: NO_WEBGPU);
# the comparison still runs, and the script exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

DRY=0
WEBLLM=1
HOST=node
PROMPTS=128,512,2048
MAX_TOKENS=32
PEAK=()
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --no-webllm) WEBLLM=0 ;;
    --host) HOST="$2"; shift ;;
    --prompts) PROMPTS="$2"; shift ;;
    --max-tokens) MAX_TOKENS="$2"; shift ;;
    --peak-gbps|--peak-tflops) PEAK+=("$1" "$2"); shift ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "gpu.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$HOST" in node|chromium) ;; *) echo "gpu.sh: --host must be node or chromium (got $HOST)" >&2; exit 2 ;; esac
OUT="${OUT:-.cache/gpu-bench/gpu-$(date -u +%Y%m%dT%H%M%S).jsonl}"
# The longest prompt, the new tokens and a margin.
LONGEST=$(echo "$PROMPTS" | tr ',' '\n' | sort -n | tail -1)
CONTEXT=$((LONGEST + MAX_TOKENS + 64))
# The machine's GPU, not SwiftShader (both hosts read this).
export POP_LLM_WEBGPU_ADAPTER="${POP_LLM_WEBGPU_ADAPTER:-default}"
GPU_NAME="${GPU_NAME:-$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)}"
export GPU_NAME
HF_DIR=.cache/hf-compare

BENCHES=()
for model in HuggingFaceTB__SmolLM2-135M-Instruct Qwen__Qwen2.5-0.5B-Instruct; do
  for quant in none q4; do
    BENCHES+=("node bin/pop-llm.mjs bench --host $HOST --model random:configs/$model --quant $quant --prompt-tokens $PROMPTS --pop off,exact,2/3 --max-tokens $MAX_TOKENS --context $CONTEXT --json")
  done
done
SUMMARY="node bench/gpu_summary.mjs $OUT ${PEAK[*]:-}"
CHROMIUM="${POP_LLM_CHROMIUM:-/usr/bin/chromium}"
VS_WEBLLM="node bin/pop-llm.mjs bench --vs-webllm --prompt-tokens 128,512 --max-tokens $MAX_TOKENS --pop off,exact,2/3"
HF_STEPS=("npx tsx bench/hf_fixtures.ts $HF_DIR" "python3 bench/hf_compare.py $HF_DIR/reference.json")

if [ "$DRY" = 1 ]; then
  echo "gpu.sh plan (host $HOST, POP_LLM_WEBGPU_ADAPTER=$POP_LLM_WEBGPU_ADAPTER, GPU_NAME='${GPU_NAME}', context $CONTEXT; JSON lines to $OUT):"
  n=1
  for c in "${BENCHES[@]}"; do echo "  $n. $c >> $OUT"; n=$((n + 1)); done
  echo "  $n. $SUMMARY"; n=$((n + 1))
  if [ "$WEBLLM" = 1 ]; then echo "  $n. if $CHROMIUM exists: $VS_WEBLLM"; n=$((n + 1)); fi
  echo "  $n. if python3 has torch and transformers: ${HF_STEPS[0]} && ${HF_STEPS[1]}"
  exit 0
fi

mkdir -p "$(dirname "$OUT")"
: > "$OUT"
START=$(date +%s)
STATUS=0
echo "gpu.sh: host $HOST, GPU '${GPU_NAME:-unknown}', prompts $PROMPTS, $MAX_TOKENS new tokens; JSON lines to $OUT" >&2
for c in "${BENCHES[@]}"; do
  echo "== $c" >&2
  if ! $c | tee -a "$OUT" >&2; then
    # A typed error is the last JSON line ({"error": {code, message}}); the others would fail the same way.
    echo "gpu.sh: the bench failed (above); skipping the remaining benches" >&2
    STATUS=1
    break
  fi
done
echo "== summary (after $(( $(date +%s) - START )) s)" >&2
$SUMMARY || STATUS=1

if [ "$WEBLLM" = 1 ] && [ "$STATUS" = 1 ]; then
  echo "== vs WebLLM skipped: the benches failed (no GPU host here)" >&2
elif [ "$WEBLLM" = 1 ] && [ -x "$CHROMIUM" ]; then
  echo "== pop-llm vs WebLLM in Chromium on this GPU" >&2
  $VS_WEBLLM || STATUS=1
elif [ "$WEBLLM" = 1 ]; then
  echo "== vs WebLLM skipped: no chromium at $CHROMIUM (WebLLM runs in Chromium only)" >&2
fi

if python3 -c 'import torch, transformers' 2>/dev/null; then
  echo "== our CPU reference vs transformers on the tiny fixtures" >&2
  ${HF_STEPS[0]} >&2 && ${HF_STEPS[1]} || STATUS=1
else
  echo "== transformers comparison skipped: python3 with torch and transformers not found" >&2
fi
echo "gpu.sh: done in $(( $(date +%s) - START )) s; raw rows: $OUT" >&2
exit $STATUS
