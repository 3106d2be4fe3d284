// Generates the register-blocked matmul kernels (fully unrolled, so written by a program
// once and committed as plain WGSL): R rows x C cols per invocation (C a multiple of 4);
// share 'x' hands X rows round a quad with quadBroadcast (needs subgroups).
// Run: npx tsx scripts/gen_matmul_kernels.mts   (rewrites every file below; with a folder
// argument, writes them under FOLDER/shaders/ instead: test/generated_shaders.spec.ts compares)
// wType 'f16': W is f16 storage (src/core/half.ts): array<vec2<u32>>, 4 halves per vec4 index,
// unpacked with the core unpack2x16float (no extension), f32 math; optional column gains (GAIN).
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
// f16 storage: four weights from one vec2<u32> (element 2i in the low half); column gains are
// f32 words in W, read at a vec2 index.
const HALF_FNS = `fn half4(v: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y)); }
fn gain4(i: u32) -> vec4<f32> { return bitcast<vec4<f32>>(vec4<u32>(W[i], W[i + 1u])); }`;
const F32_PARAMS = 'wOffset: u32, xBatch: u32, wBatch: u32, yBatch: u32, bandMode: u32, bandRows: u32, bandEnd: u32, _pad: u32';
// The causal band, shared by the f32 kernels: row m of X only needs columns n (bandMode 1) or K
// indices (bandMode 2) below (m % bandRows) + bandEnd. Rows are query rows (bandRows of them per
// stacked head) and columns/K are keys, so attention skips blocks wholly above the diagonal.
// bandLimit is the exclusive bound for rows m0..m1 (a block that wraps a head gets the widest).
// Branch-free: any branch ahead of quadBroadcast (even a uniform one) corrupts it on SwiftShader.
export const BAND_FN = `fn bandLimit(m0: u32, m1: u32) -> u32 {
  let wraps = m0 % p.bandRows + (m1 - m0) >= p.bandRows;
  return select(m1 % p.bandRows, p.bandRows - 1u, wraps) + p.bandEnd;
}`;
export function gen(R: number, C: number, share: 'none' | 'x' | 'w', unroll = 1, acc = 'dot', wType: 'f32' | 'f16' = 'f32'): string {
  const L: string[] = [];
  const sub = share !== 'none';
  const half = wType === 'f16';
  if (half && sub) throw new Error('gen: f16 weights only without sharing');
  if (sub) L.push('enable subgroups;');
  // f32 weights also take a W offset, a batch over workgroup z (attention: one GEMM per KV head)
  // and the causal band (see F32_BAND_CONTRACT).
  const ext = !half;
  L.push(`struct Params { M: u32, N: u32, K: u32, xOffset: u32, yOffset: u32, accumulate: u32, hasBias: u32, ${half ? '_pad: u32, gainsOffset: u32, gainRows: u32' : F32_PARAMS} }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> W: array<${half ? 'vec2<u32>' : 'vec4<f32>'}>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
override WG_N: u32 = 16;
override WG_M: u32 = 4;${half ? `
override GAIN: bool = false;
${HALF_FNS}` : `
${BAND_FN}`}
@compute @workgroup_size(WG_N * WG_M)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {`);
  if (share === 'w') L.push(`  let im = li % WG_M; let inn = li / WG_M;`); else L.push(`  let inn = li % WG_N; let im = li / WG_N;`);
  L.push(`  let n0 = (wid.x * WG_N + inn) * ${C}u;
  let m0 = (wid.y * WG_M + im) * ${R}u;
  let K4 = p.K / 4u; let q = li & 3u;`);
  if (ext) L.push(`  let xb = (p.xOffset + wid.z * p.xBatch) / 4u; let wb = (p.wOffset + wid.z * p.wBatch) / 4u; let yb = p.yOffset + wid.z * p.yBatch;`);
  else L.push(`  let xb = p.xOffset / 4u; let wb = 0u; let yb = p.yOffset;`);
  if (!sub) L.push(`  if (n0 >= p.N || m0 >= p.M) { return; }`);
  // Band: skip this block's columns (mode 1) or stop K early (mode 2). With quadBroadcast the whole workgroup
  // decides together, without a branch (a skipped tile runs zero K steps and writes zeros): on SwiftShader a loop
  // bound or branch that differs between invocations ahead of quadBroadcast corrupts it.
  if (!ext) L.push(`  let KE = K4;`);
  else {
    if (sub) L.push(`  let mw = wid.y * WG_M * ${R}u;
  let lim = bandLimit(mw, min(mw + WG_M * ${R}u - 1u, p.M - 1u));
  let KE = select(K4, min(K4, (lim + 3u) / 4u), p.bandMode == 2u) * select(1u, 0u, p.bandMode == 1u && wid.x * WG_N * ${C}u >= lim);`);
    else L.push(`  let lim = bandLimit(m0, min(m0 + ${R - 1}u, p.M - 1u));
  if (p.bandMode == 1u && n0 >= lim) { return; }
  let KE = select(K4, min(K4, (lim + 3u) / 4u), p.bandMode == 2u);`);
  }
  // row/col base indices
  const xLoads: string[] = [], wLoads: string[] = [];
  if (share === 'x') { for (let t = 0; t < R / 4; t++) L.push(`  let xr${t} = xb + min(m0 + q * ${R / 4}u + ${t}u, p.M - 1u) * K4;`); }
  else for (let r = 0; r < R; r++) L.push(`  let xr${r} = xb + min(m0 + ${r}u, p.M - 1u) * K4;`);
  if (share === 'w') { for (let t = 0; t < C / 4; t++) L.push(`  let wr${t} = wb + min(n0 + q * ${C / 4}u + ${t}u, p.N - 1u) * K4;`); }
  else for (let c = 0; c < C; c++) L.push(`  let wr${c} = wb + min(n0 + ${c}u, p.N - 1u) * K4;${half ? ` let gr${c} = p.gainsOffset / 2u + min(n0 + ${c}u, p.N - 1u) / max(p.gainRows, 1u) * (p.K / 2u);` : ''}`);
  for (let r = 0; r < R; r++) for (let cb = 0; cb < C / 4; cb++) L.push(`  var a${r}_${cb} = vec4<f32>();`);
  const body = (kk: string) => {
    const B: string[] = [];
    if (share === 'w') {
      for (let t = 0; t < C / 4; t++) B.push(`    let wl${t} = W[wr${t} + ${kk}];`);
      for (let c = 0; c < C; c++) B.push(`    let w${c} = quadBroadcast(wl${c % (C / 4)}, ${Math.floor(c / (C / 4))}u);`);
    } else if (half) {
      for (let c = 0; c < C; c++) B.push(`    var w${c} = half4(W[wr${c} + ${kk}]); if (GAIN) { w${c} *= gain4(gr${c} + 2u * (${kk})); }`);
    } else for (let c = 0; c < C; c++) B.push(`    let w${c} = W[wr${c} + ${kk}];`);
    if (share === 'x') {
      for (let t = 0; t < R / 4; t++) B.push(`    let xl${t} = X[xr${t} + ${kk}];`);
    }
    for (let r = 0; r < R; r++) {
      if (share === 'x') B.push(`    let x${r} = quadBroadcast(xl${r % (R / 4)}, ${Math.floor(r / (R / 4))}u);`);
      else B.push(`    let x${r} = X[xr${r} + ${kk}];`);
      for (let cb = 0; cb < C / 4; cb++) {
        if (acc === 'dot') B.push(`    a${r}_${cb} += vec4(dot(x${r}, w${cb * 4}), dot(x${r}, w${cb * 4 + 1}), dot(x${r}, w${cb * 4 + 2}), dot(x${r}, w${cb * 4 + 3}));`);
        else for (const cc of ['x', 'y', 'z', 'w']) {
          const wv = `vec4(w${cb * 4}.${cc}, w${cb * 4 + 1}.${cc}, w${cb * 4 + 2}.${cc}, w${cb * 4 + 3}.${cc})`;
          if (acc === 'fma') B.push(`    a${r}_${cb} = fma(vec4(x${r}.${cc}), ${wv}, a${r}_${cb});`);
          else B.push(`    a${r}_${cb} += x${r}.${cc} * ${wv};`);
        }
      }
    }
    return B.join('\n');
  };
  if (unroll > 1) {
    L.push(`  var k = 0u;\n  for (; k + ${unroll - 1}u < KE; k += ${unroll}u) {`);
    for (let u = 0; u < unroll; u++) L.push(`   {\n${body(`k + ${u}u`)}\n   }`);
    L.push(`  }\n  for (; k < KE; k++) {\n${body('k')}\n  }`);
  } else L.push(`  for (var k = 0u; k < KE; k++) {\n${body('k')}\n  }`);
  L.push(`  var acc = array<vec4<f32>, ${R * C / 4}>(${Array.from({ length: R }, (_, r) => Array.from({ length: C / 4 }, (_, cb) => `a${r}_${cb}`)).flat().join(', ')});
  for (var i = 0u; i < ${R}u; i++) {
    let m = m0 + i; if (m >= p.M) { break; }
    for (var j = 0u; j < ${C}u; j++) {
      let n = n0 + j; if (n >= p.N) { break; }
      let yi = yb + m * p.N + n;
      var v = acc[i * ${C / 4}u + j / 4u][j % 4u];
      if (p.accumulate != 0u) { v += Y[yi]; }
      if (p.hasBias != 0u) { v += B[n]; }
      Y[yi] = v;
    }
  }
}`);
  return L.join('\n') + '\n';
}
// The int4 (q4) variants: same contract, W packed by src/core/quant.ts (nibbles, then f32 scales
// at scalesOffset, then f32 offsets at minsOffset when asymmetric; minsOffset = 0: symmetric,
// m = -8 s). Per group of 32 k, each of the C columns loads its scale s and offset m once; per
// u32 word (8 k) its nibbles become two vec4 q * 16^i (mask in place, signed convert: no
// per-nibble shifts, and x86 has no unsigned convert); SC = 16^-i goes into the scale. 'dequant' (GEMM): w = fma(q, s, m) in registers, used for R rows.
// 'factored' (GEMV): sum_k x w = s * sum_k x q + m * sum_k x per group, so the per-element work
// is a single fma into a per-group partial. Whole groups run a fixed 4-word loop; a last
// partial group (K % 32 != 0) runs the same body with bounds (X past K zeroed).
// 'dequant' also takes column gains (override GAIN, used for POP's deep K/V): w *= gain[block(n), k].
export function genQ4(R: number, C: number, mode: 'dequant' | 'factored'): string {
  const L: string[] = [];
  L.push(`struct Params { M: u32, N: u32, K: u32, xOffset: u32, yOffset: u32, accumulate: u32, hasBias: u32, _pad: u32, scalesOffset: u32, minsOffset: u32, gainsOffset: u32, gainRows: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> W: array<u32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
override WG_N: u32 = 16;
override WG_M: u32 = 4;${mode === 'dequant' ? `
override GAIN: bool = false;` : ''}
// Nibble i of a half-word stays in place: q * 16^i (exact in f32); SC undoes the 16^i in the scale.
const NIB = vec4<u32>(0xFu, 0xF0u, 0xF00u, 0xF000u);
const SC = vec4<f32>(1.0, 0.0625, 0.00390625, 0.000244140625);
fn nib(u: u32) -> vec4<f32> { return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(u) & NIB)); }${mode === 'dequant' ? `
fn gain4(i: u32) -> vec4<f32> { return bitcast<vec4<f32>>(vec4<u32>(W[i], W[i + 1u], W[i + 2u], W[i + 3u])); }` : ''}
@compute @workgroup_size(WG_N * WG_M)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let inn = li % WG_N; let im = li / WG_N;
  let n0 = (wid.x * WG_N + inn) * ${C}u;
  let m0 = (wid.y * WG_M + im) * ${R}u;
  let K4 = p.K / 4u; let xb = p.xOffset / 4u;
  let G = (p.K + 31u) / 32u; let GF = p.K / 32u; let RW = G * 4u;
  if (n0 >= p.N || m0 >= p.M) { return; }
  let asym = p.minsOffset != 0u;`);
  for (let r = 0; r < R; r++) L.push(`  let xr${r} = xb + min(m0 + ${r}u, p.M - 1u) * K4;`);
  // For symmetric weights mr reads (unused) nibble words: in bounds, no branch.
  for (let c = 0; c < C; c++) L.push(`  let nc${c} = min(n0 + ${c}u, p.N - 1u); let wr${c} = nc${c} * RW; let sr${c} = p.scalesOffset + nc${c} * G; let mr${c} = select(0u, p.minsOffset, asym) + nc${c} * G;${mode === 'dequant' ? ` let gr${c} = p.gainsOffset + nc${c} / max(p.gainRows, 1u) * p.K;` : ''}`);
  for (let r = 0; r < R; r++) for (let cb = 0; cb < C / 4; cb++) L.push(`  var a${r}_${cb} = vec4<f32>();`);
  const fac = mode === 'factored';
  const group = (tail: boolean) => {
    const B: string[] = [];
    for (let c = 0; c < C; c++) B.push(`    let s${c} = bitcast<f32>(W[sr${c} + g]); let o${c} = select(-8.0 * s${c}, bitcast<f32>(W[mr${c} + g]), asym);${fac ? '' : ` let sv${c} = s${c} * SC;`}`);
    if (fac) {
      for (let r = 0; r < R; r++) { B.push(`    var xs${r} = vec4<f32>();`); for (let c = 0; c < C; c++) B.push(`    var p${r}_${c} = vec4<f32>();`); }
    }
    B.push(`    for (var j = 0u; j < 4u; j++) {
      let kw = g * 4u + j; let k4 = kw * 2u;`);
    if (tail) B.push(`      if (k4 >= K4) { break; }
      let hasHi = k4 + 1u < K4;`);
    for (let c = 0; c < C; c++) {
      B.push(`      let u${c} = W[wr${c} + kw];`);
      if (fac) B.push(`      let ql${c} = nib(u${c}); let qh${c} = nib(u${c} >> 16u);`);
      else {
        B.push(`      var wl${c} = fma(nib(u${c}), sv${c}, vec4(o${c})); var wh${c} = fma(nib(u${c} >> 16u), sv${c}, vec4(o${c}));`);
        // Past K (tail) the gain read may land anywhere in W: zero it, not just X, so no NaN gets in.
        B.push(`      if (GAIN) { wl${c} *= gain4(gr${c} + k4 * 4u); wh${c} *= ${tail ? `select(vec4<f32>(), gain4(gr${c} + k4 * 4u + 4u), hasHi)` : `gain4(gr${c} + k4 * 4u + 4u)`}; }`);
      }
    }
    for (let r = 0; r < R; r++) {
      B.push(`      let xl${r} = X[xr${r} + k4]; let xh${r} = ${tail ? `select(vec4<f32>(), X[xr${r} + k4 + 1u], hasHi)` : `X[xr${r} + k4 + 1u]`};`);
      if (fac) {
        B.push(`      xs${r} += xl${r} + xh${r};`);
        for (let c = 0; c < C; c++) B.push(`      p${r}_${c} = fma(xl${r}, ql${c}, fma(xh${r}, qh${c}, p${r}_${c}));`);
      } else for (let cb = 0; cb < C / 4; cb++) {
        const d = (c: number) => `dot(xl${r}, wl${c}) + dot(xh${r}, wh${c})`;
        B.push(`      a${r}_${cb} += vec4(${d(cb * 4)}, ${d(cb * 4 + 1)}, ${d(cb * 4 + 2)}, ${d(cb * 4 + 3)});`);
      }
    }
    B.push(`    }`);
    if (fac) {
      for (let r = 0; r < R; r++) {
        B.push(`    let xsum${r} = dot(xs${r}, vec4(1.0));`);
        for (let cb = 0; cb < C / 4; cb++) {
          const t = (c: number) => `fma(s${c}, dot(p${r}_${c}, SC), o${c} * xsum${r})`;
          B.push(`    a${r}_${cb} += vec4(${t(cb * 4)}, ${t(cb * 4 + 1)}, ${t(cb * 4 + 2)}, ${t(cb * 4 + 3)});`);
        }
      }
    }
    return B.join('\n');
  };
  L.push(`  for (var g = 0u; g < GF; g++) {\n${group(false)}\n  }`);
  L.push(`  if (GF < G) {\n    let g = GF;\n${group(true)}\n  }`);
  L.push(`  var acc = array<vec4<f32>, ${R * C / 4}>(${Array.from({ length: R }, (_, r) => Array.from({ length: C / 4 }, (_, cb) => `a${r}_${cb}`)).flat().join(', ')});
  for (var i = 0u; i < ${R}u; i++) {
    let m = m0 + i; if (m >= p.M) { break; }
    for (var j = 0u; j < ${C}u; j++) {
      let n = n0 + j; if (n >= p.N) { break; }
      let yi = p.yOffset + m * p.N + n;
      var v = acc[i * ${C / 4}u + j / 4u][j % 4u];
      if (p.accumulate != 0u) { v += Y[yi]; }
      if (p.hasBias != 0u) { v += B[n]; }
      Y[yi] = v;
    }
  }
}`);
  return L.join('\n') + '\n';
}
// The real-GPU shapes over f16 storage, one template for two arithmetics: T = 'f32' (core WGSL,
// unpack2x16float, f32 math: runs and is tested everywhere) and T = 'f16' ('enable f16;': halves
// bitcast straight from the words, X converted to f16, each 4-term dot product in f16, summed into
// f32 accumulators). Both files differ only in the alias H4, half4 and the extension line, so the
// f16 kernels' indexing is the tested f32 twin's.
function halfHeader(T: 'f32' | 'f16'): string {
  return `${T === 'f16' ? 'enable f16;\n' : ''}struct Params { M: u32, N: u32, K: u32, xOffset: u32, yOffset: u32, accumulate: u32, hasBias: u32, _pad: u32, gainsOffset: u32, gainRows: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> W: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
alias H4 = vec4<${T}>;
fn half4(v: vec2<u32>) -> H4 { return ${T === 'f16' ? 'H4(bitcast<vec2<f16>>(v.x), bitcast<vec2<f16>>(v.y))' : 'H4(unpack2x16float(v.x), unpack2x16float(v.y))'}; }
fn gain4(i: u32) -> vec4<f32> { return bitcast<vec4<f32>>(vec4<u32>(W[i], W[i + 1u])); }`;
}
export function genTiledHalf(T: 'f32' | 'f16'): string {
  return `${halfHeader(T)}

const TILE: u32 = 64u;   // rows of X and rows of W per tile
const BK4: u32 = 8u;     // K-slice per stage, in vec4 (= 32 values)
override WG_N: u32 = 16u;
override WG_M: u32 = 16u;
override GAIN: bool = false;

// [row][k4], padded by one vec4 per row to spread banks.
var<workgroup> Xs: array<H4, TILE * (BK4 + 1u)>;
var<workgroup> Ws: array<H4, TILE * (BK4 + 1u)>;

@compute @workgroup_size(WG_N, WG_M)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let K4 = p.K / 4u;
  let xb = p.xOffset / 4u;
  let mBase = wid.y * TILE;
  let nBase = wid.x * TILE;
  var acc: array<vec4<f32>, 4>;   // acc[i][j]: row mBase + lid.y + 16i, col nBase + lid.x + 16j
  for (var k0 = 0u; k0 < K4; k0 += BK4) {
    // Stage: 64 rows x 8 vec4 = 512 vec4 per operand, 256 invocations -> 2 each. Out-of-range -> 0.
    for (var t = 0u; t < 2u; t++) {
      let e = li + t * 256u;
      let r = e / BK4;
      let c = e % BK4;
      let k = k0 + c;
      let m = mBase + r;
      let n = nBase + r;
      var xv = H4(); var wv = H4();
      if (m < p.M && k < K4) { xv = H4(X[xb + m * K4 + k]); }
      if (n < p.N && k < K4) {
        // Column gains (f32 math; the f16 arithmetic path never gets them).
        if (GAIN) { wv = H4(vec4<f32>(half4(W[n * K4 + k])) * gain4(p.gainsOffset / 2u + n / max(p.gainRows, 1u) * (p.K / 2u) + 2u * k)); }
        else { wv = half4(W[n * K4 + k]); }
      }
      Xs[r * (BK4 + 1u) + c] = xv;
      Ws[r * (BK4 + 1u) + c] = wv;
    }
    workgroupBarrier();
    for (var c = 0u; c < BK4; c++) {
      var w: array<H4, 4>;
      for (var j = 0u; j < 4u; j++) { w[j] = Ws[(lid.x + 16u * j) * (BK4 + 1u) + c]; }
      for (var i = 0u; i < 4u; i++) {
        let x = Xs[(lid.y + 16u * i) * (BK4 + 1u) + c];
        acc[i] += vec4<f32>(H4(dot(x, w[0]), dot(x, w[1]), dot(x, w[2]), dot(x, w[3])));
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
`;
}
export function genMatvecWgHalf(T: 'f32' | 'f16'): string {
  return `${halfHeader(T)}
const ROWS: u32 = 4u;
override WG: u32 = 64u;
var<workgroup> red: array<vec4<f32>, 256>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let m = wid.y;
  let n0 = wid.x * ROWS;
  let K4 = p.K / 4u;
  let xr = p.xOffset / 4u + m * K4;
  var r: array<u32, 4>;
  for (var j = 0u; j < ROWS; j++) { r[j] = min(n0 + j, p.N - 1u) * K4; }
  var s = vec4<f32>();
  for (var k = li; k < K4; k += WG) {
    let x = H4(X[xr + k]);
    s += vec4<f32>(H4(dot(x, half4(W[r[0] + k])), dot(x, half4(W[r[1] + k])), dot(x, half4(W[r[2] + k])), dot(x, half4(W[r[3] + k]))));
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
      let yi = p.yOffset + m * p.N + n;
      var v = red[0][li];
      if (p.accumulate != 0u) { v += Y[yi]; }
      if (p.hasBias != 0u) { v += B[n]; }
      Y[yi] = v;
    }
  }
}
`;
}
const root = process.argv[2] ? pathToFileURL(resolve(process.argv[2]) + '/') : new URL('../', import.meta.url);
const F32_EXT_CONTRACT = `// Batch: workgroup z = b reads X at xOffset + b*xBatch, W at wOffset + b*wBatch and writes Y at yOffset + b*yBatch
// (attention runs one GEMM per KV head this way). Band (attention's causal mask, an optimisation hint): with
// bandMode 1 a block whose columns all lie at or past bandLimit of its rows is not computed (those Y entries are left
// as they were); with bandMode 2 the K loop stops at that limit (X must be zero past each row's own limit).
// Row m's limit is (m % bandRows) + bandEnd.`;
// matvec_f16w's register block: outputs per invocation and invocations per workgroup.
const MV_F16W = { c: 4, wg: 64 };
const fix = (src: string, wn: number, wm: number) => src.replace('override WG_N: u32 = 16;', `override WG_N: u32 = ${wn};`).replace('override WG_M: u32 = 4;', `override WG_M: u32 = ${wm};`);
writeFileSync(new URL('shaders/matmul_regblock.wgsl', root), `// matmul_regblock: Y[m,n] = sum_k X[xOffset + m*K + k] * W[n*K + k] (+Y_old if accumulate) (+B[n] if hasBias), f32.
// X: [M,K] row-major, W: [N,K] row-major (nn.Linear weight), Y: [M,N] row-major at yOffset.
// Requires K % 4 == 0 and xOffset % 4 == 0 (vec4 loads along K). No workgroup memory, no subgroups.
// Each invocation computes a 16 (m) x 16 (n) register block (scalar dot-accumulators, fully unrolled);
// the fastest shape measured on SwiftShader (fewer robust gathers per FLOP). Workgroup = WG_N * WG_M
// invocations (1-D), tile = (16*WG_N) n x (16*WG_M) m; defaults WG_N = WG_M = 2 -> tile 32 x 32.
// Dispatch grid: (ceil(N / (16*WG_N)), ceil(M / (16*WG_M)), batch). Generated by scripts/gen_matmul_kernels.mts.
${F32_EXT_CONTRACT}
` + fix(gen(16, 16, 'none'), 2, 2));
writeFileSync(new URL('shaders/matmul_regblock_quad.wgsl', root), `// matmul_regblock_quad: same contract as matmul_regblock.wgsl but needs the 'subgroups' device feature.
// Each invocation computes a 16 (m) x 16 (n) block; the 4 lanes of a quad share the same 16 rows and each loads
// only 4 of them (quadBroadcast hands them round), cutting X gathers 4x (subgroup size >= 4). Workgroup = WG_N * WG_M (1-D,
// WG_N must be a multiple of 4), tile = (16*WG_N) n x (16*WG_M) m; defaults WG_N = 4, WG_M = 1 -> tile 64 x 16.
// Dispatch grid: (ceil(N / (16*WG_N)), ceil(M / (16*WG_M)), 1). K % 4 == 0, xOffset % 4 == 0. Generated by scripts/gen_matmul_kernels.mts.
` + fix(gen(16, 16, 'x'), 4, 1));
writeFileSync(new URL('shaders/matvec.wgsl', root), `// matvec: GEMV for small M (decode, M = 1; correct for any M): Y[m,n] = sum_k X[xOffset + m*K + k] * W[n*K + k]
// (+Y_old if accumulate) (+B[n] if hasBias), f32. X: [M,K], W: [N,K] row-major, Y: [M,N] at yOffset.
// Requires K % 4 == 0 and xOffset % 4 == 0. Each invocation computes 4 consecutive outputs n of one row m.
// Workgroup = WG_N * WG_M (1-D); tile = (4*WG_N) n x WG_M m; defaults WG_N = 64, WG_M = 1 -> tile 256 x 1.
// Dispatch grid: (ceil(N / (4*WG_N)), ceil(M / WG_M), 1). Generated by scripts/gen_matmul_kernels.mts (1x4).
` + fix(gen(1, 4, 'none'), 64, 1));
const Q4_CONTRACT = `// Params add scalesOffset and minsOffset (u32 words into W; minsOffset = 0 means symmetric). W: array<u32> packed by
// src/core/quant.ts: row n's nibbles at words [n*RW, (n+1)*RW), RW = 4*ceil(K/32), word j = k 8j..8j+7, element 8j+i
// in bits 4i..; scales f32 [N, ceil(K/32)] at scalesOffset; offsets likewise at minsOffset. w = q*s + m, m = -8s when
// symmetric. Requires K % 4 == 0 and xOffset % 4 == 0; X past K is never read into a product (zeroed).
// Params also carry gainsOffset / gainRows (column gains: w *= gains[n / gainRows, k]), read only by matmul_q4 with GAIN = true.`;
writeFileSync(new URL('shaders/matmul_q4.wgsl', root), `// matmul_q4: Y[m,n] = sum_k X[xOffset + m*K + k] * dequant(W)[n, k] (+Y_old if accumulate) (+B[n] if hasBias), f32 math,
// int4 weights (group 32 along K). The prefill GEMM: like matmul_regblock, a 16 (m) x 16 (n) register block per
// invocation, no workgroup memory; weights are dequantized in registers once per word and used for 16 rows.
${Q4_CONTRACT}
// Workgroup = WG_N * WG_M (1-D), tile = (16*WG_N) n x (16*WG_M) m; defaults 2 x 2 -> 32 x 32.
// Dispatch grid: (ceil(N / (16*WG_N)), ceil(M / (16*WG_M)), 1). Generated by scripts/gen_matmul_kernels.mts.
` + fix(genQ4(16, 16, 'dequant'), 2, 2));
writeFileSync(new URL('shaders/matvec_q4.wgsl', root), `// matvec_q4: GEMV for small M (decode, M = 1; correct for any M) over int4 weights (group 32 along K):
// Y[m,n] = sum_k X[xOffset + m*K + k] * dequant(W)[n, k] (+Y_old if accumulate) (+B[n] if hasBias), f32 math.
${Q4_CONTRACT}
// Each invocation computes 8 consecutive outputs n of one row m, per group as s * sum(x q) + m * sum(x) (one fma per weight).
// Workgroup = WG_N * WG_M (1-D); tile = (8*WG_N) n x WG_M m; defaults WG_N = 8, WG_M = 1 -> tile 64 x 1.
// Dispatch grid: (ceil(N / (8*WG_N)), ceil(M / WG_M), 1). Generated by scripts/gen_matmul_kernels.mts (1x8, factored).
` + fix(genQ4(1, 8, 'factored'), 8, 1));
const HALF_CONTRACT = `// W: f16 storage packed by src/core/half.ts, array<vec2<u32>>: row n's 4 halves k4*4..k4*4+3 at vec2 index n*K/4 + k4,
// element 2i in the low 16 bits of word i. Params add gainsOffset / gainRows (u32 words into W): column gains,
// w = half(w) * gains[n / gainRows, k] in f32, read only with override GAIN = true (POP's deep K/V).
// Requires K % 4 == 0 and xOffset % 4 == 0.`;
writeFileSync(new URL('shaders/matmul_f16w.wgsl', root), `// matmul_f16w: Y[m,n] = sum_k X[xOffset + m*K + k] * half(W)[n, k] (+Y_old if accumulate) (+B[n] if hasBias), f32 math
// over f16 weights read with the core unpack2x16float (no extension: runs on every adapter). Like matmul_regblock, a
// 16 (m) x 16 (n) register block per invocation, no workgroup memory; each word pair is unpacked once for 16 rows.
${HALF_CONTRACT}
// Workgroup = WG_N * WG_M (1-D), tile = (16*WG_N) n x (16*WG_M) m; defaults 2 x 2 -> 32 x 32.
// Dispatch grid: (ceil(N / (16*WG_N)), ceil(M / (16*WG_M)), 1). Generated by scripts/gen_matmul_kernels.mts.
` + fix(gen(16, 16, 'none', 1, 'dot', 'f16'), 2, 2));
writeFileSync(new URL('shaders/matvec_f16w.wgsl', root), `// matvec_f16w: GEMV for small M (decode, M = 1; correct for any M) over f16 weights (core unpack2x16float, f32 math):
// Y[m,n] = sum_k X[xOffset + m*K + k] * half(W)[n, k] (+Y_old if accumulate) (+B[n] if hasBias).
${HALF_CONTRACT}
// Each invocation computes ${MV_F16W.c} consecutive outputs n of one row m.
// Workgroup = WG_N * WG_M (1-D); tile = (${MV_F16W.c}*WG_N) n x WG_M m; defaults WG_N = ${MV_F16W.wg}, WG_M = 1 -> tile ${MV_F16W.c * MV_F16W.wg} x 1.
// Dispatch grid: (ceil(N / (${MV_F16W.c}*WG_N)), ceil(M / WG_M), 1). Generated by scripts/gen_matmul_kernels.mts (1x${MV_F16W.c}).
` + fix(gen(1, MV_F16W.c, 'none', 1, 'dot', 'f16'), MV_F16W.wg, 1));
const TILED_HALF = (T: string) => `// Workgroup = 16 x 16 invocations, each a 4 (m) x 4 (n) register block strided by 16 inside the tile; tile = 64 (n) x 64 (m),
// K staged 32 at a time (8 vec4) in workgroup memory${T === 'f16' ? ' as f16' : ''}. Dispatch grid: (ceil(N / 64), ceil(M / 64), 1). WG_N/WG_M fixed at 16.
// Generated by scripts/gen_matmul_kernels.mts (genTiledHalf('${T}')).
`;
const WG_HALF = (T: string) => `// One workgroup of WG invocations computes ROWS = 4 outputs n of one row m: invocations split K (vec4 stride WG),
// then a shared-memory tree reduction (f32). WG a power of two <= 256 (default 64). Dispatch grid: (ceil(N / 4), M, 1).
// Generated by scripts/gen_matmul_kernels.mts (genMatvecWgHalf('${T}')).
`;
const UNTESTED = `// NEEDS the 'shader-f16' device feature. Selected only when gpu.features.shaderF16 (src/kernels/matmul_f16.ts refuses
// otherwise, so it is never compiled on adapters without it, SwiftShader included): it cannot run in this repository's
// tests. Its indexing is the same text as the f32 twin's, which is tested; its f16 arithmetic is checked at load
// against a CPU product (halfComputeWorks) before the engine uses it. X is converted to f16: |x| must stay < 65504.
`;
writeFileSync(new URL('shaders/matmul_tiled_f16w.wgsl', root), `// matmul_tiled_f16w: Y[m,n] = sum_k X[xOffset + m*K + k] * half(W)[n, k] (+Y_old if accumulate) (+B[n] if hasBias).
// matmul_tiled (workgroup-memory tiling, the real-GPU shape) over f16 weights, core unpack2x16float, f32 math.
${HALF_CONTRACT}
${TILED_HALF('f32')}` + genTiledHalf('f32'));
writeFileSync(new URL('shaders/matmul_f16.wgsl', root), `// matmul_f16: Y[m,n] = sum_k X[xOffset + m*K + k] * W[n, k] (+Y_old if accumulate) (+B[n] if hasBias) with f16
// ARITHMETIC: f16 weights and X converted to f16, each 4-term dot product in f16, accumulated in f32. The f16 twin of
// matmul_tiled_f16w (same text but for the types).
${UNTESTED}${HALF_CONTRACT}
${TILED_HALF('f16')}` + genTiledHalf('f16'));
writeFileSync(new URL('shaders/matvec_wg_f16w.wgsl', root), `// matvec_wg_f16w: workgroup-reduction GEMV (the real-GPU shape) over f16 weights, core unpack2x16float, f32 math:
// Y[m,n] = sum_k X[xOffset + m*K + k] * half(W)[n, k] (+Y_old if accumulate) (+B[n] if hasBias), any M.
${HALF_CONTRACT}
${WG_HALF('f32')}` + genMatvecWgHalf('f32'));
writeFileSync(new URL('shaders/matvec_f16.wgsl', root), `// matvec_f16: workgroup-reduction GEMV with f16 ARITHMETIC: Y[m,n] = sum_k X[xOffset + m*K + k] * W[n, k] (+Y_old if
// accumulate) (+B[n] if hasBias), any M; each 4-term dot product in f16, summed in f32. The f16 twin of matvec_wg_f16w.
${UNTESTED}${HALF_CONTRACT}
${WG_HALF('f16')}` + genMatvecWgHalf('f16'));
