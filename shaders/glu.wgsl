// glu: gated MLP activation.  out[r, i] = act(gu[r, i]) * gu[r, inter + i]
// act = SiLU (ACT = 0, SwiGLU) or tanh-approximated GELU (ACT = 1, Gemma's GeGLU).
// Layout: gu f32 [rows, 2 * inter] (gate | up); out f32 [rows, inter].
// Dispatch: ceil(rows * inter / WG) workgroups (folded into x, y).
struct Params { rows: u32, inter: u32, _p0: u32, _p1: u32 }
override WG: u32 = 256;
override ACT: u32 = 0u;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gu: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn act(x: f32) -> f32 {
  if (ACT == 0u) { return x / (1.0 + exp(-x)); }
  let c = 0.7978845608028654; // sqrt(2 / pi)
  return 0.5 * x * (1.0 + tanh(c * (x + 0.044715 * x * x * x)));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.inter) { return; }
  let r = i / p.inter;
  let c = i % p.inter;
  out[i] = act(gu[r * 2u * p.inter + c]) * gu[r * 2u * p.inter + p.inter + c];
}
