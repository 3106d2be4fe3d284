// avg_pool (Gemma 3's projector): the mean of each k x k block of patch features,
//   out[t, pr*(n/k) + pc, d] = (1/k^2) sum_{i,j<k} x[t, (pr*k + i)*n + pc*k + j, d]
// (HF's AvgPool2d(kernel=stride=k) over the patches laid out [D, n, n]), n = patches per side.
// Layout: x f32 [tiles, n*n, D]; out f32 [tiles, (n/k)^2, D].
// Dispatch: ceil(total / WG) workgroups (folded into x, y), one invocation per output element.
struct Params { tiles: u32, side: u32, dim: u32, kernel: u32 }
override WG: u32 = 256;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let k = p.kernel;
  let m = p.side / k;
  if (i >= p.tiles * m * m * p.dim) { return; }
  let d = i % p.dim;
  let row = i / p.dim;
  let t = row / (m * m);
  let pr = (row % (m * m)) / m;
  let pc = row % m;
  var acc = 0.0;
  for (var a = 0u; a < k; a++) {
    let base = (t * p.side * p.side + (pr * k + a) * p.side + pc * k) * p.dim + d;
    for (var b = 0u; b < k; b++) { acc += x[base + b * p.dim]; }
  }
  out[i] = acc / f32(k * k);
}
