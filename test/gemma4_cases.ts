// Gemma 4 checks run in the page: its three new kernels (layer scalar, per-head norm of V,
// the per-layer input gate) on WebGPU against their CPU twins, and what the loader keeps of a
// checkpoint that still carries the unused K/V weights of its KV-shared layers.
import { acquireGpu } from '../src/gpu/device.ts';
import { GpuOps } from '../src/ops/gpu_ops.ts';
import { CpuOps } from '../src/reference/cpu_ops.ts';
import { Engine } from '../src/engine/engine.ts';
import { loadCheckpoint } from '../src/model/loader.ts';
import { randomModelFiles } from '../src/model/random_model.ts';
import { memorySource } from '../src/model/source.ts';
import { writeSafetensors } from '../src/model/safetensors.ts';
import { rng } from './kernel_cases.ts';

let gpuOps: GpuOps | null = null;
async function gpu(): Promise<GpuOps> {
  if (!gpuOps) gpuOps = new GpuOps(await acquireGpu(), { prefill: 'regblock', decode: 'matvec' }, 4096);
  return gpuOps;
}

function randn(r: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

/** max|a - b| / max(1, max|b|); Infinity on a length mismatch or NaN. */
function err(a: Float32Array, b: Float32Array): number {
  let e = 0, m = 0;
  for (let i = 0; i < b.length; i++) (e = Math.max(e, Math.abs(a[i] - b[i]))), (m = Math.max(m, Math.abs(b[i])));
  return a.length !== b.length || a.some((v) => Number.isNaN(v)) ? Infinity : e / Math.max(1, m);
}

export const gemma4Cases = {
  /** One kernel case: the GPU op and its CPU twin on the same seeded inputs; returns the error and whether the op changed anything. */
  async kernel(c: Record<string, any>): Promise<{ err: number; changed: boolean }> {
    const g = await gpu(), cpu = new CpuOps(), r = rng(c.seed ?? 1);
    const held: GPUBuffer[] = [];
    const up = (d: Float32Array) => (held.push(g.upload('case', d)), held[held.length - 1]);
    try {
      if (c.op === 'scale') {
        const x = randn(r, c.n, 3), want = Float32Array.from(x);
        cpu.scale(want, c.n, c.s);
        const b = up(x);
        g.scale(b, c.n, c.s);
        return { err: err(await g.read(b, c.n), want), changed: err(want, x) > 0 };
      }
      if (c.op === 'head_norm') {
        const { rows, rowStride, colOffset, heads, headDim, withGain } = c;
        const x = randn(r, rows * rowStride, 4), gain = withGain ? randn(r, headDim, 2) : null, want = Float32Array.from(x);
        cpu.headNorm(want, rows, rowStride, colOffset, heads, headDim, gain, 1e-6);
        const b = up(x);
        g.headNorm(b, rows, rowStride, colOffset, heads, headDim, gain && up(gain), 1e-6);
        return { err: err(await g.read(b, x.length), want), changed: err(want, x) > 0 };
      }
      if (c.op === 'gate_mul') {
        const { rows, dim, otherStride, otherOffset, act } = c;
        const gate = randn(r, rows * dim, c.gateScale ?? 3), other = randn(r, rows * otherStride, 2), want = Float32Array.from(gate);
        cpu.gateMul(want, other, rows, dim, otherStride, otherOffset, act);
        const b = up(gate);
        g.gateMul(b, up(other), rows, dim, otherStride, otherOffset, act);
        return { err: err(await g.read(b, gate.length), want), changed: err(want, gate) > 0 };
      }
      throw new Error(`unknown case ${c.op}`);
    } finally {
      for (const b of held) g.free(b);
    }
  },

  /** An n > 1 request on the CPU twin's engine (the stats are the engine's, device-free): its stats. */
  async nChoicesStats(config: Record<string, any>, prompt: number[], n: number): Promise<Record<string, unknown>> {
    const e = await Engine.load(new CpuOps(), memorySource(randomModelFiles(config, { seed: 7 })), { prefillChunk: 16, pageSize: 8 });
    try {
      return { ...(await e.generate(prompt, { maxTokens: 2, temperature: 1, seed: 3, ignoreEos: true, n })).stats };
    } finally {
      e.unload();
    }
  },

  /**
   * A checkpoint that also stores k_proj / v_proj / k_norm for its KV-shared layers (as
   * released checkpoints may): it loads, and its logits equal those of the same model without them.
   */
  async unusedSharedKv(config: Record<string, any>, sharedLayer: number, prefix: string, prompt: number[]): Promise<{ extra: string[]; diff: number }> {
    const files = randomModelFiles(config, { seed: 7 });
    const ck = await loadCheckpoint(memorySource(files));
    const names = new Set<string>();
    const st = files.get('model.safetensors')!;
    const headerLen = Number(new DataView(st.buffer, st.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(st.subarray(8, 8 + headerLen)));
    const tensors = Object.entries(header).filter(([n]) => n !== '__metadata__').map(([name, e]: [string, any]) => (names.add(name), { name, shape: e.shape as number[], data: ck.get(name)! }));
    const q = tensors.find((t) => t.name === `${prefix}layers.${sharedLayer}.self_attn.q_proj.weight`)!;
    const H = q.shape[1], d = q.shape[0] / config.text_config.num_attention_heads;
    const extra = [
      { name: `${prefix}layers.${sharedLayer}.self_attn.k_proj.weight`, shape: [d, H], data: new Float32Array(d * H).fill(0.5) },
      { name: `${prefix}layers.${sharedLayer}.self_attn.v_proj.weight`, shape: [d, H], data: new Float32Array(d * H).fill(-0.5) },
      { name: `${prefix}layers.${sharedLayer}.self_attn.k_norm.weight`, shape: [d], data: new Float32Array(d).fill(3) },
    ];
    const withExtra = new Map(files);
    withExtra.set('model.safetensors', writeSafetensors([...tensors, ...extra]));
    // The loader is the same on every device: the CPU twin's engine keeps this quick.
    const a = await Engine.load(new CpuOps(), memorySource(files), { prefillChunk: 16, pageSize: 8 });
    const b = await Engine.load(new CpuOps(), memorySource(withExtra), { prefillChunk: 16, pageSize: 8 });
    try {
      const la = await a.promptLogits(prompt, 'off'), lb = await b.promptLogits(prompt, 'off');
      return { extra: extra.map((t) => t.name).filter((n) => !names.has(n)), diff: err(lb, la) };
    } finally {
      a.unload();
      b.unload();
    }
  },
};


import { PagedKvCache } from '../src/kv/paged_kv_cache.ts';
import { ropeTable } from '../src/model/config.ts';
/**
 * Attention over the paged cache with a head wider than 256 (Gemma 4's global layers: 512),
 * GPU vs CPU twin, for `rows` query rows after `past` cached positions.
 */
(gemma4Cases as any).wideAttention = async (c: { rows: number; past: number; heads: number; kvHeads: number; headDim: number; window: number }): Promise<number> => {
  const g = await gpu(), cpu = new CpuOps(), r = rng(3);
  const total = c.past + c.rows, kvd = c.kvHeads * c.headDim, qd = c.heads * c.headDim, stride = qd + 2 * kvd;
  const opts = { numLayers: 1, kvDim: kvd, pageSize: 8, contextWindow: 64, maxSequences: 1 };
  const gc = new PagedKvCache(g, opts), cc = new PagedKvCache(cpu, opts);
  const table = ropeTable({ theta: 1e4, scaling: null }, c.headDim, 64);
  const gt = g.upload('rope', table);
  const src = randn(r, total * stride, 1);
  const gs = gc.reserve(0, total), cs = cc.reserve(0, total);
  const gsrc = g.upload('src', src);
  g.kvWrite(gc.layers[0], gs, gsrc, total, stride, qd, qd + kvd, c.kvHeads, c.headDim, 0, gt, null);
  cpu.kvWrite(cc.layers[0], cs, src, total, stride, qd, qd + kvd, c.kvHeads, c.headDim, 0, table, null);
  const q = src.subarray(c.past * stride), shape = { numHeads: c.heads, numKvHeads: c.kvHeads, headDim: c.headDim, scale: 0.1, window: c.window };
  const want = new Float32Array(c.rows * qd);
  cpu.attention(want, q, stride, cc.layers[0], cs, c.rows, c.past, shape);
  const out = g.alloc('out', c.rows * qd), gq = g.upload('q', Float32Array.from(q));
  g.attention(out, gq, stride, gc.layers[0], gs, c.rows, c.past, shape);
  const got = await g.read(out, want.length);
  for (const b of [gt, gsrc, out, gq]) g.free(b);
  gc.destroy();
  return err(got, want);
};
