// attention_prefill: causal multi-head attention (GQA) for `rows` query tokens at positions
// startPos.., reading K/V from one layer's paged cache (keys 0..pos, or the last `window`).
// One invocation per (head, row) with an online softmax; consecutive invocations share a
// head so they read the same keys.
// Layout: q f32 rows of qStride, head h at h*headDim; out f32 [rows, heads*headDim];
// pageTable u32; kCache/vCache f32 [pages, pageSize, kvHeads, headDim]. headDim % 4 == 0, <= 256.
// Dispatch: ceil(heads * rows / WG) workgroups (folded into x, y).
struct Params { rows: u32, startPos: u32, numHeads: u32, numKvHeads: u32, headDim: u32, qStride: u32, pageSize: u32, window: u32, scale: f32, _p0: u32, _p1: u32, _p2: u32 }
override WG: u32 = 64;
const MAX_D4: u32 = 64u;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> pageTable: array<u32>;
@group(0) @binding(3) var<storage, read> kCache: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> vCache: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.numHeads) { return; }
  let h = i / p.rows;
  let r = i % p.rows;
  let d4 = p.headDim / 4u;
  let kvh = h / (p.numHeads / p.numKvHeads);
  let pos = p.startPos + r;
  var first = 0u;
  if (p.window > 0u && pos + 1u > p.window) { first = pos + 1u - p.window; }

  var qv: array<vec4<f32>, MAX_D4>;
  var acc: array<vec4<f32>, MAX_D4>;
  let q0 = (r * p.qStride + h * p.headDim) / 4u;
  for (var d = 0u; d < d4; d++) { qv[d] = q[q0 + d] * p.scale; acc[d] = vec4<f32>(0.0); }
  var m = -3.0e38;
  var l = 0.0;
  for (var t = first; t <= pos; t++) {
    let base = ((pageTable[t / p.pageSize] * p.pageSize + t % p.pageSize) * p.numKvHeads + kvh) * d4;
    var s = 0.0;
    for (var d = 0u; d < d4; d++) { s += dot(qv[d], kCache[base + d]); }
    let mNew = max(m, s);
    let corr = exp(m - mNew);
    let w = exp(s - mNew);
    l = l * corr + w;
    for (var d = 0u; d < d4; d++) { acc[d] = acc[d] * corr + w * vCache[base + d]; }
    m = mNew;
  }
  let o0 = (r * p.numHeads + h) * d4;
  let inv = 1.0 / l;
  for (var d = 0u; d < d4; d++) { out[o0 + d] = acc[d] * inv; }
}
