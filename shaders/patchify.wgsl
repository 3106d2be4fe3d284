// patchify (im2col for a stride = kernel = patch convolution): every patch becomes one row,
// so the patch embedding is a plain GEMM with the conv weight viewed as [D, C*patch*patch].
//   out[t*n*n + py*n + px, (c*patch + ky)*patch + kx] = pixels[t, c, py*patch + ky, px*patch + kx]
// with n = size / patch patches per side (params: side = size, ps = patch; `patch` is a WGSL reserved word).
// Layout: pixels f32 [tiles, C, size, size]; out f32 [tiles * n * n, C * patch * patch].
// Dispatch: ceil(total / WG) workgroups (folded into x, y), one invocation per output element.
struct Params { tiles: u32, channels: u32, side: u32, ps: u32 }
override WG: u32 = 256;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pixels: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let n = p.side / p.ps;
  let cols = p.channels * p.ps * p.ps;
  if (i >= p.tiles * n * n * cols) { return; }
  let row = i / cols;
  let col = i % cols;
  let t = row / (n * n);
  let py = (row % (n * n)) / n;
  let px = row % n;
  let c = col / (p.ps * p.ps);
  let ky = (col / p.ps) % p.ps;
  let kx = col % p.ps;
  out[i] = pixels[((t * p.channels + c) * p.side + py * p.ps + ky) * p.side + px * p.ps + kx];
}
