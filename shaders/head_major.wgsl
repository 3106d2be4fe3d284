// head_major: moves attention operands between token-major and head-major layouts.
// Token-major: row r, head h, element d at tmOffset + r*tmStride + h*headDim + d (Q inside the
// fused QKV rows, or the attention output [rows, heads*headDim]). Head-major: [heads, rows,
// headDim], each head's rows contiguous, so a head is a plain GEMM operand (src/kernels/attention.ts).
// toHeadMajor = 1 copies token-major src -> head-major dst; 0 copies head-major src -> token-major dst.
// Params are in vec4 units (headDim, tmStride and tmOffset are multiples of 4).
// Dispatch: one invocation per vec4 of the head-major side, ceil(rows*heads*hd4 / WG) workgroups folded into (x, y).
struct Params { rows: u32, heads: u32, hd4: u32, tmStride4: u32, tmOffset4: u32, toHeadMajor: u32, _p0: u32, _p1: u32 }
override WG: u32 = 64;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.heads * p.hd4) { return; }
  let d = i % p.hd4;
  let r = (i / p.hd4) % p.rows;
  let h = i / (p.hd4 * p.rows);
  let t = p.tmOffset4 + r * p.tmStride4 + h * p.hd4 + d;
  if (p.toHeadMajor != 0u) { dst[i] = src[t]; } else { dst[t] = src[i]; }
}
