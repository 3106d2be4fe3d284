// embed_f16: gathers embedding rows from an f16 table (src/core/half.ts: element 2i in the low half of word i).
// out[r, c] = half(table)[ids[r] - idBase, c] * scale  for ids in [idBase, idBase + idCount); other rows untouched.
// Layout: ids u32 [rows]; table u32 halves [idCount * hidden / 2] (hidden even); out f32 [rows, hidden].
// Dispatch: ceil(rows * hidden / WG) workgroups (folded into x, y).
struct Params { rows: u32, hidden: u32, scale: f32, idBase: u32, idCount: u32, _pad0: u32, _pad1: u32, _pad2: u32 }
override WG: u32 = 256;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.hidden) { return; }
  let r = i / p.hidden;
  let c = i % p.hidden;
  let id = ids[r];
  if (id < p.idBase || id - p.idBase >= p.idCount) { return; }
  let e = (id - p.idBase) * p.hidden + c;
  out[i] = unpack2x16float(table[e / 2u])[e % 2u] * p.scale;
}
