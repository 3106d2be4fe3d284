// matmul_tiled_q4: Y[m,n] = sum_k X[xOffset + m*K + k] * dequant(W)[n, k] (+Y_old if accumulate) (+B[n] if hasBias), f32
// math, int4 weights dequantized WHILE THE W TILE IS LOADED into workgroup memory: the real-GPU shape of matmul_q4.wgsl.
// Same Params and packed layout as matmul_q4.wgsl (src/core/quant.ts): row n's group g (32 weights along K) is the words
// n*RW + 4g .. 4g+3, RW = 4*ceil(K/32); word j holds k = 32g + 8j .. +7, element i in bits 4i..4i+3; scales f32 [N, G] at
// scalesOffset, offsets at minsOffset (0: symmetric, offset = -8 * scale); column gains f32 [N / gainRows, K] at
// gainsOffset, read only with override GAIN = true (POP's deep K/V: w = dequant(q) * gain[n / gainRows, k]).
// K % 4 == 0 and xOffset % 4 == 0; X past K is zeroed in the tile, so the padding nibbles meet only zeros.
// Workgroup 16 x 16 invocations; output tile 64 (m) x 64 (n); each invocation a 4 x 4 register block whose rows / cols are
// strided by 16 inside the tile. K advances one q4 group (32) per stage: each invocation fetches one W word (8 weights of
// one row) with its scale and offset and 2 vec4 of X. Double-buffered through registers: the next stage's words and X are
// fetched before the current stage's products, so memory latency overlaps the math (one barrier pair per stage).
// Workgroup memory: 2 x 64 rows x 9 vec4 (one pad vec4 per row spreads banks) = 18 KiB.
// Dispatch grid: (ceil(N / 64), ceil(M / 64), 1).
struct Params { M: u32, N: u32, K: u32, xOffset: u32, yOffset: u32, accumulate: u32, hasBias: u32, _pad: u32, scalesOffset: u32, minsOffset: u32, gainsOffset: u32, gainRows: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> W: array<u32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
override GAIN: bool = false;

const TILE: u32 = 64u;     // rows of X and rows of W per tile
const BK4: u32 = 8u;       // K per stage in vec4: one q4 group
const RS: u32 = BK4 + 1u;  // tile row stride in vec4 (padded)
const SHIFT_LO = vec4<u32>(0u, 4u, 8u, 12u);
const SHIFT_HI = vec4<u32>(16u, 20u, 24u, 28u);

var<workgroup> Xs: array<vec4<f32>, TILE * RS>;
var<workgroup> Ws: array<vec4<f32>, TILE * RS>;

// One stage's global reads by one invocation, held in registers until the tile is free.
struct Stage { x0: vec4<f32>, x1: vec4<f32>, word: u32, scale: f32, offset: f32, g0: vec4<f32>, g1: vec4<f32> }

fn fetch(g: u32, li: u32, mBase: u32, nBase: u32) -> Stage {
  var s: Stage;
  let K4 = p.K / 4u;
  let G = (p.K + 31u) / 32u;
  // X: 64 rows x 8 vec4 = 512 vec4, two per invocation. Out of range -> 0.
  let e0 = li; let e1 = li + 256u;
  let m0 = mBase + e0 / BK4; let k0 = g * BK4 + e0 % BK4;
  let m1 = mBase + e1 / BK4; let k1 = g * BK4 + e1 % BK4;
  let xb = p.xOffset / 4u;
  s.x0 = vec4<f32>(); s.x1 = vec4<f32>();
  if (m0 < p.M && k0 < K4) { s.x0 = X[xb + m0 * K4 + k0]; }
  if (m1 < p.M && k1 < K4) { s.x1 = X[xb + m1 * K4 + k1]; }
  // W: 64 rows x 4 words; word j of row r covers k4 = 8g + 2j, 8g + 2j + 1.
  let n = nBase + li / 4u; let j = li % 4u;
  s.word = 0u; s.scale = 0.0; s.offset = 0.0; s.g0 = vec4<f32>(1.0); s.g1 = vec4<f32>(1.0);
  if (n < p.N) {
    s.word = W[n * G * 4u + g * 4u + j];
    s.scale = bitcast<f32>(W[p.scalesOffset + n * G + g]);
    s.offset = select(-8.0 * s.scale, bitcast<f32>(W[p.minsOffset + n * G + g]), p.minsOffset != 0u);
    if (GAIN) {
      // Gains past K are not read (the words there are the next block's, or out of range).
      let kg = p.gainsOffset + n / max(p.gainRows, 1u) * p.K + g * 32u + j * 8u;
      let k4 = g * BK4 + 2u * j;
      if (k4 < K4) { s.g0 = bitcast<vec4<f32>>(vec4<u32>(W[kg], W[kg + 1u], W[kg + 2u], W[kg + 3u])); }
      if (k4 + 1u < K4) { s.g1 = bitcast<vec4<f32>>(vec4<u32>(W[kg + 4u], W[kg + 5u], W[kg + 6u], W[kg + 7u])); }
    }
  }
  return s;
}

fn store(s: Stage, li: u32) {
  Xs[(li / BK4) * RS + li % BK4] = s.x0;
  Xs[((li + 256u) / BK4) * RS + (li + 256u) % BK4] = s.x1;
  // Dequantized here, once per weight, for the 64 rows of X that use it.
  let lo = vec4<f32>((vec4<u32>(s.word) >> SHIFT_LO) & vec4<u32>(15u));
  let hi = vec4<f32>((vec4<u32>(s.word) >> SHIFT_HI) & vec4<u32>(15u));
  let r = li / 4u; let j = li % 4u;
  Ws[r * RS + 2u * j] = fma(lo, vec4<f32>(s.scale), vec4<f32>(s.offset)) * s.g0;
  Ws[r * RS + 2u * j + 1u] = fma(hi, vec4<f32>(s.scale), vec4<f32>(s.offset)) * s.g1;
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let mBase = wid.y * TILE;
  let nBase = wid.x * TILE;
  let G = (p.K + 31u) / 32u;
  var acc: array<vec4<f32>, 4>;   // acc[i][j]: row mBase + lid.y + 16i, col nBase + lid.x + 16j
  var next = fetch(0u, li, mBase, nBase);
  for (var g = 0u; g < G; g++) {
    store(next, li);
    workgroupBarrier();
    if (g + 1u < G) { next = fetch(g + 1u, li, mBase, nBase); }
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
      let yi = p.yOffset + m * p.N + n;
      var v = acc[i][j];
      if (p.accumulate != 0u) { v += Y[yi]; }
      if (p.hasBias != 0u) { v += B[n]; }
      Y[yi] = v;
    }
  }
}
