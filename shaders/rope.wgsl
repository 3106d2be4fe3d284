// rope: rotate-half RoPE in place on `heads` heads of each row, with an optional per-head
// RMSNorm first (Qwen3 / Gemma 3 q_norm):  (x1, x2) -> (x1 cos a - x2 sin a, x2 cos a + x1 sin a),
// cos a, sin a from the table row of position startPos + r; x1 = x[i], x2 = x[i + headDim/2].
// Table: f32 [positions, headDim], row = [cos(a_0..a_{d/2-1}) | sin(...)] (made on the CPU).
// Layout: x f32 rows of rowStride; head h of row r at r*rowStride + colOffset + h*headDim.
// Dispatch: ceil(rows * heads / WG) workgroups; one invocation per (row, head).
struct Params { rows: u32, rowStride: u32, colOffset: u32, heads: u32, headDim: u32, startPos: u32, hasNorm: u32, eps: f32 }
override WG: u32 = 64;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ropeTable: array<f32>;
@group(0) @binding(2) var<storage, read> normGain: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.heads) { return; }
  let r = i / p.heads;
  let h = i % p.heads;
  let base = r * p.rowStride + p.colOffset + h * p.headDim;
  let half = p.headDim / 2u;
  if (p.hasNorm != 0u) {
    var ss = 0.0;
    for (var d = 0u; d < p.headDim; d++) { let v = x[base + d]; ss += v * v; }
    let inv = inverseSqrt(ss / f32(p.headDim) + p.eps);
    for (var d = 0u; d < p.headDim; d++) { x[base + d] = x[base + d] * inv * normGain[d]; }
  }
  let t0 = (p.startPos + r) * p.headDim;
  for (var d = 0u; d < half; d++) {
    let c = ropeTable[t0 + d];
    let s = ropeTable[t0 + half + d];
    let x1 = x[base + d];
    let x2 = x[base + d + half];
    x[base + d] = x1 * c - x2 * s;
    x[base + d + half] = x2 * c + x1 * s;
  }
}
