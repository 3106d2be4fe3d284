// logprobs.wgsl — log-probabilities of the sampled token and of the top-K tokens, on the GPU.
//
// Job: z_i = l_i / T over the row (masked tokens excluded, as in sample.wgsl); lse =
// max z + log(sum exp(z - max z)); writes the sampled token's z - lse and the K most probable
// tokens (value descending, ties -> lowest index) with theirs. Only 8 + 8K bytes come back.
// src/reference/sample.ts (logprobsCpu) is the twin.
//
// Layout (bind group 0):
//   @binding(0) uniform Params, 32 bytes: [0] vocab u32, [1] logitsOffset u32 (f32 elements),
//       [2] k u32 (0..20 top tokens), [3] unused, [4] temperature f32 (> 0; the host passes 1
//       for greedy), [5..7] unused
//   @binding(1) storage read        logits: array<f32>
//   @binding(2) storage read        mask: array<u32>   (read when MASKED; as in sample.wgsl)
//   @binding(3) storage read        token: array<u32>  (token[0] = the sampled id)
//   @binding(4) storage read_write  out: array<u32>:
//       [0] sampled id, [1] its logprob (f32 bits), then per top token r: [2 + 2r] id
//       (0xffffffff when fewer than k tokens are allowed), [3 + 2r] logprob (f32 bits)
// Dispatch: dispatchWorkgroups(1), WG invocations (power of two).
struct Params { vocab: u32, logitsOffset: u32, k: u32, _p0: u32, temperature: f32, _p1: u32, _p2: u32, _p3: u32 }
override WG: u32 = 256u;
override MASKED: bool = false;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read> token: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

const FLT_MAX: f32 = 3.4028234663852886e38;
const NONE: u32 = 0xffffffffu;
var<workgroup> redV: array<f32, WG>;
var<workgroup> redI: array<u32, WG>;

fn allowed(i: u32) -> bool {
  return !MASKED || (mask[i >> 5u] & (1u << (i & 31u))) != 0u;
}

fn z(i: u32) -> f32 {
  return logits[p.logitsOffset + i] / p.temperature;
}

// (v, i) ranks above (bv, bi): larger value, ties -> lower index.
fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
  return bi == NONE || v > bv || (v == bv && i < bi);
}

// Workgroup argmax of (value, index); every invocation gets the winner.
fn reduceBest(v: f32, i: u32, lid: u32) -> vec2<u32> {
  redV[lid] = v;
  redI[lid] = i;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s && redI[lid + s] != NONE && better(redV[lid + s], redI[lid + s], redV[lid], redI[lid])) {
      redV[lid] = redV[lid + s];
      redI[lid] = redI[lid + s];
    }
  }
  let r = vec2<u32>(bitcast<u32>(workgroupUniformLoad(&redV[0])), workgroupUniformLoad(&redI[0]));
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let V = p.vocab;
  // ---- max z over allowed tokens (the top-1), then sum exp(z - max) ----
  var bv = -FLT_MAX;
  var bi = NONE;
  for (var i = lid; i < V; i += WG) {
    if (allowed(i)) {
      let v = z(i);
      if (better(v, i, bv, bi)) { bv = v; bi = i; }
    }
  }
  let top = reduceBest(bv, bi, lid);
  let m = bitcast<f32>(top.x);
  var s = 0.0;
  for (var i = lid; i < V; i += WG) {
    if (allowed(i)) { s += exp(z(i) - m); }
  }
  redV[lid] = s;
  for (var st = WG / 2u; st > 0u; st >>= 1u) {
    workgroupBarrier();
    if (lid < st) { redV[lid] = redV[lid] + redV[lid + st]; }
  }
  let lse = m + log(workgroupUniformLoad(&redV[0]));
  workgroupBarrier();
  if (lid == 0u) {
    let t = token[0];
    out[0] = t;
    out[1] = bitcast<u32>(select(-FLT_MAX, z(t) - lse, allowed(t)));
  }
  // ---- top k: each round takes the best token ranked below the previous round's ----
  var pv = m;
  var pi = top.y;
  for (var r = 0u; r < p.k; r++) {
    if (r > 0u) {
      bv = -FLT_MAX;
      bi = NONE;
      if (pi != NONE) {
        for (var i = lid; i < V; i += WG) {
          if (allowed(i)) {
            let v = z(i);
            if ((v < pv || (v == pv && i > pi)) && better(v, i, bv, bi)) { bv = v; bi = i; }
          }
        }
      }
      let w = reduceBest(bv, bi, lid);
      pv = bitcast<f32>(w.x);
      pi = w.y;
    }
    if (lid == 0u) {
      out[2u + 2u * r] = pi;
      out[3u + 2u * r] = bitcast<u32>(pv - lse);
    }
  }
}
