import code from '../../shaders/rope.wgsl?raw';
import { elementGrid, pipeline, type KernelContext } from './context.ts';

/** Rotate-half RoPE in place (optional per-head norm first). */
export function rope(ctx: KernelContext, x: GPUBuffer, rows: number, rowStride: number, colOffset: number, heads: number, headDim: number, startPos: number, ropeTable: GPUBuffer, norm: { gain: GPUBuffer; eps: number } | null): void {
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'rope' }, code),
    params: [rows, rowStride, colOffset, heads, headDim, startPos, norm ? 1 : 0, norm?.eps ?? 0], f32: [7],
    buffers: [ropeTable, norm?.gain ?? ctx.dummy, x],
    workgroups: elementGrid(ctx, rows * heads, 64),
  });
}
