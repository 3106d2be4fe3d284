// kv_write: writes K (after optional per-head k-norm and rotate-half RoPE) and V of `rows`
// tokens at positions startPos.. into one layer's paged cache. Used by every layer, and by
// POP's independent KV projection (src = the stacked deep K/V GEMM output).
// RoPE cos|sin come from the table (f32 [positions, headDim], see rope.wgsl).
// Layout: src f32 rows of rowStride, K head h at kOffset + h*headDim, V at vOffset + h*headDim.
// Cache: page table u32 [maxPages]; kCache/vCache [pages, pageSize, kvHeads, headDim] as u32 words:
// f32 bits (KV_F16 = false), or with KV_F16 two halves per word (pack2x16float: element 2i in the low
// half), the f16 KV cache; position t lives in page pageTable[t / pageSize], slot t % pageSize.
// headDim % 4 == 0. Dispatch: ceil(rows * kvHeads / WG) workgroups; one invocation per (row, kv head).
struct Params { rows: u32, rowStride: u32, kOffset: u32, vOffset: u32, kvHeads: u32, headDim: u32, startPos: u32, pageSize: u32, hasNorm: u32, eps: f32, _p0: u32, _p1: u32 }
override WG: u32 = 64;
override KV_F16: bool = false;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> ropeTable: array<f32>;
@group(0) @binding(3) var<storage, read> normGain: array<f32>;
@group(0) @binding(4) var<storage, read> pageTable: array<u32>;
@group(0) @binding(5) var<storage, read_write> kCache: array<u32>;
@group(0) @binding(6) var<storage, read_write> vCache: array<u32>;

// Elements e and e + 1 (e even) of the cache: two f32 words, or one word of two halves.
fn storeK(e: u32, a: f32, b: f32) {
  if (KV_F16) { kCache[e / 2u] = pack2x16float(vec2<f32>(a, b)); } else { kCache[e] = bitcast<u32>(a); kCache[e + 1u] = bitcast<u32>(b); }
}
fn storeV(e: u32, a: f32, b: f32) {
  if (KV_F16) { vCache[e / 2u] = pack2x16float(vec2<f32>(a, b)); } else { vCache[e] = bitcast<u32>(a); vCache[e + 1u] = bitcast<u32>(b); }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.kvHeads) { return; }
  let r = i / p.kvHeads;
  let h = i % p.kvHeads;
  let pos = p.startPos + r;
  let dst = ((pageTable[pos / p.pageSize] * p.pageSize + pos % p.pageSize) * p.kvHeads + h) * p.headDim;
  let k0 = r * p.rowStride + p.kOffset + h * p.headDim;
  let v0 = r * p.rowStride + p.vOffset + h * p.headDim;
  var inv = 1.0;
  if (p.hasNorm != 0u) {
    var ss = 0.0;
    for (var d = 0u; d < p.headDim; d++) { let v = src[k0 + d]; ss += v * v; }
    inv = inverseSqrt(ss / f32(p.headDim) + p.eps);
  }
  let half = p.headDim / 2u;
  // Two rotated pairs per step (d, d + half) and (d + 1, d + 1 + half): each store is a whole pair of elements.
  for (var d = 0u; d < half; d += 2u) {
    var x1 = vec2<f32>(src[k0 + d], src[k0 + d + 1u]) * inv;
    var x2 = vec2<f32>(src[k0 + d + half], src[k0 + d + half + 1u]) * inv;
    if (p.hasNorm != 0u) { x1 *= vec2<f32>(normGain[d], normGain[d + 1u]); x2 *= vec2<f32>(normGain[d + half], normGain[d + half + 1u]); }
    let c = vec2<f32>(ropeTable[pos * p.headDim + d], ropeTable[pos * p.headDim + d + 1u]);
    let s = vec2<f32>(ropeTable[pos * p.headDim + half + d], ropeTable[pos * p.headDim + half + d + 1u]);
    let lo = x1 * c - x2 * s;
    let hi = x2 * c + x1 * s;
    storeK(dst + d, lo.x, lo.y);
    storeK(dst + d + half, hi.x, hi.y);
  }
  for (var d = 0u; d < p.headDim; d += 2u) { storeV(dst + d, src[v0 + d], src[v0 + d + 1u]); }
}
