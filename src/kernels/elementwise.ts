// Small element-wise kernels: GLU activation, residual add, logit soft-capping.
import gluCode from '../../shaders/glu.wgsl?raw';
import addCode from '../../shaders/add.wgsl?raw';
import softcapCode from '../../shaders/softcap.wgsl?raw';
import type { Activation } from '../core/op_types.ts';
import { elementGrid, pipeline, type KernelContext } from './context.ts';

export function glu(ctx: KernelContext, out: GPUBuffer, gu: GPUBuffer, rows: number, inter: number, act: Activation): void {
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'glu', constants: { ACT: act === 'silu' ? 0 : 1 } }, gluCode),
    params: [rows, inter, 0, 0],
    buffers: [gu, out],
    workgroups: elementGrid(ctx, rows * inter, 256),
  });
}

export function add(ctx: KernelContext, out: GPUBuffer, a: GPUBuffer, n: number, outOffset = 0, aOffset = 0): void {
  ctx.rec.dispatch({ pipeline: pipeline(ctx, { kernel: 'add' }, addCode), params: [n, outOffset, aOffset, 0], buffers: [a, out], workgroups: elementGrid(ctx, n, 256) });
}

export function softcap(ctx: KernelContext, x: GPUBuffer, n: number, cap: number): void {
  ctx.rec.dispatch({ pipeline: pipeline(ctx, { kernel: 'softcap' }, softcapCode), params: [n, cap, 0, 0], f32: [1], buffers: [x], workgroups: elementGrid(ctx, n, 256) });
}
