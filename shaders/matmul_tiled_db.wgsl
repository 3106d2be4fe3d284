// matmul_tiled_db: Y[m,n] = sum_k X[xOffset + m*K + k] * W[n*K + k] (+Y_old if accumulate) (+B[n] if hasBias), f32:
// matmul_tiled (workgroup-memory tiling, the real-GPU shape) double-buffered through registers: each stage's global
// loads for the next K-slice are issued before the current slice's products, so memory latency overlaps the math.
// X: [M,K] row-major, W: [N,K] row-major (nn.Linear weight), Y: [M,N] row-major at yOffset. K % 4 == 0 and
// xOffset % 4 == 0 (vec4 loads along K). Workgroup 16 x 16 invocations, each a 4 (m) x 4 (n) register block strided by
// 16 inside the tile; tile 64 (n) x 64 (m); K staged 32 at a time (8 vec4 per row, one pad vec4: 2 x 9 KiB of workgroup
// memory), 2 vec4 of X and 2 of W fetched per invocation per stage. wOffset, the per-z batch strides and the causal
// band (bandMode 1: skip tiles right of the band; 2: stop K at it) as in matmul_regblock.wgsl, decided per tile.
// Dispatch grid: (ceil(N / 64), ceil(M / 64), batch).
struct Params { M: u32, N: u32, K: u32, xOffset: u32, yOffset: u32, accumulate: u32, hasBias: u32, wOffset: u32, xBatch: u32, wBatch: u32, yBatch: u32, bandMode: u32, bandRows: u32, bandEnd: u32, _pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> W: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;

const TILE: u32 = 64u;     // rows of X and rows of W per tile
const BK4: u32 = 8u;       // K-slice per stage, in vec4 (= 32 floats)
const RS: u32 = BK4 + 1u;  // tile row stride in vec4 (padded to spread banks)

var<workgroup> Xs: array<vec4<f32>, TILE * RS>;
var<workgroup> Ws: array<vec4<f32>, TILE * RS>;

fn bandLimit(m0: u32, m1: u32) -> u32 {
  let wraps = m0 % p.bandRows + (m1 - m0) >= p.bandRows;
  return select(m1 % p.bandRows, p.bandRows - 1u, wraps) + p.bandEnd;
}

// One stage's global reads by one invocation (elements li and li + 256 of each 64 x 8 vec4 slice), held in registers.
struct Stage { x0: vec4<f32>, x1: vec4<f32>, w0: vec4<f32>, w1: vec4<f32> }

fn fetch(k0: u32, KE: u32, li: u32, xb: u32, wb: u32, mBase: u32, nBase: u32) -> Stage {
  let K4 = p.K / 4u;
  var s: Stage;
  let r0 = li / BK4; let r1 = (li + 256u) / BK4;
  let k = k0 + li % BK4;   // the same column for both elements (256 % 8 == 0)
  s.x0 = vec4<f32>(); s.x1 = vec4<f32>(); s.w0 = vec4<f32>(); s.w1 = vec4<f32>();
  if (k < KE) {
    if (mBase + r0 < p.M) { s.x0 = X[xb + (mBase + r0) * K4 + k]; }
    if (mBase + r1 < p.M) { s.x1 = X[xb + (mBase + r1) * K4 + k]; }
    if (nBase + r0 < p.N) { s.w0 = W[wb + (nBase + r0) * K4 + k]; }
    if (nBase + r1 < p.N) { s.w1 = W[wb + (nBase + r1) * K4 + k]; }
  }
  return s;
}

@compute @workgroup_size(16, 16)
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
  let c0 = li % BK4;
  let r0 = li / BK4; let r1 = (li + 256u) / BK4;
  var next = fetch(0u, KE, li, xb, wb, mBase, nBase);
  for (var k0 = 0u; k0 < KE; k0 += BK4) {
    Xs[r0 * RS + c0] = next.x0; Xs[r1 * RS + c0] = next.x1;
    Ws[r0 * RS + c0] = next.w0; Ws[r1 * RS + c0] = next.w1;
    workgroupBarrier();
    if (k0 + BK4 < KE) { next = fetch(k0 + BK4, KE, li, xb, wb, mBase, nBase); }
    for (var c = 0u; c < BK4; c++) {
      var w: array<vec4<f32>, 4>;
      for (var j = 0u; j < 4u; j++) { w[j] = Ws[(lid.x + 16u * j) * RS + c]; }
      for (var i = 0u; i < 4u; i++) {
        let x = Xs[(lid.y + 16u * i) * RS + c];
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
