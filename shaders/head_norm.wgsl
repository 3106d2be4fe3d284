// head_norm: per-head RMSNorm in place, x_h = x_h / sqrt(mean(x_h^2) + eps) * gain (gain = 1
// when HAS_GAIN is 0: Gemma 4's unscaled v_norm).
// Layout: x f32 rows of rowStride; head h of row r at r*rowStride + colOffset + h*headDim;
// gain f32 [headDim] (a 1-element dummy without one).
// Dispatch: ceil(rows * heads / WG) workgroups (folded into x, y); one invocation per (row, head).
struct Params { rows: u32, rowStride: u32, colOffset: u32, heads: u32, headDim: u32, eps: f32, _p0: u32, _p1: u32 }
override WG: u32 = 64;
override HAS_GAIN: u32 = 0u;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gain: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.heads) { return; }
  let base = (i / p.heads) * p.rowStride + p.colOffset + (i % p.heads) * p.headDim;
  var ss = 0.0;
  for (var d = 0u; d < p.headDim; d++) { let v = x[base + d]; ss += v * v; }
  let inv = inverseSqrt(ss / f32(p.headDim) + p.eps);
  for (var d = 0u; d < p.headDim; d++) {
    var g = 1.0;
    if (HAS_GAIN != 0u) { g = gain[d]; }
    x[base + d] = x[base + d] * inv * g;
  }
}
