import prefillCode from '../../shaders/attention_prefill.wgsl?raw';
import decodeCode from '../../shaders/attention_decode.wgsl?raw';
import { elementGrid, pipeline, type KernelContext } from './context.ts';
import type { AttentionShape } from '../ops/ops.ts';

export interface AttentionArgs {
  out: GPUBuffer; q: GPUBuffer; qStride: number;
  k: GPUBuffer; v: GPUBuffer; pageTable: GPUBuffer; pageSize: number;
  rows: number; startPos: number; shape: AttentionShape;
}

/**
 * Causal attention over the paged cache. One row (decode) goes to the split-key kernel, one
 * workgroup per (head, row). On real GPUs so do a few rows over a long context (a new turn
 * after a reused prefix), which would otherwise leave most of the device idle; on software
 * adapters (SwiftShader) workgroup barriers cost more than the idle lanes, so those rows go
 * to the kernel with 8 query rows per invocation, like long prompts.
 */
export type AttentionVariant = 'split_keys' | 'rows8';

export function attentionVariant(ctx: KernelContext, rows: number, startPos: number): AttentionVariant {
  if (rows === 1) return 'split_keys';
  return !ctx.gpu.isSoftware && rows <= 64 && startPos >= 4 * rows ? 'split_keys' : 'rows8';
}

export function attention(ctx: KernelContext, a: AttentionArgs, force?: AttentionVariant): void {
  const s = a.shape;
  if (s.headDim % 4 || s.headDim > 256) throw new Error(`attention: headDim ${s.headDim} must be a multiple of 4 and at most 256`);
  const decode = (force ?? attentionVariant(ctx, a.rows, a.startPos)) === 'split_keys';
  ctx.rec.dispatch({
    pipeline: decode ? pipeline(ctx, { kernel: 'attention_decode' }, decodeCode) : pipeline(ctx, { kernel: 'attention_prefill', constants: { HD4: s.headDim / 4 } }, prefillCode),
    params: [a.rows, a.startPos, s.numHeads, s.numKvHeads, s.headDim, a.qStride, a.pageSize, s.window, s.scale, 0, 0, 0], f32: [8],
    buffers: [a.q, a.pageTable, a.k, a.v, a.out],
    workgroups: decode ? [s.numHeads, a.rows] : elementGrid(ctx, Math.ceil(a.rows / 8) * s.numHeads, 16),
  });
}
