// attention_prefill: causal multi-head attention (GQA) for `rows` query tokens at positions
// startPos.., reading K/V from one layer's paged cache (keys 0..pos, or the last `window`).
// Each invocation takes R = 8 consecutive query rows of one head (two vec4 lanes of row
// state, A = rows 0..3, B = rows 4..7), so every K/V vector it loads serves eight queries
// (loads dominate on SwiftShader: 8 rows measured ~1.4x faster than 4); online softmax per
// row, with causal and window masks per row. HD4 = headDim / 4 is an override (constant trip
// counts). With hasKeyEnd, row r also attends keys below keyEnd[r] (bidirectional spans such as
// an image's tokens; still within the window).
// Layout: q f32 rows of qStride, head h at h*headDim; out f32 [rows, heads*headDim];
// pageTable u32; kCache/vCache [pages, pageSize, kvHeads, headDim], f32 or (KV_F16) f16 pairs in u32 words (kv_write.wgsl); keyEnd u32 [rows]. headDim % 4 == 0, <= 256.
// Dispatch: ceil(ceil(rows / 8) * heads / WG) workgroups (folded into x, y).
struct Params { rows: u32, startPos: u32, numHeads: u32, numKvHeads: u32, headDim: u32, qStride: u32, pageSize: u32, window: u32, scale: f32, hasKeyEnd: u32, _p1: u32, _p2: u32 }
override WG: u32 = 16;
override HD4: u32 = 16u;
const R: u32 = 8u;
const MAX_D4: u32 = 64u;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> pageTable: array<u32>;
@group(0) @binding(3) var<storage, read> kCache: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> vCache: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> keyEnd: array<u32>;

// loadK / loadV: shaders/kv_read.wgsl, put in front of this file.

// Keys each of four rows may see: causal (t <= pos) or below the row's key end; within the window.
fn mask(t: u32, pos0: u32, end: vec4<u32>) -> vec4<bool> {
  let tp = vec4<f32>(f32(t));
  let pos = vec4<f32>(f32(pos0), f32(pos0 + 1u), f32(pos0 + 2u), f32(pos0 + 3u));
  var valid = (tp <= pos) | (vec4<u32>(t) < end);
  if (p.window > 0u) { valid = valid & (tp + vec4<f32>(f32(p.window)) > pos); }
  return valid;
}

fn keyEnds(r: u32, last: u32) -> vec4<u32> {
  if (p.hasKeyEnd == 0u) { return vec4<u32>(0u); }
  return vec4<u32>(keyEnd[min(r, last)], keyEnd[min(r + 1u, last)], keyEnd[min(r + 2u, last)], keyEnd[min(r + 3u, last)]);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let blocks = (p.rows + R - 1u) / R;
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= blocks * p.numHeads) { return; }
  let h = i / blocks;
  let r0 = (i % blocks) * R;
  let kvh = h / (p.numHeads / p.numKvHeads);
  var q0: array<vec4<f32>, MAX_D4>; var q1: array<vec4<f32>, MAX_D4>; var q2: array<vec4<f32>, MAX_D4>; var q3: array<vec4<f32>, MAX_D4>;
  var q4: array<vec4<f32>, MAX_D4>; var q5: array<vec4<f32>, MAX_D4>; var q6: array<vec4<f32>, MAX_D4>; var q7: array<vec4<f32>, MAX_D4>;
  var a0: array<vec4<f32>, MAX_D4>; var a1: array<vec4<f32>, MAX_D4>; var a2: array<vec4<f32>, MAX_D4>; var a3: array<vec4<f32>, MAX_D4>;
  var a4: array<vec4<f32>, MAX_D4>; var a5: array<vec4<f32>, MAX_D4>; var a6: array<vec4<f32>, MAX_D4>; var a7: array<vec4<f32>, MAX_D4>;
  let last = min(r0 + 7u, p.rows - 1u);
  let hb = h * p.headDim;
  let b0 = (r0 * p.qStride + hb) / 4u;
  let b1 = (min(r0 + 1u, last) * p.qStride + hb) / 4u;
  let b2 = (min(r0 + 2u, last) * p.qStride + hb) / 4u;
  let b3 = (min(r0 + 3u, last) * p.qStride + hb) / 4u;
  let b4 = (min(r0 + 4u, last) * p.qStride + hb) / 4u;
  let b5 = (min(r0 + 5u, last) * p.qStride + hb) / 4u;
  let b6 = (min(r0 + 6u, last) * p.qStride + hb) / 4u;
  let b7 = (last * p.qStride + hb) / 4u;
  for (var d = 0u; d < HD4; d++) {
    q0[d] = q[b0 + d] * p.scale; q1[d] = q[b1 + d] * p.scale; q2[d] = q[b2 + d] * p.scale; q3[d] = q[b3 + d] * p.scale;
    q4[d] = q[b4 + d] * p.scale; q5[d] = q[b5 + d] * p.scale; q6[d] = q[b6 + d] * p.scale; q7[d] = q[b7 + d] * p.scale;
    a0[d] = vec4<f32>(0.0); a1[d] = vec4<f32>(0.0); a2[d] = vec4<f32>(0.0); a3[d] = vec4<f32>(0.0);
    a4[d] = vec4<f32>(0.0); a5[d] = vec4<f32>(0.0); a6[d] = vec4<f32>(0.0); a7[d] = vec4<f32>(0.0);
  }
  let pos0 = p.startPos + r0;
  let posL = p.startPos + last;
  var mA = vec4<f32>(-3.0e38); var mB = vec4<f32>(-3.0e38);
  var lA = vec4<f32>(0.0); var lB = vec4<f32>(0.0);
  var first = 0u;
  if (p.window > 0u && pos0 + 1u > p.window) { first = pos0 + 1u - p.window; }
  let endA = keyEnds(r0, last); let endB = keyEnds(r0 + 4u, last);
  let lastKey = max(posL + 1u, max(max(endA.x, endA.y), max(max(endA.z, endA.w), max(max(endB.x, endB.y), max(endB.z, endB.w))))) - 1u;
  for (var t = first; t <= lastKey; t++) {
    let base = ((pageTable[t / p.pageSize] * p.pageSize + t % p.pageSize) * p.numKvHeads + kvh) * HD4;
    var sA = vec4<f32>(0.0); var sB = vec4<f32>(0.0);
    for (var d = 0u; d < HD4; d++) {
      let k = loadK(base + d);
      sA += vec4<f32>(dot(q0[d], k), dot(q1[d], k), dot(q2[d], k), dot(q3[d], k));
      sB += vec4<f32>(dot(q4[d], k), dot(q5[d], k), dot(q6[d], k), dot(q7[d], k));
    }
    let vA = mask(t, pos0, endA); let vB = mask(t, pos0 + 4u, endB);
    sA = select(vec4<f32>(-3.0e38), sA, vA); sB = select(vec4<f32>(-3.0e38), sB, vB);
    let nA = max(mA, sA); let nB = max(mB, sB);
    let cA = exp(mA - nA); let cB = exp(mB - nB);
    let wA = select(vec4<f32>(0.0), exp(sA - nA), vA); let wB = select(vec4<f32>(0.0), exp(sB - nB), vB);
    lA = lA * cA + wA; lB = lB * cB + wB; mA = nA; mB = nB;
    for (var d = 0u; d < HD4; d++) {
      let v = loadV(base + d);
      a0[d] = a0[d] * cA.x + wA.x * v; a1[d] = a1[d] * cA.y + wA.y * v; a2[d] = a2[d] * cA.z + wA.z * v; a3[d] = a3[d] * cA.w + wA.w * v;
      a4[d] = a4[d] * cB.x + wB.x * v; a5[d] = a5[d] * cB.y + wB.y * v; a6[d] = a6[d] * cB.z + wB.z * v; a7[d] = a7[d] * cB.w + wB.w * v;
    }
  }
  let iA = 1.0 / lA; let iB = 1.0 / lB;
  let o = p.numHeads * HD4;
  for (var d = 0u; d < HD4; d++) {
    let c = h * HD4 + d;
    out[r0 * o + c] = a0[d] * iA.x;
    if (r0 + 1u <= last) { out[(r0 + 1u) * o + c] = a1[d] * iA.y; }
    if (r0 + 2u <= last) { out[(r0 + 2u) * o + c] = a2[d] * iA.z; }
    if (r0 + 3u <= last) { out[(r0 + 3u) * o + c] = a3[d] * iA.w; }
    if (r0 + 4u <= last) { out[(r0 + 4u) * o + c] = a4[d] * iB.x; }
    if (r0 + 5u <= last) { out[(r0 + 5u) * o + c] = a5[d] * iB.y; }
    if (r0 + 6u <= last) { out[(r0 + 6u) * o + c] = a6[d] * iB.z; }
    if (r0 + 7u <= last) { out[(r0 + 7u) * o + c] = a7[d] * iB.w; }
  }
}
