// Generates the register-blocked matmul kernels (fully unrolled, so written by a program
// once and committed as plain WGSL): R rows x C cols per invocation (C a multiple of 4);
// share 'x' hands X rows round a quad with quadBroadcast (needs subgroups).
// Run: npx tsx scripts/gen_matmul_kernels.mts   (rewrites the three files below)
import { writeFileSync } from 'node:fs';
export function gen(R: number, C: number, share: 'none' | 'x' | 'w', unroll = 1, acc = 'dot'): string {
  const L: string[] = [];
  const sub = share !== 'none';
  if (sub) L.push('enable subgroups;');
  L.push(`struct Params { M: u32, N: u32, K: u32, xOffset: u32, yOffset: u32, accumulate: u32, hasBias: u32, _pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> W: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
override WG_N: u32 = 16;
override WG_M: u32 = 4;
@compute @workgroup_size(WG_N * WG_M)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {`);
  if (share === 'w') L.push(`  let im = li % WG_M; let inn = li / WG_M;`); else L.push(`  let inn = li % WG_N; let im = li / WG_N;`);
  L.push(`  let n0 = (wid.x * WG_N + inn) * ${C}u;
  let m0 = (wid.y * WG_M + im) * ${R}u;
  let K4 = p.K / 4u; let xb = p.xOffset / 4u; let q = li & 3u;`);
  if (!sub) L.push(`  if (n0 >= p.N || m0 >= p.M) { return; }`);
  // row/col base indices
  const xLoads: string[] = [], wLoads: string[] = [];
  if (share === 'x') { for (let t = 0; t < R / 4; t++) L.push(`  let xr${t} = xb + min(m0 + q * ${R / 4}u + ${t}u, p.M - 1u) * K4;`); }
  else for (let r = 0; r < R; r++) L.push(`  let xr${r} = xb + min(m0 + ${r}u, p.M - 1u) * K4;`);
  if (share === 'w') { for (let t = 0; t < C / 4; t++) L.push(`  let wr${t} = min(n0 + q * ${C / 4}u + ${t}u, p.N - 1u) * K4;`); }
  else for (let c = 0; c < C; c++) L.push(`  let wr${c} = min(n0 + ${c}u, p.N - 1u) * K4;`);
  for (let r = 0; r < R; r++) for (let cb = 0; cb < C / 4; cb++) L.push(`  var a${r}_${cb} = vec4<f32>();`);
  const body = (kk: string) => {
    const B: string[] = [];
    if (share === 'w') {
      for (let t = 0; t < C / 4; t++) B.push(`    let wl${t} = W[wr${t} + ${kk}];`);
      for (let c = 0; c < C; c++) B.push(`    let w${c} = quadBroadcast(wl${c % (C / 4)}, ${Math.floor(c / (C / 4))}u);`);
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
    L.push(`  var k = 0u;\n  for (; k + ${unroll - 1}u < K4; k += ${unroll}u) {`);
    for (let u = 0; u < unroll; u++) L.push(`   {\n${body(`k + ${u}u`)}\n   }`);
    L.push(`  }\n  for (; k < K4; k++) {\n${body('k')}\n  }`);
  } else L.push(`  for (var k = 0u; k < K4; k++) {\n${body('k')}\n  }`);
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
// The int4 (q4) variants: same contract, W packed by src/ops/quant.ts (nibbles, then f32 scales
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
const root = new URL('../', import.meta.url);
const fix = (src: string, wn: number, wm: number) => src.replace('override WG_N: u32 = 16;', `override WG_N: u32 = ${wn};`).replace('override WG_M: u32 = 4;', `override WG_M: u32 = ${wm};`);
writeFileSync(new URL('shaders/matmul_regblock.wgsl', root), `// matmul_regblock: Y[m,n] = sum_k X[xOffset + m*K + k] * W[n*K + k] (+Y_old if accumulate) (+B[n] if hasBias), f32.
// X: [M,K] row-major, W: [N,K] row-major (nn.Linear weight), Y: [M,N] row-major at yOffset.
// Requires K % 4 == 0 and xOffset % 4 == 0 (vec4 loads along K). No workgroup memory, no subgroups.
// Each invocation computes a 16 (m) x 16 (n) register block (scalar dot-accumulators, fully unrolled);
// the fastest shape measured on SwiftShader (fewer robust gathers per FLOP). Workgroup = WG_N * WG_M
// invocations (1-D), tile = (16*WG_N) n x (16*WG_M) m; defaults WG_N = WG_M = 2 -> tile 32 x 32.
// Dispatch grid: (ceil(N / (16*WG_N)), ceil(M / (16*WG_M)), 1). Generated by scripts/gen_matmul_kernels.mts.
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
// src/ops/quant.ts: row n's nibbles at words [n*RW, (n+1)*RW), RW = 4*ceil(K/32), word j = k 8j..8j+7, element 8j+i
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
