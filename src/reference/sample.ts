// CPU twin of shaders/sample.wgsl: the same thresholds, bisection and RNG, written plainly.
// Results agree with the GPU token for token except in float-rounding corner cases (the GPU
// sums weights in f32 in a different order and its exp/division may differ by a few ulp, so a
// draw or a top-p comparison that lands within rounding of a boundary can go the other way).
//
// Algorithm (T = temperature > 0; m = max logit; w_i = exp((l_i - m) / T); kept <=> l_i >= t):
//   lo0 = max(min logit, m - 128*T)   (below it w underflows to 0 in f32); t = lo0
//   top-k (0 < topK < vocab): bisection on [lo0, m], <= 40 steps, for the largest t with
//     count(l_i >= t) >= topK, stopping once lo/hi are adjacent floats or count(l >= lo) == topK
//     (ties at the k-th value may keep > k).
//   top-p (topP < 1): bisection on [t, m] for the largest t' with
//     sum_{l_i >= t'} w_i >= topP * sum_{l_i >= t} w_i, stopping once at most one token lies in
//     [lo, hi) (count(l >= hi) starts at 0 for hi = m); t = t'.
//   min-p (minP > 0): t = max(t, m + T * ln(minP)) (after top-k / top-p: the sets intersect).
//   masked tokens (a grammar's bitmask): logit -Infinity, never kept.
//   draw: u = rngUniform(seed, step); target = u * sum(kept w); first index (in index order)
//     whose inclusive prefix sum of kept weights exceeds target; else the last kept token.
// temperature <= 0: argmax, ties -> lowest index.
import type { SampleParams } from '../core/op_types.ts';

export type { SampleParams };

const f = Math.fround;
const BISECT_ITERS = 40;

/** PCG hash on u32, exactly as in the WGSL. */
function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** Uniform in [0, 1) with 24 bits: f32(pcg(seed ^ pcg(step)) >> 8) / 2^24, mirrors the WGSL. */
export function rngUniform(seed: number, step: number): number {
  return (pcg(((seed >>> 0) ^ pcg(step >>> 0)) >>> 0) >>> 8) / 16777216;
}

function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

export function sampleCpu(logits: Float32Array, p: SampleParams, step: number): number {
  const V = logits.length;
  const T = f(p.temperature);
  if (!(T > 0)) return argmax(logits);

  let m = -Infinity;
  let mn = Infinity;
  for (let i = 0; i < V; i++) {
    m = Math.max(m, logits[i]);
    mn = Math.min(mn, logits[i]);
  }
  const weight = (l: number) => f(Math.exp(f(f(l - m) / T)));
  const weightAbove = (th: number) => {
    let s = 0;
    let c = 0;
    for (let i = 0; i < V; i++) if (logits[i] >= th) { s += weight(logits[i]); c++; }
    return { s, c };
  };
  const mid = (lo: number, hi: number) => f(lo + f(f(hi - lo) * 0.5));

  const lo0 = Math.max(mn, f(m - f(128 * T)));
  let t = lo0;

  const topK = p.topK >>> 0;
  if (topK > 0 && topK < V) {
    let lo = lo0;
    let hi = m;
    for (let it = 0; it < BISECT_ITERS; it++) {
      const c = mid(lo, hi);
      if (c <= lo || c >= hi) break;
      let count = 0;
      for (let i = 0; i < V; i++) if (logits[i] >= c) count++;
      if (count >= topK) {
        lo = c;
        if (count === topK) break;
      } else hi = c;
    }
    t = lo;
  }

  const topP = f(p.topP);
  if (topP < 1) {
    const all = weightAbove(t);
    const need = topP * all.s;
    let lo = t;
    let hi = m;
    let cLo = all.c;
    let cHi = 0;
    for (let it = 0; it < BISECT_ITERS; it++) {
      if (cLo - cHi <= 1) break;
      const c = mid(lo, hi);
      if (c <= lo || c >= hi) break;
      const r = weightAbove(c);
      if (r.s >= need) {
        lo = c;
        cLo = r.c;
      } else {
        hi = c;
        cHi = r.c;
      }
    }
    t = lo;
  }

  const minP = p.minP ?? 0;
  if (minP > 0) t = Math.max(t, f(m + f(T * f(Math.log(minP)))));

  const target = rngUniform(p.seed, step) * weightAbove(t).s;
  let acc = 0;
  let last = -1;
  for (let i = 0; i < V; i++) {
    if (logits[i] >= t) {
      acc += weight(logits[i]);
      last = i;
      if (acc > target) return i;
    }
  }
  return last;
}


/** One distinct token's adjustments (src/ops/ops.ts TokenAdjustment, restated for the twin). */
export interface TokenAdjustmentCpu {
  id: number;
  /** Times generated (frequency / presence penalties). */
  count: number;
  /** In the prompt or generated (repetition penalty). */
  seen: boolean;
  bias: number;
}

/**
 * Logit processing before sampling, in f32 as shaders/logits_adjust.wgsl: logit_bias, then
 * OpenAI's frequency/presence penalties (l -= frequency * count + presence for generated
 * tokens), then the CTRL / transformers repetition penalty (seen tokens: l < 0 ? l * r : l / r).
 * The grammar mask sets disallowed logits to -Infinity. Returns a new array.
 */
export function adjustLogitsCpu(logits: Float32Array, adjust: readonly TokenAdjustmentCpu[], pen: { frequency: number; presence: number; repetition: number }, mask?: Int32Array | null): Float32Array {
  const out = Float32Array.from(logits);
  for (const a of adjust) {
    let l = f(out[a.id] + f(a.bias));
    if (a.count > 0) l = f(l - f(f(f(pen.frequency) * a.count) + f(pen.presence)));
    const r = f(pen.repetition);
    if (a.seen && r !== 1) l = l < 0 ? f(l * r) : f(l / r);
    out[a.id] = l;
  }
  if (mask) for (let i = 0; i < out.length; i++) if (((mask[i >>> 5] >>> (i & 31)) & 1) === 0) out[i] = -Infinity;
  return out;
}

/**
 * Log-softmax of logits / T (T > 0; greedy callers pass 1), in f64: the sampled token's
 * logprob and the k most probable tokens (ties -> lowest index). -Infinity logits are excluded.
 */
export function logprobsCpu(logits: Float32Array, temperature: number, token: number, k: number): { logprob: number; top: { id: number; logprob: number }[] } {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] !== -Infinity) m = Math.max(m, logits[i] / temperature);
  let s = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i] !== -Infinity) s += Math.exp(logits[i] / temperature - m);
  const lse = m + Math.log(s);
  const order = Array.from(logits.keys()).filter((i) => logits[i] !== -Infinity).sort((a, b) => logits[b] - logits[a] || a - b);
  return { logprob: logits[token] / temperature - lse, top: order.slice(0, k).map((id) => ({ id, logprob: logits[id] / temperature - lse })) };
}
