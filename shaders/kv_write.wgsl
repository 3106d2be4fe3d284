// kv_write: writes K (after optional per-head k-norm and rotate-half RoPE) and V of `rows`
// tokens at positions startPos.. into one layer's paged cache. Used by every layer, and by
// POP's independent KV projection (src = the stacked deep K/V GEMM output).
// RoPE cos|sin come from the table (f32 [positions, headDim], see rope.wgsl).
// Layout: src f32 rows of rowStride, K head h at kOffset + h*headDim, V at vOffset + h*headDim.
// Cache: page table u32 [maxPages]; kCache/vCache f32 [pages, pageSize, kvHeads, headDim];
// position t lives in page pageTable[t / pageSize], slot t % pageSize.
// Dispatch: ceil(rows * kvHeads / WG) workgroups; one invocation per (row, kv head).
struct Params { rows: u32, rowStride: u32, kOffset: u32, vOffset: u32, kvHeads: u32, headDim: u32, startPos: u32, pageSize: u32, hasNorm: u32, eps: f32, _p0: u32, _p1: u32 }
override WG: u32 = 64;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> ropeTable: array<f32>;
@group(0) @binding(3) var<storage, read> normGain: array<f32>;
@group(0) @binding(4) var<storage, read> pageTable: array<u32>;
@group(0) @binding(5) var<storage, read_write> kCache: array<f32>;
@group(0) @binding(6) var<storage, read_write> vCache: array<f32>;

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
  for (var d = 0u; d < half; d++) {
    var x1 = src[k0 + d] * inv;
    var x2 = src[k0 + d + half] * inv;
    if (p.hasNorm != 0u) { x1 *= normGain[d]; x2 *= normGain[d + half]; }
    let c = ropeTable[pos * p.headDim + d];
    let s = ropeTable[pos * p.headDim + half + d];
    kCache[dst + d] = x1 * c - x2 * s;
    kCache[dst + d + half] = x2 * c + x1 * s;
  }
  for (var d = 0u; d < p.headDim; d++) { vCache[dst + d] = src[v0 + d]; }
}
