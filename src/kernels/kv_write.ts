import code from '../../shaders/kv_write.wgsl?raw';
import { elementGrid, pipeline, type KernelContext } from './context.ts';

export interface KvWriteArgs {
  k: GPUBuffer; v: GPUBuffer;
  /** The cache stores f16 pairs (kv_write.wgsl KV_F16). */
  f16?: boolean;
  pageTable: GPUBuffer; pageSize: number;
  src: GPUBuffer; rows: number; rowStride: number; kOffset: number; vOffset: number;
  kvHeads: number; headDim: number; startPos: number; ropeTable: GPUBuffer;
  kNorm: { gain: GPUBuffer; eps: number } | null;
}

/** K (k-norm + RoPE) and V of `rows` tokens into one layer's pages. */
export function kvWrite(ctx: KernelContext, a: KvWriteArgs): void {
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'kv_write', constants: a.f16 ? { KV_F16: 1 } : undefined }, code),
    params: [a.rows, a.rowStride, a.kOffset, a.vOffset, a.kvHeads, a.headDim, a.startPos, a.pageSize, a.kNorm ? 1 : 0, a.kNorm?.eps ?? 0, 0, 0], f32: [9],
    buffers: [a.src, a.ropeTable, a.kNorm?.gain ?? ctx.dummy, a.pageTable, a.k, a.v],
    workgroups: elementGrid(ctx, a.rows * a.kvHeads, 64),
  });
}
