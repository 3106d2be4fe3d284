// gelu: x[i] = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  in place (GELU, tanh approximation,
// HF gelu_pytorch_tanh). The tanh argument is clamped to +-15 (tanh is +-1 there in f32) so no
// backend's exp-based tanh overflows to NaN.
// Layout: x f32 [n]. Dispatch: ceil(n / WG) workgroups (folded into x, y).
struct Params { n: u32, _p0: u32, _p1: u32, _p2: u32 }
override WG: u32 = 256;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let v = x[i];
  let t = clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), -15.0, 15.0);
  x[i] = 0.5 * v * (1.0 + tanh(t));
}
