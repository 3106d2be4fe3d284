// attention_prefill: causal multi-head attention (GQA) for `rows` query tokens at positions
// startPos.., reading K/V from one layer's paged cache (keys 0..pos, or the last `window`).
// Each invocation takes R = 4 consecutive query rows of one head, so every K/V vector it
// loads serves four queries (loads dominate on SwiftShader); online softmax per row, with
// causal and window masks per row. HD4 = headDim / 4 is an override (constant trip counts).
// Layout: q f32 rows of qStride, head h at h*headDim; out f32 [rows, heads*headDim];
// pageTable u32; kCache/vCache f32 [pages, pageSize, kvHeads, headDim]. headDim % 4 == 0, <= 256.
// Dispatch: ceil(ceil(rows / 4) * heads / WG) workgroups (folded into x, y).
struct Params { rows: u32, startPos: u32, numHeads: u32, numKvHeads: u32, headDim: u32, qStride: u32, pageSize: u32, window: u32, scale: f32, _p0: u32, _p1: u32, _p2: u32 }
override WG: u32 = 16;
override HD4: u32 = 16u;
const R: u32 = 4u;
const MAX_D4: u32 = 64u;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> pageTable: array<u32>;
@group(0) @binding(3) var<storage, read> kCache: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> vCache: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let blocks = (p.rows + R - 1u) / R;
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= blocks * p.numHeads) { return; }
  let h = i / blocks;
  let r0 = (i % blocks) * R;
  let kvh = h / (p.numHeads / p.numKvHeads);
  var q0: array<vec4<f32>, MAX_D4>;
  var q1: array<vec4<f32>, MAX_D4>;
  var q2: array<vec4<f32>, MAX_D4>;
  var q3: array<vec4<f32>, MAX_D4>;
  var a0: array<vec4<f32>, MAX_D4>;
  var a1: array<vec4<f32>, MAX_D4>;
  var a2: array<vec4<f32>, MAX_D4>;
  var a3: array<vec4<f32>, MAX_D4>;
  let last = min(r0 + 3u, p.rows - 1u);
  let b0 = (r0 * p.qStride + h * p.headDim) / 4u;
  let b1 = (min(r0 + 1u, last) * p.qStride + h * p.headDim) / 4u;
  let b2 = (min(r0 + 2u, last) * p.qStride + h * p.headDim) / 4u;
  let b3 = (last * p.qStride + h * p.headDim) / 4u;
  for (var d = 0u; d < HD4; d++) {
    q0[d] = q[b0 + d] * p.scale; q1[d] = q[b1 + d] * p.scale; q2[d] = q[b2 + d] * p.scale; q3[d] = q[b3 + d] * p.scale;
    a0[d] = vec4<f32>(0.0); a1[d] = vec4<f32>(0.0); a2[d] = vec4<f32>(0.0); a3[d] = vec4<f32>(0.0);
  }
  let pos0 = p.startPos + r0;
  let posL = p.startPos + last;
  var m = vec4<f32>(-3.0e38);
  var l = vec4<f32>(0.0);
  var first = 0u;
  if (p.window > 0u && pos0 + 1u > p.window) { first = pos0 + 1u - p.window; }
  for (var t = first; t <= posL; t++) {
    let base = ((pageTable[t / p.pageSize] * p.pageSize + t % p.pageSize) * p.numKvHeads + kvh) * HD4;
    var s = vec4<f32>(0.0);
    for (var d = 0u; d < HD4; d++) {
      let k = kCache[base + d];
      s += vec4<f32>(dot(q0[d], k), dot(q1[d], k), dot(q2[d], k), dot(q3[d], k));
    }
    // Causal and window masks per row.
    let tp = vec4<f32>(f32(t));
    let pos = vec4<f32>(f32(pos0), f32(pos0 + 1u), f32(pos0 + 2u), f32(pos0 + 3u));
    var valid = tp <= pos;
    if (p.window > 0u) { valid = valid & (tp + vec4<f32>(f32(p.window)) > pos); }
    s = select(vec4<f32>(-3.0e38), s, valid);
    let mNew = max(m, s);
    let corr = exp(m - mNew);
    let w = select(vec4<f32>(0.0), exp(s - mNew), valid);
    l = l * corr + w;
    m = mNew;
    for (var d = 0u; d < HD4; d++) {
      let v = vCache[base + d];
      a0[d] = a0[d] * corr.x + w.x * v; a1[d] = a1[d] * corr.y + w.y * v;
      a2[d] = a2[d] * corr.z + w.z * v; a3[d] = a3[d] * corr.w + w.w * v;
    }
  }
  let inv = 1.0 / l;
  let o = p.numHeads * HD4;
  for (var d = 0u; d < HD4; d++) {
    out[r0 * o + h * HD4 + d] = a0[d] * inv.x;
    if (r0 + 1u <= last) { out[(r0 + 1u) * o + h * HD4 + d] = a1[d] * inv.y; }
    if (r0 + 2u <= last) { out[(r0 + 2u) * o + h * HD4 + d] = a2[d] * inv.z; }
    if (r0 + 3u <= last) { out[(r0 + 3u) * o + h * HD4 + d] = a3[d] * inv.w; }
  }
}
