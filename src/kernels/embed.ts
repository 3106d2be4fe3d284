import code from '../../shaders/embed.wgsl?raw';
import { elementGrid, pipeline, type KernelContext } from './context.ts';

/** out[r, :] = table[ids[r], :] * scale; `ids` is a u32 buffer. */
export function embed(ctx: KernelContext, out: GPUBuffer, ids: GPUBuffer, table: GPUBuffer, rows: number, hidden: number, scale: number): void {
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'embed' }, code),
    params: [rows, hidden, scale, 0], f32: [2],
    buffers: [ids, table, out],
    workgroups: elementGrid(ctx, rows * hidden, 256),
  });
}
