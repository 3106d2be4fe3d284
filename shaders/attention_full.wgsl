// attention_full: bidirectional (non-causal) multi-head attention over contiguous Q/K/V, for
// vision towers. Rows form independent sequences of `seqLen` rows (one per image tile); each
// query attends to every key of its own sequence. Online softmax; K/V are staged through
// workgroup memory TK keys at a time and shared by the WG queries of one workgroup.
// HD4 = headDim / 4 is an override (constant trip counts).
// Layout (in vec4 units, so headDim, stride and offsets are multiples of 4): qkv f32
// [rows, stride] with head h of Q at qOff + h*headDim, K at kOff + ..., V at vOff + ...;
// out f32 [rows, heads*headDim].
// Dispatch: x = sequences * ceil(seqLen / WG), y = heads.
struct Params { rows: u32, seqLen: u32, heads: u32, headDim: u32, stride: u32, qOff: u32, kOff: u32, vOff: u32, scale: f32, _p0: u32, _p1: u32, _p2: u32 }
override WG: u32 = 64;
override HD4: u32 = 16u;
const TK: u32 = 32u;
const MAX_D4: u32 = 64u;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

var<workgroup> kt: array<vec4<f32>, TK * HD4>;
var<workgroup> vt: array<vec4<f32>, TK * HD4>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let blocks = (p.seqLen + WG - 1u) / WG;
  let seq = wid.x / blocks;
  let qi = (wid.x % blocks) * WG + lid;
  let h = wid.y;
  let valid = qi < p.seqLen;
  let base = seq * p.seqLen;
  let row = base + min(qi, p.seqLen - 1u);
  let s4 = p.stride / 4u;
  let hoff = h * HD4;
  var q: array<vec4<f32>, MAX_D4>;
  var acc: array<vec4<f32>, MAX_D4>;
  for (var d = 0u; d < HD4; d++) {
    q[d] = qkv[row * s4 + p.qOff / 4u + hoff + d] * p.scale;
    acc[d] = vec4<f32>(0.0);
  }
  var m = -3.0e38;
  var l = 0.0;
  for (var t0 = 0u; t0 < p.seqLen; t0 += TK) {
    workgroupBarrier();
    for (var j = lid; j < TK * HD4; j += WG) {
      let key = t0 + j / HD4;
      let d = j % HD4;
      if (key < p.seqLen) {
        let kr = (base + key) * s4 + hoff + d;
        kt[j] = qkv[kr + p.kOff / 4u];
        vt[j] = qkv[kr + p.vOff / 4u];
      }
    }
    workgroupBarrier();
    let n = min(TK, p.seqLen - t0);
    for (var t = 0u; t < n; t++) {
      var s = 0.0;
      for (var d = 0u; d < HD4; d++) { s += dot(q[d], kt[t * HD4 + d]); }
      if (s > m) {
        let c = exp(m - s);
        l = l * c + 1.0;
        for (var d = 0u; d < HD4; d++) { acc[d] = acc[d] * c + vt[t * HD4 + d]; }
        m = s;
      } else {
        let e = exp(s - m);
        l += e;
        for (var d = 0u; d < HD4; d++) { acc[d] += e * vt[t * HD4 + d]; }
      }
    }
  }
  if (!valid) { return; }
  let o = (base + qi) * p.heads * HD4 + hoff;
  for (var d = 0u; d < HD4; d++) { out[o + d] = acc[d] / l; }
}
