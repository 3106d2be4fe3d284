// gate_mul: in place, the activation of a gate times a strided slice of another tensor
// (Gemma 4's per-layer input gate): gate[r, i] = act(gate[r, i]) * other[r * otherStride + otherOffset + i], i < dim.
// act = SiLU (ACT = 0) or tanh-approximated GELU (ACT = 1).
// Layout: gate f32 [rows, dim] (read and written); other f32 rows of otherStride.
// Dispatch: ceil(rows * dim / WG) workgroups (folded into x, y).
struct Params { rows: u32, dim: u32, otherStride: u32, otherOffset: u32 }
override WG: u32 = 256;
override ACT: u32 = 1u;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> other: array<f32>;
@group(0) @binding(2) var<storage, read_write> gate: array<f32>;

fn act(x: f32) -> f32 {
  if (ACT == 0u) { return x / (1.0 + exp(-x)); }
  let c = 0.7978845608028654; // sqrt(2 / pi)
  // The gate sees the un-normed hidden state: clamp tanh's argument (tanh(15) is 1 in f32), as
  // SwiftShader's tanh of a large argument is inf / inf = NaN.
  return 0.5 * x * (1.0 + tanh(clamp(c * (x + 0.044715 * x * x * x), -15.0, 15.0)));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.dim) { return; }
  let r = i / p.dim;
  gate[i] = act(gate[i]) * other[r * p.otherStride + p.otherOffset + i % p.dim];
}
