// Every WGSL kernel against its CPU twin on the real WebGPU adapter (SwiftShader here).
// Cases are data: shapes (including ones that do not divide the tiles), flags, tolerance.
// Error = max|gpu - cpu| / max(1, max|cpu|); for `sample`, the fraction of differing draws.
import { test, expect } from './fixtures.ts';
import type { KernelCase } from './kernel_cases.ts';

const F32_EXACT = 1e-5; // one rounding per element
const F32_DOT = 1e-4; //   f32 accumulation over K terms
// f16 KV cache: the GPU's pack2x16float and the twin's round-to-nearest-even see f32 inputs that may
// differ in the last bits, so a stored value may land on the other neighbouring half: at most 1 ulp
// of f16 (2^-10 relative, normalized by max(1, |max|)); measured here: 0 (SwiftShader rounds to
// nearest even too). Attention then reads the same halves on both sides: f32 accumulation error.
const F16_STORE = 1e-3;
const F16_KV_ATTENTION = F32_DOT;

const CASES: (KernelCase & { name: string; tol: number })[] = [
  { name: 'embed 7x64 scale 1', op: 'embed', rows: 7, hidden: 64, vocab: 512, scale: 1, tol: F32_EXACT },
  { name: 'embed 3x576 scale sqrt(h)', op: 'embed', rows: 3, hidden: 576, vocab: 100, scale: 24, tol: F32_EXACT },
  // Gathers from int4 / f16 tables (no f32 copy: the tied LM head shares them); hidden % 32 != 0; row parts.
  ...[{ scheme: 'q4' }, { scheme: 'q4-asym' }, { half: true }].flatMap((st) => [
    { name: `embed ${st.scheme ?? 'f16'} 9x172 scale 2`, op: 'embed_stored', ...st, rows: 9, hidden: 172, vocab: 300, scale: 2, tol: F32_EXACT },
    { name: `embed ${st.scheme ?? 'f16'} 5x64 over row parts`, op: 'embed_stored', ...st, rows: 5, hidden: 64, vocab: 512, scale: 1, maxBindingBytes: 8192, tol: F32_EXACT },
  ]),
  { name: 'rms_norm 5x64 gain', op: 'rms_norm', rows: 5, dim: 64, gain: true, tol: F32_EXACT },
  { name: 'rms_norm 3x576 no gain', op: 'rms_norm', rows: 3, dim: 576, gain: false, tol: F32_EXACT },
  { name: 'rms_norm 2x172 in place', op: 'rms_norm', rows: 2, dim: 172, gain: true, inplace: true, tol: F32_EXACT },
  ...['regblock', 'regblock_quad', 'tiled', 'tiled_db', 'matvec', 'matvec_wg'].flatMap((variant) => [
    { name: `matmul ${variant} 7x172x64`, op: 'matmul', variant, m: 7, n: 172, k: 64, tol: F32_DOT },
    { name: `matmul ${variant} 1x100x12 bias`, op: 'matmul', variant, m: 1, n: 100, k: 12, bias: true, tol: F32_DOT },
    { name: `matmul ${variant} 33x100x12 accumulate`, op: 'matmul', variant, m: 33, n: 100, k: 12, accumulate: true, tol: F32_DOT },
    { name: `matmul ${variant} 70x130x576 bias+acc, row offset`, op: 'matmul', variant, m: 70, n: 130, k: 576, bias: true, accumulate: true, xRow: 3, tol: F32_DOT },
    { name: `matmul ${variant} 1x512x64 (lm head)`, op: 'matmul', variant, m: 1, n: 512, k: 64, tol: F32_DOT },
    { name: `matmul ${variant} 3x37x172 bias+acc (M = 3, N below a tile)`, op: 'matmul', variant, m: 3, n: 37, k: 172, bias: true, accumulate: true, tol: F32_DOT },
  ]),
  ...(['q4', 'q4-asym'] as const).flatMap((scheme) => ['regblock_q4', 'tiled_q4', 'matvec_q4', 'matvec_q4_wg', 'matvec_q4_sg'].flatMap((variant) => [
    { name: `matmul_q4 ${scheme} ${variant} 7x172x64`, op: 'matmul_q4', scheme, variant, m: 7, n: 172, k: 64, tol: F32_DOT },
    { name: `matmul_q4 ${scheme} ${variant} 1x100x12 bias (K < group)`, op: 'matmul_q4', scheme, variant, m: 1, n: 100, k: 12, bias: true, tol: F32_DOT },
    { name: `matmul_q4 ${scheme} ${variant} 33x100x172 accumulate (K % 8 = 4)`, op: 'matmul_q4', scheme, variant, m: 33, n: 100, k: 172, accumulate: true, tol: F32_DOT },
    { name: `matmul_q4 ${scheme} ${variant} 70x130x576 bias+acc, row offset`, op: 'matmul_q4', scheme, variant, m: 70, n: 130, k: 576, bias: true, accumulate: true, xRow: 3, tol: F32_DOT },
    { name: `matmul_q4 ${scheme} ${variant} 1x67x1540`, op: 'matmul_q4', scheme, variant, m: 1, n: 67, k: 1540, tol: F32_DOT },
    { name: `matmul_q4 ${scheme} ${variant} 3x37x172 bias+acc (M = 3, K % 32 = 12)`, op: 'matmul_q4', scheme, variant, m: 3, n: 37, k: 172, bias: true, accumulate: true, tol: F32_DOT },
    { name: `matmul_q4 ${scheme} ${variant} 1x5x100 (N < one tile)`, op: 'matmul_q4', scheme, variant, m: 1, n: 5, k: 100, tol: F32_DOT },
  ])),
  ...(['q4', 'q4-asym'] as const).flatMap((scheme) => [
    { name: `matmul_q4 ${scheme} column gains 37x96x64 (deep K/V)`, op: 'matmul_q4', scheme, m: 37, n: 96, k: 64, gainRows: 16, bias: true, tol: F32_DOT },
    { name: `matmul_q4 ${scheme} column gains 1x120x172 (K % 8 = 4)`, op: 'matmul_q4', scheme, m: 1, n: 120, k: 172, gainRows: 24, tol: F32_DOT },
    // The workgroup-tiled GEMM applies the gains while it dequantizes the tile (never past K).
    { name: `matmul_q4 ${scheme} tiled_q4 column gains 67x96x72 (K % 32 = 8, M past a tile)`, op: 'matmul_q4', scheme, variant: 'tiled_q4', m: 67, n: 96, k: 72, gainRows: 16, bias: true, accumulate: true, tol: F32_DOT },
    { name: `matmul_q4 ${scheme} tiled_q4 column gains 1x120x172 (K % 8 = 4)`, op: 'matmul_q4', scheme, variant: 'tiled_q4', m: 1, n: 120, k: 172, gainRows: 24, tol: F32_DOT },
  ]),
  // Decode fusions (RMSNorm / GLU folded into the q4 GEMV's load): the kernel itself at any M, through
  // GpuOps with the probe's choice set to fused, and the separate passes; K % 32 != 0, N not a multiple of the
  // 16-row workgroup, N < one workgroup, M = 3, gain / bias / accumulate, a weight in row parts (runs apart).
  ...(['q4', 'q4-asym'] as const).flatMap((scheme) => (scheme === 'q4' ? ['fused', 'ops', 'separate'] : ['fused', 'ops']).flatMap((variant) => [
    { name: `norm_matmul ${scheme} ${variant} 1x37x172 gain+bias`, op: 'norm_matmul', scheme, variant, m: 1, n: 37, k: 172, bias: true, tol: F32_DOT },
    { name: `norm_matmul ${scheme} ${variant} 3x21x64 no gain (M = 3)`, op: 'norm_matmul', scheme, variant, m: 3, n: 21, k: 64, gain: false, tol: F32_DOT },
    { name: `norm_matmul ${scheme} ${variant} 1x5x100 (N < one workgroup)`, op: 'norm_matmul', scheme, variant, m: 1, n: 5, k: 100, tol: F32_DOT },
    { name: `glu_matmul ${scheme} ${variant} silu 1x37x172 accumulate`, op: 'glu_matmul', scheme, variant, m: 1, n: 37, k: 172, accumulate: true, tol: F32_DOT },
    { name: `glu_matmul ${scheme} ${variant} gelu_tanh 3x21x100 (M = 3)`, op: 'glu_matmul', scheme, variant, m: 3, n: 21, k: 100, act: 'gelu_tanh', tol: F32_DOT },
  ])),
  { name: 'norm_matmul q4 ops, weight in row parts (runs apart)', op: 'norm_matmul', scheme: 'q4', variant: 'ops', m: 1, n: 64, k: 64, maxBindingBytes: 1024, tol: F32_DOT },
  { name: 'glu_matmul q4 ops, weight in row parts (runs apart)', op: 'glu_matmul', scheme: 'q4', variant: 'ops', m: 1, n: 64, k: 64, maxBindingBytes: 1024, tol: F32_DOT },
  // f16 weight storage (core unpack2x16float, f32 math) vs the CPU twin on the same f16-rounded weights.
  ...['regblock_f16w', 'matvec_f16w', 'tiled_f16w', 'matvec_wg_f16w'].flatMap((variant) => [
    { name: `matmul_f16 ${variant} 7x172x64`, op: 'matmul_f16', variant, m: 7, n: 172, k: 64, tol: F32_DOT },
    { name: `matmul_f16 ${variant} 1x100x12 bias`, op: 'matmul_f16', variant, m: 1, n: 100, k: 12, bias: true, tol: F32_DOT },
    { name: `matmul_f16 ${variant} 33x100x172 accumulate`, op: 'matmul_f16', variant, m: 33, n: 100, k: 172, accumulate: true, tol: F32_DOT },
    { name: `matmul_f16 ${variant} 70x130x576 bias+acc, row offset`, op: 'matmul_f16', variant, m: 70, n: 130, k: 576, bias: true, accumulate: true, xRow: 3, tol: F32_DOT },
    { name: `matmul_f16 ${variant} 1x512x64 (lm head)`, op: 'matmul_f16', variant, m: 1, n: 512, k: 64, tol: F32_DOT },
  ]),
  ...['regblock_f16w', 'tiled_f16w'].flatMap((variant) => [
    { name: `matmul_f16 ${variant} column gains 37x96x64 (deep K/V)`, op: 'matmul_f16', variant, m: 37, n: 96, k: 64, gainRows: 16, bias: true, tol: F32_DOT },
    { name: `matmul_f16 ${variant} column gains 1x120x172 (K % 8 = 4)`, op: 'matmul_f16', variant, m: 1, n: 120, k: 172, gainRows: 24, tol: F32_DOT },
  ]),
  { name: 'f16 arithmetic kernels are never compiled without shader-f16', op: 'f16_guard', tol: 0 },
  { name: 'f16 arithmetic load check passes on the f32 twins', op: 'f16_check', tol: 0 },
  { name: 'rope 5x8 heads hd 8', op: 'rope', rows: 5, heads: 8, headDim: 8, startPos: 0, tol: F32_DOT },
  { name: 'rope hd 64 pos 300 theta 1e5', op: 'rope', rows: 3, heads: 3, headDim: 64, startPos: 300, theta: 100000, tol: F32_DOT },
  { name: 'rope llama3 scaling', op: 'rope', rows: 2, heads: 2, headDim: 64, startPos: 5000, theta: 500000, scaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 }, tol: F32_DOT },
  { name: 'rope with q-norm hd 128', op: 'rope', rows: 3, heads: 2, headDim: 128, startPos: 7, norm: true, tol: F32_DOT },
  { name: 'kv_write crosses pages', op: 'kv_write', rows: 37, startPos: 0, kvHeads: 4, headDim: 8, pageSize: 16, tol: F32_DOT },
  { name: 'kv_write with k-norm', op: 'kv_write', rows: 9, startPos: 0, kvHeads: 2, headDim: 64, pageSize: 4, norm: true, tol: F32_DOT },
  { name: 'attention prefill 20 rows GQA 8/4 hd 8', op: 'attention', rows: 20, startPos: 0, heads: 8, kvHeads: 4, headDim: 8, pageSize: 16, tol: F32_DOT },
  { name: 'attention prefill chunk at pos 30 hd 64', op: 'attention', rows: 17, startPos: 30, heads: 9, kvHeads: 3, headDim: 64, pageSize: 16, tol: F32_DOT },
  { name: 'attention prefill sliding window 8', op: 'attention', rows: 25, startPos: 0, heads: 4, kvHeads: 1, headDim: 16, pageSize: 4, window: 8, tol: F32_DOT },
  { name: 'attention decode pos 0', op: 'attention', rows: 1, startPos: 0, heads: 8, kvHeads: 4, headDim: 8, pageSize: 16, tol: F32_DOT },
  { name: 'attention decode pos 77 hd 64', op: 'attention', rows: 1, startPos: 77, heads: 9, kvHeads: 3, headDim: 64, pageSize: 16, tol: F32_DOT },
  { name: 'attention decode hd 256 window 20', op: 'attention', rows: 1, startPos: 50, heads: 4, kvHeads: 1, headDim: 256, pageSize: 8, window: 20, tol: F32_DOT },
  // The GEMM path (software adapters' prefill) over each f32 matmul variant: causal band, GQA
  // stacking, keys not a multiple of 4, sliding window, and key ends (bidirectional spans).
  ...['regblock', 'regblock_quad', 'tiled', 'tiled_db'].flatMap((gemmMatmul) => [
    { name: `attention gemm/${gemmMatmul}: 37 rows GQA 9/3 hd 64`, op: 'attention', variant: 'gemm', gemmMatmul, rows: 37, startPos: 0, heads: 9, kvHeads: 3, headDim: 64, pageSize: 16, tol: F32_DOT },
    { name: `attention gemm/${gemmMatmul}: 21 rows after 50 cached, window 30`, op: 'attention', variant: 'gemm', gemmMatmul, rows: 21, startPos: 50, heads: 4, kvHeads: 2, headDim: 32, pageSize: 8, window: 30, tol: F32_DOT },
    { name: `attention gemm/${gemmMatmul}: 40 rows at pos 7, image span [12, 30)`, op: 'attention', variant: 'gemm', gemmMatmul, rows: 40, startPos: 7, heads: 8, kvHeads: 4, headDim: 16, pageSize: 16, spans: [[12, 30]], tol: F32_DOT },
  ]),
  { name: 'attention gemm: 45 rows in slices of 12 (score ceiling) after 20 cached', op: 'attention', variant: 'gemm', rows: 45, startPos: 20, heads: 4, kvHeads: 4, headDim: 16, pageSize: 16, maxScores: 4 * 12 * 68, tol: F32_DOT },
  { name: 'attention gemm: 130 rows (two 16-row blocks wrap heads) hd 8', op: 'attention', variant: 'gemm', rows: 130, startPos: 3, heads: 6, kvHeads: 2, headDim: 8, pageSize: 16, tol: F32_DOT },
  { name: 'attention rows8: 20 rows, image span [4, 15), window 9', op: 'attention', variant: 'rows8', rows: 20, startPos: 2, heads: 4, kvHeads: 2, headDim: 16, pageSize: 8, window: 9, spans: [[4, 15]], tol: F32_DOT },
  // Flash-attention prefill (32 rows per workgroup; key tiles of min(32, 512 / (headDim / 4))): rows past one
  // workgroup and not a multiple of it, GQA, a window, prompt rows after cached ones, key ends, the widest heads.
  { name: 'attention flash: 37 rows GQA 9/3 hd 64', op: 'attention', variant: 'flash', rows: 37, startPos: 0, heads: 9, kvHeads: 3, headDim: 64, pageSize: 16, tol: F32_DOT },
  { name: 'attention flash: 21 rows after 50 cached, window 30, hd 32', op: 'attention', variant: 'flash', rows: 21, startPos: 50, heads: 4, kvHeads: 2, headDim: 32, pageSize: 8, window: 30, tol: F32_DOT },
  { name: 'attention flash: 40 rows at pos 7, image span [12, 30), window 9', op: 'attention', variant: 'flash', rows: 40, startPos: 7, heads: 8, kvHeads: 4, headDim: 16, pageSize: 16, window: 9, spans: [[12, 30]], tol: F32_DOT },
  { name: 'attention flash: 3 rows after 90 cached, hd 256 (tiles of 8 keys)', op: 'attention', variant: 'flash', rows: 3, startPos: 90, heads: 4, kvHeads: 1, headDim: 256, pageSize: 8, tol: F32_DOT },
  { name: 'attention flash: 70 rows hd 16 (MHA), pages of 4', op: 'attention', variant: 'flash', rows: 70, startPos: 3, heads: 2, kvHeads: 2, headDim: 16, pageSize: 4, tol: F32_DOT },
  // Flash-decoding (chunks of 64 keys here, so short contexts still span several chunks; the last partial).
  { name: 'attention flash_decode: decode pos 0', op: 'attention', variant: 'flash_decode', decodeChunk: 64, rows: 1, startPos: 0, heads: 8, kvHeads: 4, headDim: 8, pageSize: 16, tol: F32_DOT },
  { name: 'attention flash_decode: decode pos 77 hd 64 (2 chunks)', op: 'attention', variant: 'flash_decode', decodeChunk: 64, rows: 1, startPos: 77, heads: 9, kvHeads: 3, headDim: 64, pageSize: 16, tol: F32_DOT },
  { name: 'attention flash_decode: decode pos 300 hd 80, chunk 256', op: 'attention', variant: 'flash_decode', rows: 1, startPos: 300, heads: 4, kvHeads: 2, headDim: 80, pageSize: 16, tol: F32_DOT },
  { name: 'attention flash_decode: hd 256 window 20 (empty chunks)', op: 'attention', variant: 'flash_decode', decodeChunk: 64, rows: 1, startPos: 150, heads: 4, kvHeads: 1, headDim: 256, pageSize: 8, window: 20, tol: F32_DOT },
  ...(['split_keys', 'rows8', 'flash_decode', 'flash'] as const).flatMap((variant) => [
    { name: `attention ${variant}: 7 new rows after 90 cached (multi-turn)`, op: 'attention', variant, rows: 7, startPos: 90, heads: 9, kvHeads: 3, headDim: 64, pageSize: 16, tol: F32_DOT },
    { name: `attention ${variant}: 5 rows after 40 cached, window 12`, op: 'attention', variant, rows: 5, startPos: 40, heads: 4, kvHeads: 2, headDim: 32, pageSize: 8, window: 12, tol: F32_DOT },
  ]),
  // f16 KV cache (src/kv/): the write path and every kernel that reads the cache, over pages, GQA, windows and key ends.
  { name: 'kv_write f16 crosses pages', op: 'kv_write', kvDtype: 'f16', rows: 37, startPos: 0, kvHeads: 4, headDim: 8, pageSize: 16, tol: F16_STORE },
  { name: 'kv_write f16 with k-norm hd 64', op: 'kv_write', kvDtype: 'f16', rows: 9, startPos: 0, kvHeads: 2, headDim: 64, pageSize: 4, norm: true, tol: F16_STORE },
  { name: 'attention f16 KV: decode pos 77 hd 64 (default route)', op: 'attention', kvDtype: 'f16', rows: 1, startPos: 77, heads: 9, kvHeads: 3, headDim: 64, pageSize: 16, tol: F16_KV_ATTENTION },
  { name: 'attention f16 KV: flash_decode pos 150 hd 36 window 100 (3 chunks, hd/4 odd)', op: 'attention', kvDtype: 'f16', variant: 'flash_decode', decodeChunk: 64, rows: 1, startPos: 150, heads: 4, kvHeads: 2, headDim: 36, pageSize: 8, window: 100, tol: F16_KV_ATTENTION },
  { name: 'attention f16 KV: split_keys 7 rows after 90 cached', op: 'attention', kvDtype: 'f16', variant: 'split_keys', rows: 7, startPos: 90, heads: 9, kvHeads: 3, headDim: 64, pageSize: 16, tol: F16_KV_ATTENTION },
  { name: 'attention f16 KV: rows8 20 rows, image span [4, 15), window 9, hd 20', op: 'attention', kvDtype: 'f16', variant: 'rows8', rows: 20, startPos: 2, heads: 4, kvHeads: 2, headDim: 20, pageSize: 8, window: 9, spans: [[4, 15]], tol: F16_KV_ATTENTION },
  { name: 'attention f16 KV: flash 40 rows at pos 7, image span [12, 30), window 9, hd 20', op: 'attention', kvDtype: 'f16', variant: 'flash', rows: 40, startPos: 7, heads: 8, kvHeads: 4, headDim: 20, pageSize: 16, window: 9, spans: [[12, 30]], tol: F16_KV_ATTENTION },
  { name: 'attention f16 KV: gemm 37 rows after 5 cached GQA 9/3 hd 36', op: 'attention', kvDtype: 'f16', variant: 'gemm', rows: 37, startPos: 5, heads: 9, kvHeads: 3, headDim: 36, pageSize: 16, tol: F16_KV_ATTENTION },
  { name: 'glu silu 3x172', op: 'glu', rows: 3, inter: 172, act: 'silu', tol: F32_DOT },
  { name: 'glu gelu_tanh 2x100', op: 'glu', rows: 2, inter: 100, act: 'gelu_tanh', tol: F32_DOT },
  { name: 'add 1000', op: 'add', n: 1000, tol: F32_EXACT },
  { name: 'add 3 rows of 48 at row offsets (DeepStack)', op: 'add', n: 3 * 48, outOffset: 5 * 48, aOffset: 2 * 48, tol: F32_EXACT },
  { name: 'softcap 300 cap 30', op: 'softcap', n: 300, cap: 30, tol: F32_DOT },
  { name: 'copy_rows', op: 'copy_rows', rows: 2, width: 64, srcRow: 5, dstRow: 1, tol: 0 },
  { name: 'layer_norm 5x64', op: 'layer_norm', rows: 5, dim: 64, tol: F32_EXACT },
  { name: 'layer_norm 3x768 (SigLIP width)', op: 'layer_norm', rows: 3, dim: 768, tol: F32_EXACT },
  { name: 'gelu 1000 (tanh, large |x|)', op: 'gelu', n: 1000, tol: F32_EXACT },
  { name: 'gelu 1000 exact (erf, large |x|)', op: 'gelu', n: 1000, exact: true, tol: F32_EXACT },
  { name: 'patchify 2 tiles 3x64x64 patch 16', op: 'patchify', tiles: 2, channels: 3, size: 64, patch: 16, tol: 0 },
  { name: 'patchify 1 tile 3x28x28 patch 14', op: 'patchify', tiles: 1, channels: 3, size: 28, patch: 14, tol: 0 },
  { name: 'attention_full 16 rows 4 heads hd 16', op: 'attention_full', seqLen: 16, seqs: 1, heads: 4, headDim: 16, tol: F32_DOT },
  { name: 'attention_full 3 seqs of 100 (partial blocks) hd 64, offset Q', op: 'attention_full', seqLen: 100, seqs: 3, heads: 2, headDim: 64, pad: 4, tol: F32_DOT },
  { name: 'attention_full 70 rows hd 8', op: 'attention_full', seqLen: 70, seqs: 1, heads: 3, headDim: 8, tol: F32_DOT },
  { name: 'attention_full rows8 kernel: 2 seqs of 37 hd 16', op: 'attention_full', variant: 'rows8', seqLen: 37, seqs: 2, heads: 2, headDim: 16, pad: 4, tol: F32_DOT },
  { name: 'pixel_shuffle 2 tiles side 8 dim 12 scale 2', op: 'pixel_shuffle', tiles: 2, side: 8, dim: 12, scale: 2, tol: 0 },
  { name: 'pixel_shuffle side 32 dim 8 scale 4', op: 'pixel_shuffle', tiles: 1, side: 32, dim: 8, scale: 4, tol: 0 },
  { name: 'avg_pool 2 tiles side 4 dim 12 kernel 2', op: 'avg_pool', tiles: 2, side: 4, dim: 12, kernel: 2, tol: F32_EXACT },
  { name: 'avg_pool side 12 dim 36 kernel 4 (Gemma 3: 64 -> 16 per side, scaled)', op: 'avg_pool', tiles: 1, side: 12, dim: 36, kernel: 4, tol: F32_EXACT },
  { name: 'avg_pool side 5 kernel 5 (one token)', op: 'avg_pool', tiles: 1, side: 5, dim: 7, kernel: 5, tol: F32_EXACT },
  { name: 'sample greedy vocab 512', op: 'sample', vocab: 512, draws: 20, temperature: 0, tol: 0 },
  { name: 'sample greedy vocab 49152', op: 'sample', vocab: 49152, draws: 5, temperature: 0, tol: 0 },
  { name: 'sample temperature 0.8 top-k 40 top-p 0.9', op: 'sample', vocab: 512, draws: 40, temperature: 0.8, topK: 40, topP: 0.9, tol: 0.03 },
  { name: 'sample temperature 1.0 vocab 1000', op: 'sample', vocab: 1000, draws: 40, temperature: 1.0, scale: 2, tol: 0.03 },
];

for (const c of CASES) {
  test(`kernel ${c.name} (tol ${c.tol})`, async ({ harness }) => {
    const res = await harness.evaluate((kc) => (globalThis as any).pop.runKernelCase(kc), c);
    expect(res.elements).toBeGreaterThan(0);
    expect(res.err, JSON.stringify(res)).toBeLessThanOrEqual(c.tol);
    if (c.maxBindingBytes) expect(res.extra.parts, 'stored as row parts').toBeGreaterThan(1);
    if (c.op === 'kv_write' && c.kvDtype === 'f16') {
      // The values really were rounded to f16 (an f32 store would show 0 here), in half the bytes.
      expect(res.extra.roundingErr).toBeGreaterThan(1e-5);
      expect(res.extra.bytes).toBe(res.extra.f32Bytes / 2);
    }
  });
}
