// attention_combine: pass 2 of flash-decoding: merges the per-chunk partials of attention_decode_chunks.wgsl.
// out[r, h] = sum_c exp(m_c - M) acc_c / sum_c exp(m_c - M) l_c, M = max_c m_c (empty chunks have l = 0).
// Layout: part vec4 [rows, numHeads, chunks, 1 + headDim/4] ((m, l, 0, 0), acc); out f32 [rows, numHeads*headDim].
// One workgroup of 64 per (head, row), lane d = output vec4 (headDim <= 256). Dispatch: (numHeads, rows).
struct Params { rows: u32, startPos: u32, numHeads: u32, numKvHeads: u32, headDim: u32, qStride: u32, pageSize: u32, window: u32, scale: f32, chunks: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let h = wid.x;
  let r = wid.y;
  let d4 = p.headDim / 4u;
  if (li >= d4) { return; }
  let stride = 1u + d4;
  let base = (r * p.numHeads + h) * p.chunks * stride;
  var mx = -3.0e38;
  for (var c = 0u; c < p.chunks; c++) { mx = max(mx, part[base + c * stride].x); }
  var l = 0.0;
  var acc = vec4<f32>();
  for (var c = 0u; c < p.chunks; c++) {
    let ml = part[base + c * stride];
    if (ml.y > 0.0) {
      let w = exp(ml.x - mx);
      l += w * ml.y;
      acc += w * part[base + c * stride + 1u + li];
    }
  }
  out[(r * p.numHeads + h) * d4 + li] = acc / l;
}
