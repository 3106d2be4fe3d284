// matvec_wg: workgroup-reduction GEMV (suits real GPUs; slow on SwiftShader). Same contract as matvec.wgsl:
// Y[m,n] = sum_k X[xOffset + m*K + k] * W[n*K + k] (+Y_old if accumulate) (+B[n] if hasBias), f32, any M.
// Requires K % 4 == 0 and xOffset % 4 == 0. One workgroup of WG invocations computes ROWS = 4 outputs n of
// one row m: invocations split K (vec4 stride WG, coalesced), then a shared-memory tree reduction.
// WG must be a power of two <= 256 (default 64). Dispatch grid: (ceil(N / 4), M, batch): wOffset and the
// per-z batch strides as in matmul_regblock.wgsl; the causal band is only a hint and is ignored here.
struct Params { M: u32, N: u32, K: u32, xOffset: u32, yOffset: u32, accumulate: u32, hasBias: u32, wOffset: u32, xBatch: u32, wBatch: u32, yBatch: u32, bandMode: u32, bandRows: u32, bandEnd: u32, _pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> W: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
const ROWS: u32 = 4u;
override WG: u32 = 64u;
var<workgroup> red: array<vec4<f32>, 256>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let m = wid.y;
  let n0 = wid.x * ROWS;
  let K4 = p.K / 4u;
  let xr = (p.xOffset + wid.z * p.xBatch) / 4u + m * K4;
  let wb = (p.wOffset + wid.z * p.wBatch) / 4u;
  var r: array<u32, 4>;
  for (var j = 0u; j < ROWS; j++) { r[j] = wb + min(n0 + j, p.N - 1u) * K4; }
  var s = vec4<f32>();
  for (var k = li; k < K4; k += WG) {
    let x = X[xr + k];
    s += vec4(dot(x, W[r[0] + k]), dot(x, W[r[1] + k]), dot(x, W[r[2] + k]), dot(x, W[r[3] + k]));
  }
  red[li] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (li < stride) { red[li] += red[li + stride]; }
    workgroupBarrier();
  }
  if (li < ROWS) {
    let n = n0 + li;
    if (n < p.N) {
      let yi = p.yOffset + wid.z * p.yBatch + m * p.N + n;
      var v = red[0][li];
      if (p.accumulate != 0u) { v += Y[yi]; }
      if (p.hasBias != 0u) { v += B[n]; }
      Y[yi] = v;
    }
  }
}
