import code from '../../shaders/rms_norm.wgsl?raw';
import { pipeline, type KernelContext } from './context.ts';

/** out = x / rms(x) * gain per row; in place when out === x. */
export function rmsNorm(ctx: KernelContext, out: GPUBuffer, x: GPUBuffer, gain: GPUBuffer | null, rows: number, dim: number, eps: number): void {
  const inplace = out === x;
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'rms_norm' }, code, inplace ? 'inplace' : 'main'),
    params: [rows, dim, eps, gain ? 1 : 0], f32: [2],
    buffers: inplace ? [null, gain ?? ctx.dummy, out] : [x, gain ?? ctx.dummy, out],
    workgroups: ctx.rec.grid(rows),
  });
}
