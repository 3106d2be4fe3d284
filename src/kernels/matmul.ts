// Y[M, N] (+)= X[M, K] · W[N, K]^T (+ bias): the prefill GEMM and the decode GEMV. Several
// WGSL variants share one binding layout; which one runs is chosen per adapter by a timed
// probe (src/kernels/probe.ts): register-blocked kernels win on SwiftShader, workgroup-tiled
// ones on real GPUs.
import tiledCode from '../../shaders/matmul_tiled.wgsl?raw';
import tiledDbCode from '../../shaders/matmul_tiled_db.wgsl?raw';
import regblockCode from '../../shaders/matmul_regblock.wgsl?raw';
import quadCode from '../../shaders/matmul_regblock_quad.wgsl?raw';
import matvecCode from '../../shaders/matvec.wgsl?raw';
import matvecWgCode from '../../shaders/matvec_wg.wgsl?raw';
import { pipeline, type KernelContext } from './context.ts';
import { InternalError } from '../errors.ts';

export interface MatmulVariant {
  code: string;
  /** For M = 1 (decode) rather than M > 1 (prefill). */
  decode: boolean;
  /** Needs the 'subgroups' feature. */
  subgroups?: boolean;
  /** Outputs per workgroup along M (tokens) and N (output features). */
  tileM: number;
  tileN: number;
  /**
   * Timed only by the model probe (src/ops/kernel_probe.ts: real GPUs, `pop-llm bench`), not
   * by the adapter probe every load runs (a variant that cannot win on software adapters).
   */
  modelProbeOnly?: boolean;
}

export const MATMUL_VARIANTS: Record<string, MatmulVariant> = {
  // 16x16 register block per invocation, no workgroup memory: SwiftShader's best without subgroups.
  regblock: { code: regblockCode, decode: false, tileM: 32, tileN: 32 },
  // The same block with X rows shared round a quad (quadBroadcast): SwiftShader's best.
  regblock_quad: { code: quadCode, decode: false, subgroups: true, tileM: 16, tileN: 64 },
  // Classic workgroup-memory tiling: real GPUs' choice.
  tiled: { code: tiledCode, decode: false, tileM: 64, tileN: 64 },
  // The same tiles double-buffered through registers (next K-slice fetched before this one's products).
  tiled_db: { code: tiledDbCode, decode: false, tileM: 64, tileN: 64, modelProbeOnly: true },
  // GEMV, 4 outputs per invocation.
  matvec: { code: matvecCode, decode: true, tileM: 1, tileN: 256 },
  // GEMV with K split across a workgroup and a tree reduction: real GPUs' choice.
  matvec_wg: { code: matvecWgCode, decode: true, tileM: 1, tileN: 4 },
};

/** The variant for prefill (M > 1) and for decode (M == 1). */
export interface MatmulVariants {
  prefill: string;
  decode: string;
}

export interface MatmulArgs {
  out: GPUBuffer; x: GPUBuffer; w: GPUBuffer; bias: GPUBuffer | null;
  m: number; n: number; k: number; accumulate: boolean;
  /** Element offsets into x and out. */
  xOffset: number; yOffset: number;
  /** Element offset into w (f32 weights only). */
  wOffset?: number;
  /** `count` GEMMs in one dispatch (grid z); GEMM b shifts x, w and out by b times these strides. */
  batch?: { count: number; x: number; w: number; y: number };
  /** Attention's causal band (a hint; see matmul_regblock.wgsl): row m only needs columns (mode 1) or K (mode 2) below (m % rows) + end. */
  band?: { mode: 1 | 2; rows: number; end: number };
}

export function matmul(ctx: KernelContext, variants: MatmulVariants, a: MatmulArgs, forceVariant?: string): void {
  if (a.k % 4) throw new InternalError(`matmul: K = ${a.k} must be a multiple of 4`);
  const name = forceVariant ?? (a.m === 1 ? variants.decode : variants.prefill);
  const v = MATMUL_VARIANTS[name];
  if (!v) throw new InternalError(`matmul: unknown variant ${name}`);
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'matmul', variant: name }, v.code),
    params: [a.m, a.n, a.k, a.xOffset, a.yOffset, a.accumulate ? 1 : 0, a.bias ? 1 : 0, a.wOffset ?? 0,
      a.batch?.x ?? 0, a.batch?.w ?? 0, a.batch?.y ?? 0, a.band?.mode ?? 0, a.band?.rows ?? 1, a.band?.end ?? 0, 0, 0],
    buffers: [a.x, a.w, a.bias ?? ctx.dummy, a.out],
    workgroups: [Math.ceil(a.n / v.tileN), Math.ceil(a.m / v.tileM), a.batch?.count ?? 1],
  });
}
