// CPU twins of the vision-tower ops (LayerNorm, GELU (tanh / erf), patchify, full attention, pixel
// shuffle, average pool), as the obvious loops with f64 accumulators. CpuOps delegates to these.
import type { FullAttentionShape } from '../ops/ops.ts';

export function geluTanhCpu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

export function layerNormCpu(out: Float32Array, x: Float32Array, gain: Float32Array, bias: Float32Array, rows: number, dim: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[o + i];
    mean /= dim;
    let v = 0;
    for (let i = 0; i < dim; i++) v += (x[o + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / dim + eps);
    for (let i = 0; i < dim; i++) out[o + i] = (x[o + i] - mean) * inv * gain[i] + bias[i];
  }
}

/** erf in f64: Maclaurin series below 3, the continued fraction of erfc above (both to ~1e-15). */
export function erfCpu(z: number): number {
  const a = Math.abs(z);
  if (a < 3) {
    let term = a, sum = a;
    for (let n = 1; n < 80; n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(z) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = a;
  for (let k = 80; k >= 1; k--) f = a + k / 2 / f;
  return Math.sign(z) * (1 - Math.exp(-a * a) / (Math.sqrt(Math.PI) * f));
}

/** GELU in place: the tanh form (gelu_pytorch_tanh), or the exact erf form (nn.GELU()). */
export function geluCpu(x: Float32Array, n: number, exact = false): void {
  for (let i = 0; i < n; i++) x[i] = exact ? 0.5 * x[i] * (1 + erfCpu(x[i] / Math.SQRT2)) : geluTanhCpu(x[i]);
}

export function patchifyCpu(out: Float32Array, px: Float32Array, tiles: number, C: number, size: number, p: number): void {
  const n = size / p, cols = C * p * p;
  for (let t = 0; t < tiles; t++)
    for (let py = 0; py < n; py++)
      for (let pxi = 0; pxi < n; pxi++) {
        const row = (t * n + py) * n + pxi;
        for (let c = 0; c < C; c++)
          for (let ky = 0; ky < p; ky++)
            for (let kx = 0; kx < p; kx++) out[row * cols + (c * p + ky) * p + kx] = px[((t * C + c) * size + py * p + ky) * size + pxi * p + kx];
      }
}

export function attentionFullCpu(out: Float32Array, qkv: Float32Array, a: FullAttentionShape): void {
  const D = a.headDim, W = a.numHeads * D;
  for (let r = 0; r < a.rows; r++) {
    const base = Math.floor(r / a.seqLen) * a.seqLen;
    for (let h = 0; h < a.numHeads; h++) {
      const qo = r * a.stride + a.qOffset + h * D;
      const sc: number[] = [];
      for (let t = 0; t < a.seqLen; t++) {
        let s = 0;
        const ko = (base + t) * a.stride + a.kOffset + h * D;
        for (let i = 0; i < D; i++) s += qkv[qo + i] * qkv[ko + i];
        sc.push(s * a.scale);
      }
      const m = Math.max(...sc);
      const e = sc.map((s) => Math.exp(s - m));
      const z = e.reduce((x, y) => x + y, 0);
      for (let i = 0; i < D; i++) {
        let acc = 0;
        for (let t = 0; t < a.seqLen; t++) acc += e[t] * qkv[(base + t) * a.stride + a.vOffset + h * D + i];
        out[r * W + h * D + i] = acc / z;
      }
    }
  }
}

export function pixelShuffleCpu(out: Float32Array, x: Float32Array, tiles: number, side: number, dim: number, s: number): void {
  const m = side / s;
  for (let t = 0; t < tiles; t++)
    for (let hb = 0; hb < m; hb++)
      for (let wb = 0; wb < m; wb++)
        for (let i = 0; i < s; i++)
          for (let j = 0; j < s; j++) {
            const src = (t * side * side + (hb * s + i) * side + wb * s + j) * dim;
            const dst = ((t * m + hb) * m + wb) * s * s * dim + (i * s + j) * dim;
            out.set(x.subarray(src, src + dim), dst);
          }
}

export function avgPoolCpu(out: Float32Array, x: Float32Array, tiles: number, side: number, dim: number, k: number): void {
  const m = side / k;
  for (let t = 0; t < tiles; t++)
    for (let pr = 0; pr < m; pr++)
      for (let pc = 0; pc < m; pc++)
        for (let d = 0; d < dim; d++) {
          let acc = 0;
          for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) acc += x[(t * side * side + (pr * k + i) * side + pc * k + j) * dim + d];
          out[((t * m + pr) * m + pc) * dim + d] = acc / (k * k);
        }
}
