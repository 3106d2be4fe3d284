// pixel_shuffle (Idefics3 connector): groups each s x s block of patch features into one row,
//   out[t, hb*(n/s) + wb, (i*s + j)*D + d] = x[t, (hb*s + i)*n + wb*s + j, d]
// (what HF's view/permute/reshape sequence computes), n = patches per side, s = scale.
// Layout: x f32 [tiles, n*n, D]; out f32 [tiles, (n/s)^2, s*s*D].
// Dispatch: ceil(total / WG) workgroups (folded into x, y), one invocation per output element.
struct Params { tiles: u32, side: u32, dim: u32, scale: u32 }
override WG: u32 = 256;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let s = p.scale;
  let m = p.side / s;
  let width = s * s * p.dim;
  if (i >= p.tiles * m * m * width) { return; }
  let row = i / width;
  let e = i % width;
  let t = row / (m * m);
  let hb = (row % (m * m)) / m;
  let wb = row % m;
  let blk = e / p.dim;
  let d = e % p.dim;
  let ii = blk / s;
  let jj = blk % s;
  out[i] = x[(t * p.side * p.side + (hb * s + ii) * p.side + wb * s + jj) * p.dim + d];
}
