// attention_full: bidirectional (non-causal) multi-head attention over contiguous Q/K/V, for
// vision towers. Rows form independent sequences of `seqLen` rows (one per image tile); each
// query attends to every key of its own sequence. Like attention_prefill, each invocation
// takes R = 8 consecutive query rows of one head (two vec4 lanes of row state, A = rows 0..3,
// B = rows 4..7) so every K/V vector loaded serves eight queries; online softmax; no
// workgroup memory (barriers are costly on software adapters). HD4 = headDim / 4 is an
// override (constant trip counts).
// Layout (in vec4 units, so headDim, stride and offsets are multiples of 4): qkv f32
// [rows, stride] with head h of Q at qOff + h*headDim, K at kOff + ..., V at vOff + ...;
// out f32 [rows, heads*headDim].
// Dispatch: ceil(sequences * ceil(seqLen / 8) * heads / WG) workgroups (folded into x, y).
struct Params { rows: u32, seqLen: u32, heads: u32, headDim: u32, stride: u32, qOff: u32, kOff: u32, vOff: u32, scale: f32, _p0: u32, _p1: u32, _p2: u32 }
override WG: u32 = 16;
override HD4: u32 = 16u;
const R: u32 = 8u;
const MAX_D4: u32 = 64u;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let blocks = (p.seqLen + R - 1u) / R;
  let seqs = p.rows / p.seqLen;
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= seqs * blocks * p.heads) { return; }
  let h = i / (seqs * blocks);
  let sb = i % (seqs * blocks);
  let base = (sb / blocks) * p.seqLen;
  let r0 = (sb % blocks) * R;
  let last = min(r0 + 7u, p.seqLen - 1u);
  let s4 = p.stride / 4u;
  let hoff = h * HD4;
  let qo = p.qOff / 4u + hoff;
  var q0: array<vec4<f32>, MAX_D4>; var q1: array<vec4<f32>, MAX_D4>; var q2: array<vec4<f32>, MAX_D4>; var q3: array<vec4<f32>, MAX_D4>;
  var q4: array<vec4<f32>, MAX_D4>; var q5: array<vec4<f32>, MAX_D4>; var q6: array<vec4<f32>, MAX_D4>; var q7: array<vec4<f32>, MAX_D4>;
  var a0: array<vec4<f32>, MAX_D4>; var a1: array<vec4<f32>, MAX_D4>; var a2: array<vec4<f32>, MAX_D4>; var a3: array<vec4<f32>, MAX_D4>;
  var a4: array<vec4<f32>, MAX_D4>; var a5: array<vec4<f32>, MAX_D4>; var a6: array<vec4<f32>, MAX_D4>; var a7: array<vec4<f32>, MAX_D4>;
  let b0 = (base + r0) * s4 + qo;
  let b1 = (base + min(r0 + 1u, last)) * s4 + qo;
  let b2 = (base + min(r0 + 2u, last)) * s4 + qo;
  let b3 = (base + min(r0 + 3u, last)) * s4 + qo;
  let b4 = (base + min(r0 + 4u, last)) * s4 + qo;
  let b5 = (base + min(r0 + 5u, last)) * s4 + qo;
  let b6 = (base + min(r0 + 6u, last)) * s4 + qo;
  let b7 = (base + last) * s4 + qo;
  for (var d = 0u; d < HD4; d++) {
    q0[d] = qkv[b0 + d] * p.scale; q1[d] = qkv[b1 + d] * p.scale; q2[d] = qkv[b2 + d] * p.scale; q3[d] = qkv[b3 + d] * p.scale;
    q4[d] = qkv[b4 + d] * p.scale; q5[d] = qkv[b5 + d] * p.scale; q6[d] = qkv[b6 + d] * p.scale; q7[d] = qkv[b7 + d] * p.scale;
    a0[d] = vec4<f32>(0.0); a1[d] = vec4<f32>(0.0); a2[d] = vec4<f32>(0.0); a3[d] = vec4<f32>(0.0);
    a4[d] = vec4<f32>(0.0); a5[d] = vec4<f32>(0.0); a6[d] = vec4<f32>(0.0); a7[d] = vec4<f32>(0.0);
  }
  var mA = vec4<f32>(-3.0e38); var mB = vec4<f32>(-3.0e38);
  var lA = vec4<f32>(0.0); var lB = vec4<f32>(0.0);
  for (var t = 0u; t < p.seqLen; t++) {
    let kb = (base + t) * s4 + p.kOff / 4u + hoff;
    let vb = (base + t) * s4 + p.vOff / 4u + hoff;
    var sA = vec4<f32>(0.0); var sB = vec4<f32>(0.0);
    for (var d = 0u; d < HD4; d++) {
      let k = qkv[kb + d];
      sA += vec4<f32>(dot(q0[d], k), dot(q1[d], k), dot(q2[d], k), dot(q3[d], k));
      sB += vec4<f32>(dot(q4[d], k), dot(q5[d], k), dot(q6[d], k), dot(q7[d], k));
    }
    let nA = max(mA, sA); let nB = max(mB, sB);
    let cA = exp(mA - nA); let cB = exp(mB - nB);
    let wA = exp(sA - nA); let wB = exp(sB - nB);
    lA = lA * cA + wA; lB = lB * cB + wB; mA = nA; mB = nB;
    for (var d = 0u; d < HD4; d++) {
      let v = qkv[vb + d];
      a0[d] = a0[d] * cA.x + wA.x * v; a1[d] = a1[d] * cA.y + wA.y * v; a2[d] = a2[d] * cA.z + wA.z * v; a3[d] = a3[d] * cA.w + wA.w * v;
      a4[d] = a4[d] * cB.x + wB.x * v; a5[d] = a5[d] * cB.y + wB.y * v; a6[d] = a6[d] * cB.z + wB.z * v; a7[d] = a7[d] * cB.w + wB.w * v;
    }
  }
  let iA = 1.0 / lA; let iB = 1.0 / lB;
  let o = p.heads * HD4;
  for (var d = 0u; d < HD4; d++) {
    let c = hoff + d;
    out[(base + r0) * o + c] = a0[d] * iA.x;
    if (r0 + 1u <= last) { out[(base + r0 + 1u) * o + c] = a1[d] * iA.y; }
    if (r0 + 2u <= last) { out[(base + r0 + 2u) * o + c] = a2[d] * iA.z; }
    if (r0 + 3u <= last) { out[(base + r0 + 3u) * o + c] = a3[d] * iA.w; }
    if (r0 + 4u <= last) { out[(base + r0 + 4u) * o + c] = a4[d] * iB.x; }
    if (r0 + 5u <= last) { out[(base + r0 + 5u) * o + c] = a5[d] * iB.y; }
    if (r0 + 6u <= last) { out[(base + r0 + 6u) * o + c] = a6[d] * iB.z; }
    if (r0 + 7u <= last) { out[(base + r0 + 7u) * o + c] = a7[d] * iB.w; }
  }
}
