// kv_gather: copies keys k0 .. k0+keys of every KV head into GEMM operands for attention:
// kOut [kvHeads, keysPad, headDim] (one key per row: the W of Q·Kᵀ) and vOut [kvHeads, headDim,
// keysPad] (V transposed: the W of P·V). Keys keys..keysPad-1 are zero padding.
// Source: with pageSize > 0, one layer's paged cache [pages, pageSize, kvHeads, headDim] through
// pageTable, f32 or (KV_F16) f16 pairs in u32 words (kv_write.wgsl); with pageSize = 0, token-major
// f32 rows (vision towers: K and V inside the fused QKV rows, key t at t*srcStride + kOffset / vOffset). Params in vec4 units where named *4.
// Dispatch: one invocation per (head, key, vec4 of headDim), ceil(kvHeads*keysPad*hd4 / WG) folded into (x, y).
struct Params { keys: u32, keysPad: u32, k0: u32, kvHeads: u32, hd4: u32, pageSize: u32, srcStride4: u32, kOffset4: u32, vOffset4: u32, _p0: u32, _p1: u32, _p2: u32 }
override WG: u32 = 64;
override KV_F16: bool = false;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pageTable: array<u32>;
@group(0) @binding(2) var<storage, read> kSrc: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> vSrc: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> kOut: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> vOut: array<f32>;

// vec4 j of an f16 paged cache: four halves in the words 2j, 2j + 1 (w = the vec4 of words j / 2).
fn halves(w: vec4<u32>, j: u32) -> vec4<f32> {
  let h = select(w.xy, w.zw, (j & 1u) == 1u);
  return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.kvHeads * p.keysPad * p.hd4) { return; }
  let d4 = i % p.hd4;
  let c = (i / p.hd4) % p.keysPad;
  let j = i / (p.hd4 * p.keysPad);
  var k = vec4<f32>();
  var v = vec4<f32>();
  if (c < p.keys) {
    let t = p.k0 + c;
    if (p.pageSize > 0u) {
      let at = ((pageTable[t / p.pageSize] * p.pageSize + t % p.pageSize) * p.kvHeads + j) * p.hd4 + d4;
      if (KV_F16) {
        k = halves(kSrc[at >> 1u], at); v = halves(vSrc[at >> 1u], at);
      } else {
        k = bitcast<vec4<f32>>(kSrc[at]); v = bitcast<vec4<f32>>(vSrc[at]);
      }
    } else {
      let row = t * p.srcStride4 + j * p.hd4 + d4;
      k = bitcast<vec4<f32>>(kSrc[row + p.kOffset4]); v = bitcast<vec4<f32>>(vSrc[row + p.vOffset4]);
    }
  }
  kOut[i] = k;
  let vt = (j * p.hd4 + d4) * 4u * p.keysPad + c;
  vOut[vt] = v.x;
  vOut[vt + p.keysPad] = v.y;
  vOut[vt + 2u * p.keysPad] = v.z;
  vOut[vt + 3u * p.keysPad] = v.w;
}
