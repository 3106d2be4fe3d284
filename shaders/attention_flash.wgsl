// attention_flash: flash-attention prefill (the real-GPU shape of attention_prefill.wgsl): causal multi-head attention
// (GQA) for `rows` query tokens at positions startPos.., reading K/V from one layer's paged cache, with no score matrix
// in memory. A workgroup takes WG consecutive query rows of one head, one row per invocation (q and the output
// accumulator in registers); it walks the keys the rows can see in tiles of KT keys that the workgroup copies from the
// pages into workgroup memory together (one load serves WG rows), and each row folds a tile in with an online softmax
// (running max and sum, the accumulator rescaled once per tile). Masks per row and key: causal (t <= pos) or below
// the row's key end (hasKeyEnd: bidirectional spans such as an image's tokens), and within the sliding window.
// Prompt rows after a cached prefix (startPos > 0, POP's deep layers included) read the prefix through the same pages.
// Layout: q f32 rows of qStride, head h at h*headDim; out f32 [rows, heads*headDim]; pageTable u32;
// kCache/vCache [pages, pageSize, kvHeads, headDim], f32 or (KV_F16) f16 pairs in u32 words (kv_write.wgsl); keyEnd u32 [rows]. headDim % 4 == 0, HD4 = headDim / 4 <= 64,
// KT * HD4 <= 512 (the host sets KT = min(32, 512 / HD4): 16 KiB of K and V tiles).
// Dispatch grid: (ceil(rows / WG), numHeads, 1).
struct Params { rows: u32, startPos: u32, numHeads: u32, numKvHeads: u32, headDim: u32, qStride: u32, pageSize: u32, window: u32, scale: f32, hasKeyEnd: u32, _p1: u32, _p2: u32 }
override WG: u32 = 32u;
override HD4: u32 = 16u;
override KT: u32 = 32u;
const MAX_D4: u32 = 64u;
const MAX_KT: u32 = 32u;
const TILE_V4: u32 = 512u;
const NEG: f32 = -3.0e38;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> pageTable: array<u32>;
@group(0) @binding(3) var<storage, read> kCache: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> vCache: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> keyEnd: array<u32>;
// loadK / loadV: shaders/kv_read.wgsl, put in front of this file.

var<workgroup> Ks: array<vec4<f32>, TILE_V4>;
var<workgroup> Vs: array<vec4<f32>, TILE_V4>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let h = wid.y;
  let kvh = h / (p.numHeads / p.numKvHeads);
  let r0 = wid.x * WG;
  let rLast = min(r0 + WG, p.rows) - 1u;
  let r = r0 + li;
  let live = r < p.rows;
  let pos = p.startPos + min(r, rLast);
  // The keys any row of this workgroup sees (uniform across it): from the window's start for the first row to the
  // last row's position or the largest key end.
  var first = 0u;
  let pos0 = p.startPos + r0;
  if (p.window > 0u && pos0 + 1u > p.window) { first = pos0 + 1u - p.window; }
  var end = p.startPos + rLast + 1u;
  if (p.hasKeyEnd != 0u) {
    for (var i = r0; i <= rLast; i++) { end = max(end, keyEnd[i]); }
  }
  let myEnd = select(0u, keyEnd[min(r, rLast)], p.hasKeyEnd != 0u);

  var qr: array<vec4<f32>, MAX_D4>;
  var acc: array<vec4<f32>, MAX_D4>;
  let qb = (min(r, rLast) * p.qStride + h * p.headDim) / 4u;
  for (var d = 0u; d < HD4; d++) {
    qr[d] = q[qb + d] * p.scale;
    acc[d] = vec4<f32>(0.0);
  }
  var m = NEG;
  var l = 0.0;
  var s: array<f32, MAX_KT>;
  for (var t0 = first; t0 < end; t0 += KT) {
    // The tile: KT keys x HD4 vec4 of K and of V, copied out of the pages by the whole workgroup.
    for (var e = li; e < KT * HD4; e += WG) {
      let t = t0 + e / HD4;
      var kv = vec4<f32>(); var vv = vec4<f32>();
      if (t < end) {
        let base = ((pageTable[t / p.pageSize] * p.pageSize + t % p.pageSize) * p.numKvHeads + kvh) * HD4 + e % HD4;
        kv = loadK(base); vv = loadV(base);
      }
      Ks[e] = kv; Vs[e] = vv;
    }
    workgroupBarrier();
    var tileMax = NEG;
    for (var j = 0u; j < KT; j++) {
      let t = t0 + j;
      var dotv = vec4<f32>(0.0);
      for (var d = 0u; d < HD4; d++) { dotv = fma(qr[d], Ks[j * HD4 + d], dotv); }
      var ok = t < end && (t <= pos || t < myEnd);
      if (p.window > 0u) { ok = ok && t + p.window > pos; }
      s[j] = select(NEG, dot(dotv, vec4<f32>(1.0)), ok);
      tileMax = max(tileMax, s[j]);
    }
    let mNew = max(m, tileMax);
    let c = exp(m - mNew);
    l *= c;
    for (var d = 0u; d < HD4; d++) { acc[d] *= c; }
    for (var j = 0u; j < KT; j++) {
      // A masked key weighs 0 (also when no key of the row is visible yet: mNew is still NEG).
      let w = select(0.0, exp(s[j] - mNew), s[j] > NEG);
      l += w;
      for (var d = 0u; d < HD4; d++) { acc[d] = fma(vec4<f32>(w), Vs[j * HD4 + d], acc[d]); }
    }
    m = mNew;
    workgroupBarrier();
  }
  if (live) {
    let inv = 1.0 / l;
    let ob = (r * p.numHeads + h) * HD4;
    for (var d = 0u; d < HD4; d++) { out[ob + d] = acc[d] * inv; }
  }
}
