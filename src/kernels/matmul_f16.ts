// Y[M, N] (+)= X[M, K] · half(W)[N, K]^T (+ bias) over f16 weights packed by src/core/half.ts.
// Same binding layout as matmul.ts; Params add the column gains (gainsOffset, gainRows: POP's
// deep K/V, GEMM kernels only). GpuOps.matmul routes here when the weight buffer holds halves.
//   f16 storage, f32 math (core unpack2x16float; every adapter; tested on SwiftShader):
//     regblock_f16w / matvec_f16w    register-blocked, where the f32 probe chose regblock/matvec
//     tiled_f16w / matvec_wg_f16w    workgroup shapes, where it chose tiled/matvec_wg (real GPUs)
//   f16 arithmetic ('enable f16;', only with gpu.features.shaderF16; UNTESTED here, SwiftShader
//   has no shader-f16): tiled_f16 / matvec_wg_f16, the f16 twins of the two above; column gains
//   always take an f32-math kernel (keep = L-1 exactness).
import matmulF16wCode from '../../shaders/matmul_f16w.wgsl?raw';
import matvecF16wCode from '../../shaders/matvec_f16w.wgsl?raw';
import tiledF16wCode from '../../shaders/matmul_tiled_f16w.wgsl?raw';
import matvecWgF16wCode from '../../shaders/matvec_wg_f16w.wgsl?raw';
import tiledF16Code from '../../shaders/matmul_f16.wgsl?raw';
import matvecWgF16Code from '../../shaders/matvec_f16.wgsl?raw';
import { packHalf, type HalfInfo } from '../core/half.ts';
import { halfToFloat } from '../core/float_bits.ts';
import { readBuffer } from '../gpu/recorder.ts';
import { pipeline, type KernelContext } from './context.ts';
import type { MatmulArgs, MatmulVariant, MatmulVariants } from './matmul.ts';
import { InternalError } from '../errors.ts';

export interface HalfVariant extends MatmulVariant {
  /** f16 arithmetic: needs 'shader-f16'. */
  f16?: boolean;
  /** Applies column gains (override GAIN). */
  gain?: boolean;
}

export const MATMUL_F16_VARIANTS: Record<string, HalfVariant> = {
  regblock_f16w: { code: matmulF16wCode, decode: false, gain: true, tileM: 32, tileN: 32 },
  matvec_f16w: { code: matvecF16wCode, decode: true, tileM: 1, tileN: 256 },
  tiled_f16w: { code: tiledF16wCode, decode: false, gain: true, tileM: 64, tileN: 64 },
  matvec_wg_f16w: { code: matvecWgF16wCode, decode: true, tileM: 1, tileN: 4 },
  tiled_f16: { code: tiledF16Code, decode: false, f16: true, tileM: 64, tileN: 64 },
  matvec_wg_f16: { code: matvecWgF16Code, decode: true, f16: true, tileM: 1, tileN: 4 },
};

/**
 * The f16 kernel for a product: M = 1 without gains is decode (GEMV), the rest GEMM. The shape
 * family follows the f32 probe's choice for this adapter; f16 arithmetic only when asked
 * (`halfCompute`, which GpuOps sets only on adapters with shader-f16) and never with gains.
 */
export function halfVariantFor(m: number, gain: boolean, probe: MatmulVariants, halfCompute: boolean): string {
  const decode = m === 1 && !gain;
  const gpuShape = decode ? probe.decode === 'matvec_wg' : probe.prefill.startsWith('tiled');
  if (halfCompute && !gain) return decode ? 'matvec_wg_f16' : 'tiled_f16';
  if (decode) return gpuShape ? 'matvec_wg_f16w' : 'matvec_f16w';
  return gpuShape ? 'tiled_f16w' : 'regblock_f16w';
}

export function matmulF16(ctx: KernelContext, probe: MatmulVariants, a: MatmulArgs, h: HalfInfo, halfCompute: boolean, forceVariant?: string): void {
  if (a.k % 4 || a.xOffset % 4) throw new InternalError(`matmul f16: K = ${a.k} and xOffset = ${a.xOffset} must be multiples of 4`);
  if (a.n * a.k > h.elements || (h.cols && h.cols !== a.k)) throw new InternalError(`matmul f16: weight of ${h.elements} values (cols ${h.cols}), asked for n = ${a.n}, k = ${a.k}`);
  const gain = h.gainsOffset !== 0;
  const name = forceVariant ?? halfVariantFor(a.m, gain, probe, halfCompute);
  const v = MATMUL_F16_VARIANTS[name];
  if (!v) throw new InternalError(`matmul f16: unknown variant ${name}`);
  // The f16-arithmetic modules must never reach createShaderModule on an adapter without the feature.
  if (v.f16 && !ctx.gpu.features.shaderF16) throw new InternalError(`matmul f16: ${name} needs the 'shader-f16' feature, which this adapter lacks`);
  if (gain && !v.gain) throw new InternalError(`matmul f16: ${name} does not apply column gains`);
  ctx.rec.dispatch({
    pipeline: pipeline(ctx, { kernel: 'matmul', variant: name, constants: gain ? { GAIN: 1 } : undefined }, v.code),
    params: [a.m, a.n, a.k, a.xOffset, a.yOffset, a.accumulate ? 1 : 0, a.bias ? 1 : 0, 0, h.gainsOffset, h.gainRows],
    buffers: [a.x, a.w, a.bias ?? ctx.dummy, a.out],
    workgroups: [Math.ceil(a.n / v.tileN), Math.ceil(a.m / v.tileM)],
  });
}

/**
 * Load-time check of the f16-arithmetic kernels (they cannot be tested without a shader-f16
 * adapter): a GEMM and a GEMV with bias, accumulate, an X row offset and N, M past a tile,
 * against a CPU product of the same halves, within f16 rounding (2e-2 normalized). False, or
 * an adapter without shader-f16: use the f32-math kernels. `kernels` lets the tests run the same
 * check on the f32 twins.
 */
export async function halfComputeWorks(ctx: KernelContext, kernels = { gemm: 'tiled_f16', gemv: 'matvec_wg_f16' }): Promise<boolean> {
  if ([kernels.gemm, kernels.gemv].some((v) => MATMUL_F16_VARIANTS[v]?.f16) && !ctx.gpu.features.shaderF16) return false;
  const dev = ctx.gpu.device;
  const made: GPUBuffer[] = [];
  const buf = (d: ArrayBufferView) => {
    const b = dev.createBuffer({ size: Math.max(16, d.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    dev.queue.writeBuffer(b, 0, d.buffer, d.byteOffset, d.byteLength);
    made.push(b);
    return b;
  };
  let s = 7;
  const rand = (n: number) => Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 31 - 1));
  try {
    for (const [m, n, k] of [[70, 130, 72], [1, 67, 264]]) {
      const xRow = 1;
      const x = rand((m + xRow) * k), w = rand(n * k), b = rand(n), y0 = rand(m * n);
      const { packed, info } = packHalf(w, { cols: k });
      const hv = new Uint16Array(packed.buffer, 0, n * k);
      const wr = Float32Array.from(hv, halfToFloat);
      const out = buf(y0);
      // A module the driver rejects must not leave an uncaptured error behind (GpuDevice.checkAlive would throw it later).
      dev.pushErrorScope('validation');
      matmulF16(ctx, { prefill: 'tiled', decode: 'matvec_wg' }, { out, x: buf(x), w: buf(packed), bias: buf(b), m, n, k, accumulate: true, xOffset: xRow * k, yOffset: 0 }, info, true, m === 1 ? kernels.gemv : kernels.gemm);
      ctx.rec.submit();
      if (await dev.popErrorScope()) return false;
      const y = new Float32Array(await readBuffer(ctx.gpu, out, m * n * 4));
      let err = 0, ref = 0;
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
        let acc = y0[i * n + j] + b[j];
        for (let t = 0; t < k; t++) acc += x[(i + xRow) * k + t] * wr[j * k + t];
        err = Math.max(err, Math.abs(acc - y[i * n + j]));
        ref = Math.max(ref, Math.abs(acc));
      }
      if (!(err / Math.max(1, ref) <= 2e-2)) return false;
    }
    return true;
  } catch {
    return false;
  } finally {
    for (const b of made) b.destroy();
  }
}
