// attention_decode: attention for few query tokens over a long paged cache (decode, and short
// prefills after a long reused prefix, where one invocation per query would leave the
// device idle). One workgroup per (head, row); its WG invocations split the keys (key t goes
// to invocation t % WG), each keeps an online-softmax partial (max, sum, acc), and the
// partials are merged in workgroup memory, DCHUNK output dims at a time.
// Layout: q f32 rows of qStride, head h at h*headDim; out f32 [rows, heads*headDim];
// pageTable u32; kCache/vCache [pages, pageSize, kvHeads, headDim], f32 or (KV_F16) f16 pairs in u32 words (kv_write.wgsl). headDim % 4 == 0, <= 256.
// Dispatch: (numHeads, rows) workgroups; row r is at position startPos + r (causal).
struct Params { rows: u32, startPos: u32, numHeads: u32, numKvHeads: u32, headDim: u32, qStride: u32, pageSize: u32, window: u32, scale: f32, _p0: u32, _p1: u32, _p2: u32 }
override WG: u32 = 32;
const MAX_D4: u32 = 64u;
const DCHUNK4: u32 = 8u; // vec4s merged per round
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> pageTable: array<u32>;
@group(0) @binding(3) var<storage, read> kCache: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> vCache: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

// loadK / loadV: shaders/kv_read.wgsl, put in front of this file.

var<workgroup> wm: array<f32, WG>;
var<workgroup> wl: array<f32, WG>;
var<workgroup> wacc: array<array<vec4<f32>, DCHUNK4>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  let r = wid.y;
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
  for (var t = first + lid; t <= pos; t += WG) {
    let base = ((pageTable[t / p.pageSize] * p.pageSize + t % p.pageSize) * p.numKvHeads + kvh) * d4;
    var s = 0.0;
    for (var d = 0u; d < d4; d++) { s += dot(qv[d], loadK(base + d)); }
    let mNew = max(m, s);
    let corr = exp(m - mNew);
    let w = exp(s - mNew);
    l = l * corr + w;
    for (var d = 0u; d < d4; d++) { acc[d] = acc[d] * corr + w * loadV(base + d); }
    m = mNew;
  }
  wm[lid] = m;
  workgroupBarrier();
  var gm = -3.0e38;
  for (var j = 0u; j < WG; j++) { gm = max(gm, wm[j]); }
  let myScale = select(exp(m - gm), 0.0, l == 0.0);
  wl[lid] = l * myScale;
  workgroupBarrier();
  var gl = 0.0;
  for (var j = 0u; j < WG; j++) { gl += wl[j]; }
  for (var c = 0u; c < d4; c += DCHUNK4) {
    for (var d = 0u; d < DCHUNK4; d++) {
      if (c + d < d4) { wacc[lid][d] = acc[c + d] * myScale; }
    }
    workgroupBarrier();
    if (lid < DCHUNK4 && c + lid < d4) {
      var sum = vec4<f32>(0.0);
      for (var j = 0u; j < WG; j++) { sum += wacc[j][lid]; }
      out[(r * p.numHeads + h) * d4 + c + lid] = sum / gl;
    }
    workgroupBarrier();
  }
}
