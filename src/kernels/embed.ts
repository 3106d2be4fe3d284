import code from '../../shaders/embed.wgsl?raw';
import { elementGrid, pipeline, type KernelContext } from './context.ts';

/**
 * out[r, :] = table[ids[r] - idBase, :] * scale for the rows whose id is in [idBase, idBase + idCount);
 * `ids` is a u32 buffer. Defaults: the whole table (a table split into row parts runs once per part).
 */
export function embed(ctx: KernelContext, out: GPUBuffer, ids: GPUBuffer, table: GPUBuffer, rows: number, hidden: number, scale: number, idBase = 0, idCount = 0xffffffff): void {
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'embed' }, code),
    params: [rows, hidden, scale, idBase, idCount, 0, 0, 0], f32: [2],
    buffers: [ids, table, out],
    workgroups: elementGrid(ctx, rows * hidden, 256),
  });
}
