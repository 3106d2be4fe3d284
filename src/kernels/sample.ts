import code from '../../shaders/sample.wgsl?raw';
import type { SampleParams } from '../core/op_types.ts';
import { pipeline, type KernelContext } from './context.ts';

/** Records the sampling kernel: out[0] = token id chosen from logits[offset .. offset + vocab). */
export function sample(ctx: KernelContext, out: GPUBuffer, logits: GPUBuffer, vocab: number, p: SampleParams, step: number, logitsOffset = 0): void {
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'sample' }, code),
    params: [vocab, logitsOffset, p.topK, p.seed, step, p.temperature, p.topP, 0], f32: [5, 6],
    buffers: [logits, out],
    workgroups: [1],
  });
}
