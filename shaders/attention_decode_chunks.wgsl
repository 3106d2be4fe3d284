// attention_decode_chunks: pass 1 of flash-decoding (attention split over the KV length, so that one long
// sequence fills the GPU). One workgroup per (head, chunk of CHUNK key positions, row): scores of its keys in
// workgroup memory, their max and sum (workgroup trees), then P·V with the lanes split as (dim vec4, key slice),
// so a key's V row is read contiguously. Writes the chunk's partial (max m, sum l, unnormalized acc) for
// attention_combine.wgsl; a chunk outside the row's visible keys writes m = -3e38, l = 0.
// Layout: q f32 rows of qStride, head h at h*headDim; pageTable u32; kCache/vCache [pages, pageSize, kvHeads,
// headDim], f32 or (KV_F16) f16 pairs in u32 words (kv_write.wgsl); part vec4 [rows, numHeads, chunks, 1 + headDim/4]: (m, l, 0, 0), acc.
// Row r is at position startPos + r (causal; window > 0: keys > pos - window). headDim % 4 == 0, <= 256.
// WG >= 64 (a power of two), CHUNK a multiple of WG. Dispatch: (numHeads, chunks, rows), chunks = ceil((startPos + rows) / CHUNK).
struct Params { rows: u32, startPos: u32, numHeads: u32, numKvHeads: u32, headDim: u32, qStride: u32, pageSize: u32, window: u32, scale: f32, chunks: u32, _p1: u32, _p2: u32 }
override WG: u32 = 64u;
override CHUNK: u32 = 256u;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> pageTable: array<u32>;
@group(0) @binding(3) var<storage, read> kCache: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> vCache: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> part: array<vec4<f32>>;

// loadK / loadV: shaders/kv_read.wgsl, put in front of this file.

var<workgroup> qs: array<vec4<f32>, 64>;
var<workgroup> sc: array<f32, CHUNK>;
var<workgroup> red: array<f32, WG>;
var<workgroup> accs: array<vec4<f32>, WG>;

fn rowBase(t: u32, kvh: u32, d4: u32) -> u32 {
  return ((pageTable[t / p.pageSize] * p.pageSize + t % p.pageSize) * p.numKvHeads + kvh) * d4;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let h = wid.x;
  let c = wid.y;
  let r = wid.z;
  let d4 = p.headDim / 4u;
  let kvh = h / (p.numHeads / p.numKvHeads);
  let pos = p.startPos + r;
  var first = 0u;
  if (p.window > 0u && pos + 1u > p.window) { first = pos + 1u - p.window; }
  let t0 = c * CHUNK;
  // Keys [lo, hi) of this chunk that row r sees (empty when lo >= hi).
  let lo = max(t0, first);
  let hi = min(t0 + CHUNK, pos + 1u);
  let q0 = (r * p.qStride + h * p.headDim) / 4u;
  for (var d = li; d < d4; d += WG) { qs[d] = q[q0 + d] * p.scale; }
  workgroupBarrier();

  var mx = -3.0e38;
  for (var j = li; j < CHUNK; j += WG) {
    let t = t0 + j;
    var s = -3.0e38;
    if (t >= lo && t < hi) {
      let base = rowBase(t, kvh, d4);
      s = 0.0;
      for (var d = 0u; d < d4; d++) { s += dot(qs[d], loadK(base + d)); }
    }
    sc[j] = s;
    mx = max(mx, s);
  }
  red[li] = mx;
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st /= 2u) {
    if (li < st) { red[li] = max(red[li], red[li + st]); }
    workgroupBarrier();
  }
  let m = red[0];
  workgroupBarrier();
  var l = 0.0;
  for (var j = li; j < CHUNK; j += WG) {
    let t = t0 + j;
    let e = select(0.0, exp(sc[j] - m), t >= lo && t < hi);
    sc[j] = e;
    l += e;
  }
  red[li] = l;
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st /= 2u) {
    if (li < st) { red[li] += red[li + st]; }
    workgroupBarrier();
  }
  let lsum = red[0];

  // P·V: lane = slice * d4 + d; the slices stride over the chunk's keys.
  let slices = WG / d4;
  let d = li % d4;
  let slice = li / d4;
  var acc = vec4<f32>();
  if (slice < slices && lo < hi) {
    for (var t = lo + slice; t < hi; t += slices) {
      acc += sc[t - t0] * loadV(rowBase(t, kvh, d4) + d);
    }
  }
  accs[li] = acc;
  workgroupBarrier();
  let o = ((r * p.numHeads + h) * p.chunks + c) * (1u + d4);
  if (li < d4) {
    var sum = vec4<f32>();
    for (var s = 0u; s < slices; s++) { sum += accs[s * d4 + li]; }
    part[o + 1u + li] = sum;
  }
  if (li == 0u) { part[o] = vec4<f32>(select(m, -3.0e38, lo >= hi), lsum, 0.0, 0.0); }
}
