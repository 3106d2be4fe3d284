// scale: multiplies a tensor by one number in place.  x[i] = x[i] * s  (Gemma 4's layer_scalar)
// Dispatch: ceil(n / WG) workgroups (folded into x, y).
struct Params { n: u32, s: f32, _p0: u32, _p1: u32 }
override WG: u32 = 256;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.n) { x[i] = x[i] * p.s; }
}
