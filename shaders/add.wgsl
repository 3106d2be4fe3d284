// add: in place.  out[outOffset + i] += a[aOffset + i], i < n (residual adds; DeepStack's image
// rows: a run of rows added at a row offset). Offsets in elements.
// Dispatch: ceil(n / WG) workgroups (folded into x, y).
struct Params { n: u32, outOffset: u32, aOffset: u32, _p2: u32 }
override WG: u32 = 256;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < p.n) { out[p.outOffset + i] = out[p.outOffset + i] + a[p.aOffset + i]; }
}
