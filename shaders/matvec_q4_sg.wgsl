// matvec_q4_sg: GPU-shaped GEMV over int4 weights (decode) reduced with subgroupAdd; needs the 'subgroups' feature.
// Same contract, Params and packed layout as matvec_q4_wg.wgsl (W read as array<vec4<u32>>: row n's group g is W[n*G + g]).
// A workgroup of WG invocations covers BLOCKS row blocks of 4 rows; each subgroup (invocations li / subgroup_size,
// the layout of 1-D workgroups on every driver; the load-time probe checks each variant's result before using it)
// takes blocks in turn, its lanes stride along K one group (16 bytes of a row) at a time and one subgroupAdd of
// the 4 rows' partials ends the block: no workgroup memory, no barrier.
// Dispatch grid: (ceil(N / (4 * BLOCKS)), M, 1); defaults WG = 64, BLOCKS = 4 (16 rows per workgroup).
enable subgroups;
diagnostic(off, subgroup_uniformity);
struct Params { M: u32, N: u32, K: u32, xOffset: u32, yOffset: u32, accumulate: u32, hasBias: u32, _pad: u32, scalesOffset: u32, minsOffset: u32, gainsOffset: u32, gainRows: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> W: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
override WG: u32 = 64u;
override BLOCKS: u32 = 4u;
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

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_invocation_id) sl: u32, @builtin(subgroup_size) ss: u32) {
  // A subgroup wider than the workgroup holds only WG lanes.
  let lanes = min(ss, WG);
  let sg = li / lanes;
  let groups = (WG + lanes - 1u) / lanes;
  let m = wid.y;
  let K4 = p.K / 4u;
  let G = (p.K + 31u) / 32u;
  let xr = p.xOffset / 4u + m * K4;
  let asym = p.minsOffset != 0u;
  for (var b = sg; b < BLOCKS; b += groups) {
    let n0 = (wid.x * BLOCKS + b) * 4u;
    if (n0 >= p.N || m >= p.M) { break; }
    let rows = min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.N - 1u));
    var acc = vec4<f32>();
    for (var g = sl; g < G; g += lanes) {
      var x: array<vec4<f32>, 8>;
      var xs = vec4<f32>();
      for (var i = 0u; i < 8u; i++) {
        let k4 = g * 8u + i;
        x[i] = select(vec4<f32>(), X[xr + min(k4, K4 - 1u)], k4 < K4);
        xs += x[i];
      }
      let xsum = dot(xs, vec4<f32>(1.0));
      for (var r = 0u; r < 4u; r++) {
        let sgi = rows[r] * G + g;
        let s = bitcast<f32>(word(p.scalesOffset + sgi));
        let o = select(-8.0 * s, bitcast<f32>(word(p.minsOffset + sgi)), asym);
        acc[r] += fma(s, groupDot(W[sgi], x), o * xsum);
      }
    }
    let t = subgroupAdd(acc);
    if (sl < 4u) {
      let n = n0 + sl;
      if (n < p.N) {
        let yi = p.yOffset + m * p.N + n;
        var v = t[sl];
        if (p.accumulate != 0u) { v += Y[yi]; }
        if (p.hasBias != 0u) { v += B[n]; }
        Y[yi] = v;
      }
    }
  }
}
