// softcap: final-logit soft-capping in place.  x[i] = cap * tanh(x[i] / cap)
// Dispatch: ceil(n / WG) workgroups (folded into x, y).
struct Params { n: u32, cap: f32, _p0: u32, _p1: u32 }
override WG: u32 = 256;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.n) { x[i] = p.cap * tanh(x[i] / p.cap); }
}
