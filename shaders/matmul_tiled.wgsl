// matmul_tiled: Y[m,n] = sum_k X[xOffset + m*K + k] * W[n*K + k] (+Y_old if accumulate) (+B[n] if hasBias).
// Classic workgroup-memory tiled GEMM (the real-GPU variant), f32. X: [M,K] row-major, W: [N,K] row-major
// (nn.Linear weight), Y: [M,N] row-major at yOffset. K % 4 == 0 and xOffset % 4 == 0 (vec4 loads along K).
// Workgroup = WG_N x WG_M = 16 x 16 invocations, each computes a 4 (m) x 4 (n) register block whose rows/cols
// are strided by 16 inside the tile; tile = 64 (n) x 64 (m), K staged 32 at a time (8 vec4) in workgroup memory.
// Dispatch grid: (ceil(N / 64), ceil(M / 64), batch). wOffset, the per-z batch strides and the causal band
// (bandMode 1: skip tiles right of the band; 2: stop K at it) as in matmul_regblock.wgsl, decided per tile. The override WG_N/WG_M are fixed at 16 (tile math assumes it).
struct Params { M: u32, N: u32, K: u32, xOffset: u32, yOffset: u32, accumulate: u32, hasBias: u32, wOffset: u32, xBatch: u32, wBatch: u32, yBatch: u32, bandMode: u32, bandRows: u32, bandEnd: u32, _pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> W: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;

const TILE: u32 = 64u;   // rows of X and rows of W per tile
const BK4: u32 = 8u;     // K-slice per stage, in vec4 (= 32 floats)
override WG_N: u32 = 16u;
override WG_M: u32 = 16u;

// [row][k4], padded by one vec4 per row to spread banks.
var<workgroup> Xs: array<vec4<f32>, TILE * (BK4 + 1u)>;
var<workgroup> Ws: array<vec4<f32>, TILE * (BK4 + 1u)>;

fn bandLimit(m0: u32, m1: u32) -> u32 {
  let wraps = m0 % p.bandRows + (m1 - m0) >= p.bandRows;
  return select(m1 % p.bandRows, p.bandRows - 1u, wraps) + p.bandEnd;
}

@compute @workgroup_size(WG_N, WG_M)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let K4 = p.K / 4u;
  let xb = (p.xOffset + wid.z * p.xBatch) / 4u;
  let wb = (p.wOffset + wid.z * p.wBatch) / 4u;
  let mBase = wid.y * TILE;
  let nBase = wid.x * TILE;
  // The band is decided per tile, so the exit and the K bound are uniform across the workgroup.
  var KE = K4;
  if (p.bandMode != 0u) {
    let lim = bandLimit(mBase, min(mBase + TILE - 1u, p.M - 1u));
    if (p.bandMode == 1u && nBase >= lim) { return; }
    if (p.bandMode == 2u) { KE = min(K4, (lim + 3u) / 4u); }
  }
  var acc: array<vec4<f32>, 4>;   // acc[i][j]: row mBase + lid.y + 16i, col nBase + lid.x + 16j
  for (var k0 = 0u; k0 < KE; k0 += BK4) {
    // Stage: 64 rows x 8 vec4 = 512 vec4 per operand, 256 invocations -> 2 each. Out-of-range -> 0.
    for (var t = 0u; t < 2u; t++) {
      let e = li + t * 256u;
      let r = e / BK4;
      let c = e % BK4;
      let k = k0 + c;
      let m = mBase + r;
      let n = nBase + r;
      var xv = vec4<f32>(); var wv = vec4<f32>();
      if (m < p.M && k < KE) { xv = X[xb + m * K4 + k]; }
      if (n < p.N && k < KE) { wv = W[wb + n * K4 + k]; }
      Xs[r * (BK4 + 1u) + c] = xv;
      Ws[r * (BK4 + 1u) + c] = wv;
    }
    workgroupBarrier();
    for (var c = 0u; c < BK4; c++) {
      var w: array<vec4<f32>, 4>;
      for (var j = 0u; j < 4u; j++) { w[j] = Ws[(lid.x + 16u * j) * (BK4 + 1u) + c]; }
      for (var i = 0u; i < 4u; i++) {
        let x = Xs[(lid.y + 16u * i) * (BK4 + 1u) + c];
        acc[i] += vec4(dot(x, w[0]), dot(x, w[1]), dot(x, w[2]), dot(x, w[3]));
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = mBase + lid.y + 16u * i;
    if (m >= p.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = nBase + lid.x + 16u * j;
      if (n >= p.N) { break; }
      let yi = p.yOffset + wid.z * p.yBatch + m * p.N + n;
      var v = acc[i][j];
      if (p.accumulate != 0u) { v += Y[yi]; }
      if (p.hasBias != 0u) { v += B[n]; }
      Y[yi] = v;
    }
  }
}
