// Y[M, N] (+)= X[M, K] · dequant(W)[N, K]^T (+ bias) over int4 weights packed by
// src/core/quant.ts: the prefill GEMM (register-blocked, dequantized in registers; or
// workgroup-tiled, dequantized while the tile is loaded) and the decode GEMV. Same binding layout as matmul.ts; Params add the packed buffer's scalesOffset
// and minsOffset (u32 words), and column gains (POP's deep K/V, GEMM kernel only). GpuOps.matmul
// routes here when the weight buffer is quantized.
import matmulQ4Code from '../../shaders/matmul_q4.wgsl?raw';
import matvecQ4Code from '../../shaders/matvec_q4.wgsl?raw';
import matvecQ4WgCode from '../../shaders/matvec_q4_wg.wgsl?raw';
import matvecQ4SgCode from '../../shaders/matvec_q4_sg.wgsl?raw';
import tiledQ4Code from '../../shaders/matmul_tiled_q4.wgsl?raw';
import type { QuantInfo } from '../core/quant.ts';
import { pipeline, type KernelContext } from './context.ts';
import type { MatmulArgs, MatmulVariant } from './matmul.ts';
import { InternalError } from '../errors.ts';

export const MATMUL_Q4_VARIANTS: Record<string, MatmulVariant> = {
  // 16x16 register block per invocation, workgroup 2x2 (tile 32 x 32).
  regblock_q4: { code: matmulQ4Code, decode: false, tileM: 32, tileN: 32 },
  // GPU-shaped GEMM: 64 x 64 workgroup-memory tiles, the int4 words dequantized while the W tile is loaded, one q4
  // group of K per stage, double-buffered through registers.
  tiled_q4: { code: tiledQ4Code, decode: false, tileM: 64, tileN: 64 },
  // GEMV, 8 outputs per invocation, 8 invocations per workgroup (tile 64 x 1).
  matvec_q4: { code: matvecQ4Code, decode: true, tileM: 1, tileN: 64 },
  // GPU-shaped GEMVs: 16 lanes per block of 4 rows stride along K with vec4<u32> loads (coalesced); tile 16 x 1.
  // Reduced by a workgroup-memory tree, or by subgroupAdd where the adapter has subgroups.
  matvec_q4_wg: { code: matvecQ4WgCode, decode: true, tileM: 1, tileN: 16 },
  matvec_q4_sg: { code: matvecQ4SgCode, decode: true, subgroups: true, tileM: 1, tileN: 16 },
};

/** The q4 GEMV variants this adapter can compile. */
export function q4DecodeCandidates(gpu: { features: { subgroups: boolean } }): string[] {
  return Object.entries(MATMUL_Q4_VARIANTS).filter(([, v]) => v.decode && (!v.subgroups || gpu.features.subgroups)).map(([k]) => k);
}

/** The q4 GEMM variants (M > 1, and column gains at any M) the probe times. */
export const Q4_PREFILL_VARIANTS = Object.entries(MATMUL_Q4_VARIANTS).filter(([, v]) => !v.decode).map(([k]) => k);

/**
 * `decode`: the probe's GEMV for M = 1 (default matvec_q4, SwiftShader's best); `prefill`: its
 * GEMM for M > 1 and for column gains (default regblock_q4, SwiftShader's best).
 */
export function matmulQ4(ctx: KernelContext, a: MatmulArgs, q: QuantInfo, forceVariant?: string, decode = 'matvec_q4', prefill = 'regblock_q4'): void {
  if (a.k !== q.cols || a.n > q.rows) throw new InternalError(`matmul q4: weight is [${q.rows}, ${q.cols}], asked for n = ${a.n}, k = ${a.k}`);
  if (a.xOffset % 4) throw new InternalError(`matmul q4: xOffset = ${a.xOffset} must be a multiple of 4`);
  // Column gains live in the GEMM kernels only (the deep K/V GEMM runs at prefill; M = 1 is rare).
  const gain = q.gainsOffset !== 0;
  const name = forceVariant ?? (a.m === 1 && !gain ? decode : prefill);
  const v = MATMUL_Q4_VARIANTS[name];
  if (!v) throw new InternalError(`matmul q4: unknown variant ${name}`);
  if (gain && v.decode) throw new InternalError(`matmul q4: ${name} does not apply column gains`);
  if (v.subgroups && !ctx.gpu.features.subgroups) throw new InternalError(`matmul q4: ${name} needs the 'subgroups' feature, which this adapter lacks`);
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'matmul', variant: name, constants: gain ? { GAIN: 1 } : undefined }, v.code),
    params: [a.m, a.n, a.k, a.xOffset, a.yOffset, a.accumulate ? 1 : 0, a.bias ? 1 : 0, 0, q.scalesOffset, q.minsOffset, q.gainsOffset, q.gainRows],
    buffers: [a.x, a.w, a.bias ?? ctx.dummy, a.out],
    workgroups: [Math.ceil(a.n / v.tileN), Math.ceil(a.m / v.tileM)],
  });
}
