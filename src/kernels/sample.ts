import code from '../../shaders/sample.wgsl?raw';
import adjustCode from '../../shaders/logits_adjust.wgsl?raw';
import logprobsCode from '../../shaders/logprobs.wgsl?raw';
import type { SampleParams } from '../core/op_types.ts';
import { elementGrid, pipeline, type KernelContext } from './context.ts';

/**
 * Records the sampling kernel: out[0] = token id chosen from logits[offset .. offset + vocab).
 * `mask`: a grammar's allowed-token bitmask (null: every token allowed).
 */
export function sample(ctx: KernelContext, out: GPUBuffer, logits: GPUBuffer, vocab: number, p: SampleParams, step: number, logitsOffset = 0, mask: GPUBuffer | null = null): void {
  const minP = p.minP ?? 0;
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'sample', constants: { MASKED: mask ? 1 : 0 } }, code),
    params: [vocab, logitsOffset, p.topK, p.seed, step, p.temperature, p.topP, minP > 0 ? Math.log(minP) : 1], f32: [5, 6, 7],
    buffers: [logits, out, mask ?? ctx.dummy],
    workgroups: [1],
  });
}

/** Records logit_bias and the frequency / presence / repetition penalties for `n` entries (vec4<u32> each), in place. */
export function adjustLogits(ctx: KernelContext, logits: GPUBuffer, entries: GPUBuffer, n: number, pen: { frequency: number; presence: number; repetition: number }, logitsOffset = 0): void {
  if (n === 0) return;
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'logits_adjust' }, adjustCode),
    params: [n, logitsOffset, pen.frequency, pen.presence, pen.repetition, 0, 0, 0], f32: [2, 3, 4],
    buffers: [entries, logits],
    workgroups: elementGrid(ctx, n, 64),
  });
}

/** Records the logprobs kernel: out = [token, logprob, k x (id, logprob)] of logits / T for token[0]. */
export function logprobs(ctx: KernelContext, out: GPUBuffer, logits: GPUBuffer, token: GPUBuffer, vocab: number, k: number, temperature: number, mask: GPUBuffer | null, logitsOffset = 0): void {
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'logprobs', constants: { MASKED: mask ? 1 : 0 } }, logprobsCode),
    params: [vocab, logitsOffset, k, 0, temperature, 0, 0, 0], f32: [4],
    buffers: [logits, mask ?? ctx.dummy, token, out],
    workgroups: [1],
  });
}
