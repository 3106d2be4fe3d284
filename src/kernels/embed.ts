import code from '../../shaders/embed.wgsl?raw';
import q4Code from '../../shaders/embed_q4.wgsl?raw';
import f16Code from '../../shaders/embed_f16.wgsl?raw';
import type { QuantInfo } from '../core/quant.ts';
import { elementGrid, pipeline, type KernelContext } from './context.ts';

/** How the table is stored: f32 (default), int4 (src/core/quant.ts) or f16 halves (src/core/half.ts). */
export type EmbedTable = { kind: 'f32' } | { kind: 'q4'; info: QuantInfo } | { kind: 'f16' };

/**
 * out[r, :] = table[ids[r] - idBase, :] * scale for the rows whose id is in [idBase, idBase + idCount);
 * `ids` is a u32 buffer. Defaults: the whole table (a table split into row parts runs once per part).
 * q4 and f16 tables are dequantized while gathered, so no f32 copy of the table exists.
 */
export function embed(ctx: KernelContext, out: GPUBuffer, ids: GPUBuffer, table: GPUBuffer, rows: number, hidden: number, scale: number, idBase = 0, idCount = 0xffffffff, stored: EmbedTable = { kind: 'f32' }): void {
  if (stored.kind === 'q4' && stored.info.cols !== hidden) throw new Error(`embed: q4 table rows hold ${stored.info.cols} values, hidden is ${hidden}`);
  if (stored.kind === 'f16' && hidden % 2) throw new Error(`embed: f16 table needs an even hidden size (got ${hidden})`);
  const q = stored.kind === 'q4' ? stored.info : null;
  ctx.rec.dispatch({
    pipeline: stored.kind === 'q4' ? pipeline(ctx, { kernel: 'embed_q4' }, q4Code) : stored.kind === 'f16' ? pipeline(ctx, { kernel: 'embed_f16' }, f16Code) : pipeline(ctx, { kernel: 'embed' }, code),
    params: [rows, hidden, scale, idBase, idCount, q?.scalesOffset ?? 0, q?.minsOffset ?? 0, 0], f32: [2],
    buffers: [ids, table, out],
    workgroups: elementGrid(ctx, rows * hidden, 256),
  });
}
