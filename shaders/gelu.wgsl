// gelu: in place, one of two forms chosen by the EXACT override:
//   EXACT = false: x[i] = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (HF gelu_pytorch_tanh);
//     the tanh argument is clamped to +-15 (tanh is +-1 there in f32) so no backend's
//     exp-based tanh overflows to NaN.
//   EXACT = true:  x[i] = 0.5 x (1 + erf(x / sqrt 2))  (torch nn.GELU(), Qwen3-VL's patch
//     mergers). WGSL has no erf: Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
// Layout: x f32 [n]. Dispatch: ceil(n / WG) workgroups (folded into x, y).
struct Params { n: u32, _p0: u32, _p1: u32, _p2: u32 }
override WG: u32 = 256;
override EXACT: bool = false;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

fn erf_as(z: f32) -> f32 {
  let a = abs(z);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(z) * (1.0 - poly * exp(-a * a));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let v = x[i];
  if (EXACT) {
    x[i] = 0.5 * v * (1.0 + erf_as(v * 0.7071067811865476));
    return;
  }
  let t = clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), -15.0, 15.0);
  x[i] = 0.5 * v * (1.0 + tanh(t));
}
