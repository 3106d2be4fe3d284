// matvec_q4_norm: RMSNorm folded into the load of a q4 GEMV (decode: the input norm before QKV, the
// MLP norm before gate|up), so the normed row is never written to memory and read back.
// Y[m,n] = sum_k (X[m,k] * inv_m * gain[k]) * dequant(W)[n,k] (+Y_old if accumulate) (+B[n] if hasBias),
// inv_m = 1 / sqrt(mean_k X[m,k]^2 + eps); gain = 1 when hasGain = 0. f32 math, any M (one row per grid y).
// X f32 [M, K] from xOffset (vec4s); gain f32 [K]; W packed as src/core/quant.ts, read as array<vec4<u32>>
// (row n's group g = W[n*G + g]; scales / offsets are u32 words at scalesOffset / minsOffset, minsOffset = 0:
// symmetric); no column gains. K % 4 == 0, xOffset % 4 == 0.
// Each workgroup first computes inv_m once (its WG lanes stride over the row's vec4s, workgroup-memory tree),
// then runs matvec_q4_wg's loop: WG / TPR blocks of 4 rows, the TPR lanes of a block striding along K one
// group at a time (a row's words read contiguously), lane partials summed by a tree inside the block.
// WG and TPR are powers of two, TPR <= WG (defaults 64, 16: 16 rows per workgroup).
// Dispatch grid: (ceil(N / (4 * WG / TPR)), M, 1).
struct Params { M: u32, N: u32, K: u32, xOffset: u32, yOffset: u32, accumulate: u32, hasBias: u32, hasGain: u32, scalesOffset: u32, minsOffset: u32, eps: f32, _p: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> W: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
@group(0) @binding(5) var<storage, read> Gain: array<vec4<f32>>;
override WG: u32 = 64u;
override TPR: u32 = 16u;
// Nibble i of a half-word stays in place: q * 16^i (exact in f32); SC undoes the 16^i in the scale.
const NIB = vec4<u32>(0xFu, 0xF0u, 0xF00u, 0xF000u);
const SC = vec4<f32>(1.0, 0.0625, 0.00390625, 0.000244140625);
fn nib(u: u32) -> vec4<f32> { return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(u) & NIB)); }
fn word(i: u32) -> u32 { return W[i >> 2u][i & 3u]; }
fn groupDot(q: vec4<u32>, x: array<vec4<f32>, 8>) -> f32 {
  var a = fma(x[0], nib(q.x), x[1] * nib(q.x >> 16u));
  a = fma(x[2], nib(q.y), fma(x[3], nib(q.y >> 16u), a));
  a = fma(x[4], nib(q.z), fma(x[5], nib(q.z >> 16u), a));
  a = fma(x[6], nib(q.w), fma(x[7], nib(q.w >> 16u), a));
  return dot(a, SC);
}
var<workgroup> red: array<vec4<f32>, WG>;
var<workgroup> ssq: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let lane = li % TPR;
  let blk = li / TPR;
  let n0 = (wid.x * (WG / TPR) + blk) * 4u;
  let m = wid.y;
  let K4 = p.K / 4u;
  let G = (p.K + 31u) / 32u;
  let xr = p.xOffset / 4u + m * K4;
  let asym = p.minsOffset != 0u;
  // The row's rms, once per workgroup.
  var ss = 0.0;
  for (var i = li; i < K4; i += WG) { let v = X[xr + i]; ss += dot(v, v); }
  ssq[li] = ss;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (li < stride) { ssq[li] += ssq[li + stride]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(ssq[0] / f32(p.K) + p.eps);
  let rows = min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.N - 1u));
  var acc = vec4<f32>();
  if (n0 < p.N) {
    for (var g = lane; g < G; g += TPR) {
      var x: array<vec4<f32>, 8>;
      var xs = vec4<f32>();
      for (var i = 0u; i < 8u; i++) {
        // X past K (the last group's tail) is zero: the padding nibbles never meet real X.
        let k4 = g * 8u + i;
        let kc = min(k4, K4 - 1u);
        var v = X[xr + kc] * inv;
        if (p.hasGain != 0u) { v *= Gain[kc]; }
        x[i] = select(vec4<f32>(), v, k4 < K4);
        xs += x[i];
      }
      let xsum = dot(xs, vec4<f32>(1.0));
      for (var r = 0u; r < 4u; r++) {
        let sg = rows[r] * G + g;
        let s = bitcast<f32>(word(p.scalesOffset + sg));
        let o = select(-8.0 * s, bitcast<f32>(word(p.minsOffset + sg)), asym);
        acc[r] += fma(s, groupDot(W[sg], x), o * xsum);
      }
    }
  }
  red[li] = acc;
  workgroupBarrier();
  for (var stride = TPR / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) { red[li] += red[li + stride]; }
    workgroupBarrier();
  }
  if (lane < 4u) {
    let n = n0 + lane;
    if (n < p.N && m < p.M) {
      let yi = p.yOffset + m * p.N + n;
      var v = red[blk * TPR][lane];
      if (p.accumulate != 0u) { v += Y[yi]; }
      if (p.hasBias != 0u) { v += B[n]; }
      Y[yi] = v;
    }
  }
}
