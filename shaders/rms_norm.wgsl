// rms_norm: out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * (hasGain ? gain : 1)
// Layout: x, out f32 [rows, dim]; gain f32 [dim]. Entry `main` reads x and writes out;
// entry `inplace` normalizes out in place (WebGPU forbids binding one buffer twice).
// Dispatch: one workgroup of WG invocations per row (rows folded into x, y).
struct Params { rows: u32, dim: u32, eps: f32, hasGain: u32 }
override WG: u32 = 64;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gain: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<f32, WG>;

fn rowIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }

fn reduce(lid: u32, v: f32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { partial[lid] = partial[lid] + partial[lid + s]; }
    workgroupBarrier();
  }
  return partial[0];
}

fn g(i: u32) -> f32 { if (p.hasGain != 0u) { return gain[i]; } return 1.0; }

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = rowIndex(wid, nwg);
  if (r >= p.rows) { return; }
  let base = r * p.dim;
  var ss = 0.0;
  for (var i = lid; i < p.dim; i += WG) { let v = x[base + i]; ss += v * v; }
  let inv = inverseSqrt(reduce(lid, ss) / f32(p.dim) + p.eps);
  for (var i = lid; i < p.dim; i += WG) { out[base + i] = x[base + i] * inv * g(i); }
}

@compute @workgroup_size(WG)
fn inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = rowIndex(wid, nwg);
  if (r >= p.rows) { return; }
  let base = r * p.dim;
  var ss = 0.0;
  for (var i = lid; i < p.dim; i += WG) { let v = out[base + i]; ss += v * v; }
  let inv = inverseSqrt(reduce(lid, ss) / f32(p.dim) + p.eps);
  for (var i = lid; i < p.dim; i += WG) { out[base + i] = out[base + i] * inv * g(i); }
}
