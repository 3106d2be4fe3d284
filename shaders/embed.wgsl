// embed: gathers embedding rows.  out[r, i] = table[ids[r], i] * scale
// Layout: ids u32 [rows]; table f32 [vocab, hidden]; out f32 [rows, hidden].
// Dispatch: ceil(rows * hidden / WG) workgroups (folded into x, y).
struct Params { rows: u32, hidden: u32, scale: f32, _pad: u32 }
override WG: u32 = 256;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.hidden) { return; }
  let r = i / p.hidden;
  let c = i % p.hidden;
  out[i] = table[ids[r] * p.hidden + c] * p.scale;
}
