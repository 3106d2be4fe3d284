// layer_norm: out[r, :] = (x[r, :] - mean) / sqrt(var + eps) * gain + bias  (LayerNorm with bias)
// mean and (biased) variance per row over `dim`; two reductions (mean, then centred squares).
// Layout: x, out f32 [rows, dim]; gain, bias f32 [dim]. out must not alias x.
// Dispatch: one workgroup of WG invocations per row (rows folded into x, y).
struct Params { rows: u32, dim: u32, eps: f32, _p0: u32 }
override WG: u32 = 64;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gain: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, WG>;

fn reduce(lid: u32, v: f32) -> f32 {
  workgroupBarrier();
  partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { partial[lid] = partial[lid] + partial[lid + s]; }
    workgroupBarrier();
  }
  return partial[0];
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; }
  let base = r * p.dim;
  var s = 0.0;
  for (var i = lid; i < p.dim; i += WG) { s += x[base + i]; }
  let mean = reduce(lid, s) / f32(p.dim);
  var ss = 0.0;
  for (var i = lid; i < p.dim; i += WG) { let d = x[base + i] - mean; ss += d * d; }
  let inv = inverseSqrt(reduce(lid, ss) / f32(p.dim) + p.eps);
  for (var i = lid; i < p.dim; i += WG) { out[base + i] = (x[base + i] - mean) * inv * gain[i] + bias[i]; }
}
