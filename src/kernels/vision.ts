// Thin wrappers for the vision-tower kernels: LayerNorm with bias, GELU (tanh or erf) in place,
// im2col patchify, bidirectional attention over contiguous Q/K/V, Idefics3 pixel shuffle,
// Gemma 3's patch average pool.
import layerNormCode from '../../shaders/layer_norm.wgsl?raw';
import geluCode from '../../shaders/gelu.wgsl?raw';
import patchifyCode from '../../shaders/patchify.wgsl?raw';
import attentionFullCode from '../../shaders/attention_full.wgsl?raw';
import pixelShuffleCode from '../../shaders/pixel_shuffle.wgsl?raw';
import avgPoolCode from '../../shaders/avg_pool.wgsl?raw';
import type { FullAttentionShape } from '../core/op_types.ts';
import { elementGrid, pipeline, type KernelContext } from './context.ts';
import { InternalError } from '../errors.ts';

export function layerNorm(ctx: KernelContext, out: GPUBuffer, x: GPUBuffer, gain: GPUBuffer, bias: GPUBuffer, rows: number, dim: number, eps: number): void {
  if (out === x) throw new InternalError('layerNorm: out must not alias x');
  ctx.rec.dispatch({ pipeline: pipeline(ctx, { kernel: 'layer_norm' }, layerNormCode), params: [rows, dim, eps, 0], f32: [2], buffers: [x, gain, bias, out], workgroups: ctx.rec.grid(rows) });
}

export function gelu(ctx: KernelContext, x: GPUBuffer, n: number, exact = false): void {
  ctx.rec.dispatch({ pipeline: pipeline(ctx, { kernel: 'gelu', constants: { EXACT: exact ? 1 : 0 } }, geluCode), params: [n, 0, 0, 0], buffers: [x], workgroups: elementGrid(ctx, n, 256) });
}

export function patchify(ctx: KernelContext, out: GPUBuffer, pixels: GPUBuffer, tiles: number, channels: number, size: number, patch: number): void {
  const total = tiles * (size / patch) ** 2 * channels * patch * patch;
  ctx.rec.dispatch({ pipeline: pipeline(ctx, { kernel: 'patchify' }, patchifyCode), params: [tiles, channels, size, patch], buffers: [pixels, out], workgroups: elementGrid(ctx, total, 256) });
}

export function pixelShuffle(ctx: KernelContext, out: GPUBuffer, x: GPUBuffer, tiles: number, side: number, dim: number, scale: number): void {
  const total = tiles * side * side * dim;
  ctx.rec.dispatch({ pipeline: pipeline(ctx, { kernel: 'pixel_shuffle' }, pixelShuffleCode), params: [tiles, side, dim, scale], buffers: [x, out], workgroups: elementGrid(ctx, total, 256) });
}

export function avgPool(ctx: KernelContext, out: GPUBuffer, x: GPUBuffer, tiles: number, side: number, dim: number, kernel: number): void {
  if (side % kernel) throw new InternalError(`avgPool: side ${side} must be a multiple of kernel ${kernel}`);
  const total = tiles * (side / kernel) ** 2 * dim;
  ctx.rec.dispatch({ pipeline: pipeline(ctx, { kernel: 'avg_pool' }, avgPoolCode), params: [tiles, side, dim, kernel], buffers: [x, out], workgroups: elementGrid(ctx, total, 256) });
}

export function attentionFull(ctx: KernelContext, out: GPUBuffer, qkv: GPUBuffer, a: FullAttentionShape): void {
  const aligned = [a.headDim, a.stride, a.qOffset, a.kOffset, a.vOffset].every((v) => v % 4 === 0);
  if (!aligned || a.headDim > 256) throw new InternalError(`attentionFull: headDim ${a.headDim}, stride and offsets must be multiples of 4 (headDim <= 256)`);
  if (a.rows % a.seqLen) throw new InternalError(`attentionFull: rows ${a.rows} must be a multiple of seqLen ${a.seqLen}`);
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'attention_full', constants: { HD4: a.headDim / 4 } }, attentionFullCode),
    params: [a.rows, a.seqLen, a.numHeads, a.headDim, a.stride, a.qOffset, a.kOffset, a.vOffset, a.scale, 0, 0, 0], f32: [8],
    buffers: [qkv, out],
    // 8 query rows per invocation, WG = 16 invocations per workgroup.
    workgroups: elementGrid(ctx, (a.rows / a.seqLen) * Math.ceil(a.seqLen / 8) * a.numHeads, 16),
  });
}
