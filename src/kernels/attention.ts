import prefillCode from '../../shaders/attention_prefill.wgsl?raw';
import decodeCode from '../../shaders/attention_decode.wgsl?raw';
import { elementGrid, pipeline, type KernelContext } from './context.ts';
import type { AttentionShape } from '../ops/ops.ts';

export interface AttentionArgs {
  out: GPUBuffer; q: GPUBuffer; qStride: number;
  k: GPUBuffer; v: GPUBuffer; pageTable: GPUBuffer; pageSize: number;
  rows: number; startPos: number; shape: AttentionShape;
}

/** Causal attention over the paged cache: the split-key kernel for one row, else 4 rows per invocation. */
export function attention(ctx: KernelContext, a: AttentionArgs): void {
  const s = a.shape;
  if (s.headDim % 4 || s.headDim > 256) throw new Error(`attention: headDim ${s.headDim} must be a multiple of 4 and at most 256`);
  const decode = a.rows === 1;
  ctx.rec.dispatch({
    pipeline: decode ? pipeline(ctx, { kernel: 'attention_decode' }, decodeCode) : pipeline(ctx, { kernel: 'attention_prefill', constants: { HD4: s.headDim / 4 } }, prefillCode),
    params: [a.rows, a.startPos, s.numHeads, s.numKvHeads, s.headDim, a.qStride, a.pageSize, s.window, s.scale, 0, 0, 0], f32: [8],
    buffers: [a.q, a.pageTable, a.k, a.v, a.out],
    workgroups: decode ? [s.numHeads] : elementGrid(ctx, Math.ceil(a.rows / 4) * s.numHeads, 16),
  });
}
