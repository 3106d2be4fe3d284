// Kernels of Gemma 4's layer extras: the layer scalar, the per-head norm of V, the per-layer input gate.
import scaleCode from '../../shaders/scale.wgsl?raw';
import headNormCode from '../../shaders/head_norm.wgsl?raw';
import gateMulCode from '../../shaders/gate_mul.wgsl?raw';
import type { Activation } from '../core/op_types.ts';
import { elementGrid, pipeline, type KernelContext } from './context.ts';

/** x[i] *= s */
export function scale(ctx: KernelContext, x: GPUBuffer, n: number, s: number): void {
  ctx.rec.dispatch({ pipeline: pipeline(ctx, { kernel: 'scale' }, scaleCode), params: [n, s, 0, 0], f32: [1], buffers: [x], workgroups: elementGrid(ctx, n, 256) });
}

/** Per-head RMSNorm in place on strided rows (gain null = 1). */
export function headNorm(ctx: KernelContext, x: GPUBuffer, rows: number, rowStride: number, colOffset: number, heads: number, headDim: number, gain: GPUBuffer | null, eps: number): void {
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'head_norm', constants: { HAS_GAIN: gain ? 1 : 0 } }, headNormCode),
    params: [rows, rowStride, colOffset, heads, headDim, eps, 0, 0], f32: [5],
    buffers: [gain ?? ctx.dummy, x],
    workgroups: elementGrid(ctx, rows * heads, 64),
  });
}

/** In place: gate[r, i] = act(gate[r, i]) * other[r * otherStride + otherOffset + i]. */
export function gateMul(ctx: KernelContext, gate: GPUBuffer, other: GPUBuffer, rows: number, dim: number, otherStride: number, otherOffset: number, act: Activation): void {
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'gate_mul', constants: { ACT: act === 'silu' ? 0 : 1 } }, gateMulCode),
    params: [rows, dim, otherStride, otherOffset],
    buffers: [other, gate],
    workgroups: elementGrid(ctx, rows * dim, 256),
  });
}
