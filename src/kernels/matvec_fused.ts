// Decode fusions over q4 weights: the RMSNorm before a projection folded into its GEMV's load
// (matvec_q4_norm.wgsl) and the gated activation folded into the down projection's load
// (matvec_q4_glu.wgsl), so neither the normed row nor act(gate)·up makes a round trip through
// memory. Both have matvec_q4_wg's shape (16 lanes per 4-row block, vec4<u32> loads along K).
// GpuOps.normMatmul / gluMatmul run them when the per-model probe (src/ops/kernel_probe.ts)
// found them faster than the separate passes; otherwise the separate kernels run.
import normCode from '../../shaders/matvec_q4_norm.wgsl?raw';
import gluCode from '../../shaders/matvec_q4_glu.wgsl?raw';
import type { Activation } from '../core/op_types.ts';
import type { QuantInfo } from '../core/quant.ts';
import { InternalError } from '../errors.ts';
import { pipeline, type KernelContext } from './context.ts';
import type { MatmulArgs } from './matmul.ts';

/** Rows of W per workgroup (WG / TPR blocks of 4). */
const ROWS_PER_WORKGROUP = 16;

function check(name: string, a: MatmulArgs, q: QuantInfo): void {
  if (a.k !== q.cols || a.n > q.rows) throw new InternalError(`${name}: weight is [${q.rows}, ${q.cols}], asked for n = ${a.n}, k = ${a.k}`);
  if (q.gainsOffset) throw new InternalError(`${name}: weights with column gains are not fused`);
  if (a.k % 4 || a.xOffset % 4) throw new InternalError(`${name}: K = ${a.k} and xOffset = ${a.xOffset} must be multiples of 4`);
}

/** Y (+)= (rmsNorm(X) · gain) · dequant(W)ᵀ (+ bias): `a.x` holds the rows before the norm. */
export function matvecQ4Norm(ctx: KernelContext, a: MatmulArgs, q: QuantInfo, gain: GPUBuffer | null, eps: number): void {
  check('matvec_q4_norm', a, q);
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'matvec_q4_norm' }, normCode),
    params: [a.m, a.n, a.k, a.xOffset, a.yOffset, a.accumulate ? 1 : 0, a.bias ? 1 : 0, gain ? 1 : 0, q.scalesOffset, q.minsOffset, eps, 0], f32: [10],
    buffers: [a.x, a.w, a.bias ?? ctx.dummy, a.out, gain ?? ctx.dummy],
    workgroups: [Math.ceil(a.n / ROWS_PER_WORKGROUP), a.m],
  });
}

/** Y (+)= (act(GU[:, :K]) · GU[:, K:]) · dequant(W)ᵀ (+ bias): `a.x` holds the gate|up rows (2K wide), `a.k` = K. */
export function matvecQ4Glu(ctx: KernelContext, a: MatmulArgs, q: QuantInfo, act: Activation): void {
  check('matvec_q4_glu', a, q);
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'matvec_q4_glu', constants: { ACT: act === 'silu' ? 0 : 1 } }, gluCode),
    params: [a.m, a.n, a.k, a.xOffset, a.yOffset, a.accumulate ? 1 : 0, a.bias ? 1 : 0, 0, q.scalesOffset, q.minsOffset, 0, 0],
    buffers: [a.x, a.w, a.bias ?? ctx.dummy, a.out],
    workgroups: [Math.ceil(a.n / ROWS_PER_WORKGROUP), a.m],
  });
}
