// sample.wgsl — pick the next token from one row of logits, entirely on the GPU.
//
// Job: greedy (temperature <= 0: argmax, ties -> lowest index) or temperature + top-k + top-p
// sampling with a stateless, seedable RNG. Writes ONLY out[0] = chosen token id (the CPU reads
// back 4 bytes). src/reference/sample.ts (sampleCpu, rngUniform) is the CPU twin of this exact
// algorithm; keep the two in step.
//
// Layout (bind group 0):
//   @binding(0) uniform Params, 32 bytes, little-endian words:
//       [0] vocab u32          number of logits in the row
//       [1] logitsOffset u32   first logit of the row, in f32 ELEMENTS (not bytes)
//       [2] topK u32           0 = off (also off when >= vocab)
//       [3] seed u32
//       [4] step u32           decode step; rng(seed, step) is the uniform draw
//       [5] temperature f32    <= 0 -> greedy
//       [6] topP f32           >= 1 -> off
//       [7] logMinP f32        ln(min_p) (<= 0); > 0 -> min-p off
//   @binding(1) storage read        logits: array<f32>
//   @binding(2) storage read_write  out: array<u32>   (only out[0] is written)
//   @binding(3) storage read        mask: array<u32>  allowed-token bitmask, bit (i & 31) of
//       word i >> 5 (a grammar's, src/engine/grammar.ts); read only when the override MASKED is
//       true (else bind any buffer). A masked token reads as -FLT_MAX: never kept, never drawn.
//
// Dispatch: dispatchWorkgroups(1) — exactly ONE workgroup of WG invocations (override, default
// 256, must be a power of two). Vocab of any size up to 2^24 (counts are accumulated in f32).
//
// Algorithm for temperature T > 0 (m = max logit, w_i = exp((l_i - m) / T); a token is "kept"
// iff l_i >= t for one threshold t, so the max token is always kept):
//   0. Lower bound lo0 = max(min logit, m - 128*T): below it exp() underflows to 0 in f32, so
//      tokens there can never be drawn; flooring the bisection range there keeps it narrow and
//      makes -inf logits (masking) safe. t starts at lo0.
//   1. top-k (0 < topK < vocab): bisection (<= 40 iterations) on [lo0, m] for the largest t
//      with count(l_i >= t) >= topK; stops early once lo/hi are adjacent floats or once
//      count(l_i >= lo) == topK exactly (same kept set). Ties at the k-th value (and values
//      within (m-lo0)/2^40 of it) can keep MORE than k tokens.
//   2. top-p (topP < 1): W = sum of kept weights; bisection on [t, m] for the largest t' with
//      sum_{l_i >= t'} w_i >= topP * W (smallest nucleus whose mass reaches topP); stops early
//      once at most one token lies in [lo, hi) (counts tracked alongside). t = t'.
//   3. u = rng(seed, step) in [0,1) (PCG hash, 24 bits); goal = u * sum(kept w). Each
//      invocation sums its contiguous chunk of ceil(vocab/WG) tokens, a Hillis-Steele scan
//      over the chunk sums finds the first chunk whose inclusive prefix exceeds goal, and that
//      invocation walks its chunk for the first token whose inclusive prefix exceeds goal.
//   (2b. min-p: t = max(t, m + T * ln(min_p)), i.e. keep p_i >= min_p * p_max, after top-k/top-p
//      as in transformers' MinPLogitsWarper; the kept sets intersect.)
//      Float-rounding fallbacks: no chunk exceeds -> last chunk with weight; nothing in the
//      chunk exceeds -> last kept token of that chunk.
// Only workgroup memory + barriers (no subgroups): runs on SwiftShader and real GPUs.

override WG: u32 = 256u;
override MASKED: bool = false;

struct Params {
  vocab: u32,
  logitsOffset: u32,
  topK: u32,
  seed: u32,
  step: u32,
  temperature: f32,
  topP: f32,
  logMinP: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@group(0) @binding(3) var<storage, read> mask: array<u32>;

const BISECT_ITERS: u32 = 40u;
const FLT_MAX: f32 = 3.4028234663852886e38;
const NONE: u32 = 0xffffffffu;

var<workgroup> redA: array<f32, WG>;
var<workgroup> redB: array<f32, WG>;
var<workgroup> redI: array<u32, WG>;
var<workgroup> pickChunk: atomic<u32>;
var<workgroup> lastChunk: atomic<u32>;

// PCG hash (Jarzynski & Olano 2020).
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn rngUniform(seed: u32, step: u32) -> f32 {
  return f32(pcg(seed ^ pcg(step)) >> 8u) / 16777216.0;
}

// exp(x) for x <= 0 accurate to ~1 ulp on every device (built-in exp may be off by several ulp,
// with a bias): Cody-Waite reduction x = n*ln2 + r, degree-7 Taylor on |r| <= ln2/2, ldexp.
fn wexp(x: f32) -> f32 {
  let n = round(x * 1.4426950408889634);
  let r = fma(n, -1.428606765330187e-6, fma(n, -0.693145751953125, x));
  var q = 1.0 / 5040.0;
  q = fma(q, r, 1.0 / 720.0);
  q = fma(q, r, 1.0 / 120.0);
  q = fma(q, r, 1.0 / 24.0);
  q = fma(q, r, 1.0 / 6.0);
  q = fma(q, r, 0.5);
  q = fma(q, r, 1.0);
  q = fma(q, r, 1.0);
  return ldexp(q, i32(max(n, -150.0)));
}

fn logit(i: u32) -> f32 {
  let l = logits[p.logitsOffset + i];
  if (MASKED && (mask[i >> 5u] & (1u << (i & 31u))) == 0u) { return -FLT_MAX; }
  return l;
}

// Workgroup sum; every invocation gets the (uniform) result. Call from uniform control flow.
fn reduceSum(v: f32, lid: u32) -> f32 {
  redA[lid] = v;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) { redA[lid] = redA[lid] + redA[lid + s]; }
  }
  let r = workgroupUniformLoad(&redA[0]);
  workgroupBarrier(); // everyone has read redA[0] before it is reused
  return r;
}

// Workgroup max (-> redA[0]) and min (-> redB[0]) in one tree.
fn reduceMaxMin(vmax: f32, vmin: f32, lid: u32) {
  redA[lid] = vmax;
  redB[lid] = vmin;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) {
      redA[lid] = max(redA[lid], redA[lid + s]);
      redB[lid] = min(redB[lid], redB[lid + s]);
    }
  }
}

// Two workgroup sums in one tree; every invocation gets both (uniform) results.
fn reduceSum2(v: vec2<f32>, lid: u32) -> vec2<f32> {
  redA[lid] = v.x;
  redB[lid] = v.y;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) {
      redA[lid] = redA[lid] + redA[lid + s];
      redB[lid] = redB[lid] + redB[lid + s];
    }
  }
  let r = vec2<f32>(workgroupUniformLoad(&redA[0]), workgroupUniformLoad(&redB[0]));
  workgroupBarrier();
  return r;
}

// (sum of weights, count) of tokens with logit >= th (strided: coalesced on real GPUs).
fn weightAbove(th: f32, m: f32, T: f32, lid: u32) -> vec2<f32> {
  var s = vec2<f32>(0.0, 0.0);
  for (var i = lid; i < p.vocab; i += WG) {
    let l = logit(i);
    if (l >= th) { s += vec2<f32>(wexp((l - m) / T), 1.0); }
  }
  return s;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let V = p.vocab;
  if (lid == 0u) {
    atomicStore(&pickChunk, NONE);
    atomicStore(&lastChunk, 0u);
  }

  // ---- greedy: argmax, ties -> lowest index ----
  if (p.temperature <= 0.0) {
    var bv = -FLT_MAX;
    var bi = NONE;
    for (var i = lid; i < V; i += WG) {
      let l = logit(i);
      if (bi == NONE || l > bv) { bv = l; bi = i; }
    }
    redA[lid] = bv;
    redI[lid] = bi;
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      workgroupBarrier();
      if (lid < s) {
        let ov = redA[lid + s];
        let oi = redI[lid + s];
        let cv = redA[lid];
        let ci = redI[lid];
        if (oi != NONE && (ci == NONE || ov > cv || (ov == cv && oi < ci))) {
          redA[lid] = ov;
          redI[lid] = oi;
        }
      }
    }
    if (lid == 0u) { out[0] = select(redI[0], 0u, redI[0] == NONE); }
    return;
  }

  let T = p.temperature;

  // ---- max and min logit ----
  var mx = -FLT_MAX;
  var mn = FLT_MAX;
  for (var i = lid; i < V; i += WG) {
    let l = logit(i);
    mx = max(mx, l);
    mn = min(mn, l);
  }
  reduceMaxMin(mx, mn, lid);
  let m = workgroupUniformLoad(&redA[0]);
  let mnAll = workgroupUniformLoad(&redB[0]);
  workgroupBarrier();

  // 128*T is exact, so a fused multiply-add gives the same floor as mul + sub.
  let lo0 = max(mnAll, m - 128.0 * T);
  var t = lo0;

  // ---- top-k threshold ----
  if (p.topK > 0u && p.topK < V) {
    var lo = lo0;
    var hi = m;
    let k = f32(p.topK);
    for (var it = 0u; it < BISECT_ITERS; it++) {
      let mid = lo + (hi - lo) * 0.5;
      if (mid <= lo || mid >= hi) { break; }
      var c = 0.0;
      for (var i = lid; i < V; i += WG) {
        if (logit(i) >= mid) { c += 1.0; }
      }
      let cMid = reduceSum(c, lid);
      if (cMid >= k) {
        lo = mid;
        if (cMid == k) { break; } // {l >= lo} is exactly the top k: same set as converged
      } else {
        hi = mid;
      }
    }
    t = lo;
  }

  // ---- top-p threshold ----
  if (p.topP < 1.0) {
    let wc = reduceSum2(weightAbove(t, m, T, lid), lid);
    let need = p.topP * wc.x;
    var lo = t;
    var hi = m;
    var cLo = wc.y; // count(l >= lo)
    var cHi = 0.0;   // count(l >= hi); 0 is a safe under-estimate for hi = m
    for (var it = 0u; it < BISECT_ITERS; it++) {
      // at most one token in [lo, hi): {l >= lo} is already the converged kept set
      if (cLo - cHi <= 1.0) { break; }
      let mid = lo + (hi - lo) * 0.5;
      if (mid <= lo || mid >= hi) { break; }
      let sc = reduceSum2(weightAbove(mid, m, T, lid), lid);
      if (sc.x >= need) { lo = mid; cLo = sc.y; } else { hi = mid; cHi = sc.y; }
    }
    t = lo;
  }

  // ---- min-p threshold ----
  if (p.logMinP <= 0.0) { t = max(t, m + T * p.logMinP); }

  // ---- draw: contiguous chunk sums + workgroup inclusive scan ----
  let chunk = (V + WG - 1u) / WG;
  let start = min(lid * chunk, V);
  let end = min(start + chunk, V);
  var cs = 0.0;
  for (var i = start; i < end; i++) {
    let l = logit(i);
    if (l >= t) { cs += wexp((l - m) / T); }
  }
  redA[lid] = cs;
  for (var off = 1u; off < WG; off <<= 1u) {
    workgroupBarrier();
    var add = 0.0;
    if (lid >= off) { add = redA[lid - off]; }
    workgroupBarrier();
    redA[lid] = redA[lid] + add;
  }
  workgroupBarrier();
  let incl = redA[lid];
  var excl = 0.0;
  if (lid > 0u) { excl = redA[lid - 1u]; }
  let total = redA[WG - 1u];
  let goal = rngUniform(p.seed, p.step) * total;
  if (cs > 0.0) {
    atomicMax(&lastChunk, lid);
    if (incl > goal) { atomicMin(&pickChunk, lid); }
  }
  workgroupBarrier();
  var chosen = atomicLoad(&pickChunk);
  if (chosen == NONE) { chosen = atomicLoad(&lastChunk); }
  if (lid == chosen) {
    // prefix(i) > goal  <=>  (sum of this chunk's kept weights up to i) > goal - excl; comparing
    // small partial sums keeps the f32 error near one ulp of the total instead of ~chunk ulps.
    let rem = goal - excl;
    var acc = 0.0;
    var last = start;
    var res = NONE;
    for (var i = start; i < end; i++) {
      let l = logit(i);
      if (l >= t) {
        acc += wexp((l - m) / T);
        last = i;
        if (acc > rem) { res = i; break; }
      }
    }
    out[0] = select(res, last, res == NONE);
  }
}
