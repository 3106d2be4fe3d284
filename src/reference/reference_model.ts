// An independent, deliberately simple CPU implementation of a decoder LLM with POP, used
// by the tests only. It reads tensors by their Hugging Face names, keeps a contiguous
// K/V cache per layer, and applies each formula as written (no fused layouts, no folded
// gains, no pages), so that it shares nothing with the engine but the config.
import type { ModelConfig } from '../model/config.ts';
import { ropeInvFreq } from '../model/config.ts';
import { geluTanh, silu } from './cpu_ops.ts';
import { InternalError } from '../errors.ts';

export type TensorGetter = (name: string) => Float32Array | null;

function rmsnorm(x: Float32Array, g: Float32Array | null, eps: number, offset: number): Float32Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * r * (g ? g[i] + offset : 1));
}

/** y = W x (+ b), W stored [out, in]. */
function linear(w: Float32Array, x: Float32Array, b: Float32Array | null, out: number): Float32Array {
  const n = x.length, y = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    let acc = b ? b[o] : 0;
    for (let i = 0; i < n; i++) acc += w[o * n + i] * x[i];
    y[o] = acc;
  }
  return y;
}

/** Rotate-half RoPE with angle[i] for pair i. */
function rope(v: Float32Array, heads: number, d: number, angle: Float32Array): void {
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < d / 2; i++) {
      const a = angle[i];
      const x1 = v[h * d + i], x2 = v[h * d + i + d / 2];
      v[h * d + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
      v[h * d + i + d / 2] = x2 * Math.cos(a) + x1 * Math.sin(a);
    }
  }
}

function headNorm(v: Float32Array, heads: number, d: number, g: Float32Array, eps: number, offset: number): void {
  for (let h = 0; h < heads; h++) v.set(rmsnorm(v.subarray(h * d, (h + 1) * d), g, eps, offset), h * d);
}

export interface ReferenceNames {
  /** Gemma-style (1 + w) norm gains. */
  normOffset: number;
}

export class ReferenceModel {
  readonly kCache: Float32Array[][] = [];
  readonly vCache: Float32Array[][] = [];
  private readonly invFreq: Float32Array[];

  /**
   * M-RoPE (Qwen3-VL): the (t, h, w) position of the token at each cache position, and the
   * frequency pairs per axis (mrope_section); pairs follow HF's apply_interleaved_mrope.
   * Unset: 1-D positions.
   */
  mrope: { section: readonly [number, number, number]; position: (pos: number) => readonly [number, number, number] } | null = null;
  /** DeepStack (Qwen3-VL): after decoder layer j, the token at cache position p adds deepstack.get(p)[j]. */
  deepstack: Map<number, Float32Array[]> | null = null;

  constructor(readonly c: ModelConfig, private readonly t: TensorGetter, private readonly normOffset = 0) {
    this.invFreq = c.rope.map((r) => ropeInvFreq(r, c.headDim));
    this.reset();
  }

  /** RoPE angle of each frequency pair of layer l at cache position pos. */
  private angles(l: number, pos: number): Float32Array {
    const inv = this.invFreq[l], m = this.mrope;
    if (!m) return inv.map((f) => Math.fround(pos * f));
    // HF: start from the temporal axis, then overwrite pairs offset, offset+3, .. < 3 section[axis] with h (offset 1) and w (offset 2).
    const p = m.position(pos), axis = new Array<number>(inv.length).fill(0);
    for (const dim of [1, 2]) for (let i = dim; i < 3 * m.section[dim]; i += 3) axis[i] = dim;
    return inv.map((f, i) => Math.fround(p[axis[i]] * f));
  }

  /** DeepStack's add after layer l for the rows at positions start.. . */
  private deepstackAdd(l: number, hs: Float32Array[], start: number): Float32Array[] {
    if (!this.deepstack) return hs;
    return hs.map((h, i) => {
      const add = this.deepstack!.get(start + i)?.[l];
      return add ? h.map((x, j) => x + add[j]) : h;
    });
  }

  reset(): void {
    this.kCache.length = 0;
    this.vCache.length = 0;
    for (let l = 0; l < this.c.numLayers; l++) this.kCache.push([]), this.vCache.push([]);
  }

  private w(name: string): Float32Array {
    const v = this.t(name);
    if (!v) throw new InternalError(`reference: missing tensor ${name}`);
    return v;
  }

  private layerKv(l: number, h: Float32Array, pos: number): { k: Float32Array; v: Float32Array } {
    const c = this.c, p = `model.layers.${l}.self_attn.`;
    const xn = rmsnorm(h, this.w(`model.layers.${l}.input_layernorm.weight`), c.rmsNormEps, this.normOffset);
    const kv = c.numKvHeads * c.headDim;
    const k = linear(this.w(p + 'k_proj.weight'), xn, this.t(p + 'k_proj.bias'), kv);
    const v = linear(this.w(p + 'v_proj.weight'), xn, this.t(p + 'v_proj.bias'), kv);
    if (c.qkNorm) headNorm(k, c.numKvHeads, c.headDim, this.w(p + 'k_norm.weight'), c.rmsNormEps, this.normOffset);
    rope(k, c.numKvHeads, c.headDim, this.angles(l, pos));
    return { k, v };
  }

  /**
   * One decoder layer for the tokens at positions start.. (one token, or a bidirectional
   * block): appends their K/V, then each row attends every key HF's mask shows it: keys at or
   * before it (within the layer's sliding window), or (block rows) any key of its block, as
   * Gemma 3's token_type_ids mask ORs the image block over the causal (sliding) mask.
   */
  private layer(l: number, hs: Float32Array[], start: number, block: readonly [number, number] | null): Float32Array[] {
    const c = this.c, p = `model.layers.${l}.`;
    const qs = hs.map((h, i) => {
      const xn = rmsnorm(h, this.w(p + 'input_layernorm.weight'), c.rmsNormEps, this.normOffset);
      const q = linear(this.w(p + 'self_attn.q_proj.weight'), xn, this.t(p + 'self_attn.q_proj.bias'), c.numHeads * c.headDim);
      if (c.qkNorm) headNorm(q, c.numHeads, c.headDim, this.w(p + 'self_attn.q_norm.weight'), c.rmsNormEps, this.normOffset);
      rope(q, c.numHeads, c.headDim, this.angles(l, start + i));
      const { k, v } = this.layerKv(l, h, start + i);
      this.kCache[l][start + i] = k;
      this.vCache[l][start + i] = v;
      return q;
    });
    const group = c.numHeads / c.numKvHeads;
    const win = c.slidingWindow[l];
    return hs.map((h, i) => {
      const pos = start + i, q = qs[i];
      const keys: number[] = [];
      for (let t = 0; t < this.kCache[l].length; t++) {
        const causal = t <= pos && (win === 0 || t > pos - win);
        const sameBlock = block !== null && t >= block[0] && t < block[1];
        if (causal || sameBlock) keys.push(t);
      }
      const att = new Float32Array(c.numHeads * c.headDim);
      for (let hh = 0; hh < c.numHeads; hh++) {
        const kh = Math.floor(hh / group);
        const scores = keys.map((t) => {
          let s = 0;
          for (let j = 0; j < c.headDim; j++) s += q[hh * c.headDim + j] * this.kCache[l][t][kh * c.headDim + j];
          return s * c.attnScale;
        });
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        keys.forEach((t, n) => {
          for (let j = 0; j < c.headDim; j++) att[hh * c.headDim + j] += (e[n] / z) * this.vCache[l][t][kh * c.headDim + j];
        });
      }
      let o = linear(this.w(p + 'self_attn.o_proj.weight'), att, null, c.hiddenSize);
      if (c.postNorms) o = rmsnorm(o, this.w(p + 'post_attention_layernorm.weight'), c.rmsNormEps, this.normOffset);
      const h2 = h.map((x, j) => x + o[j]);

      const mlpNormName = c.postNorms ? p + 'pre_feedforward_layernorm.weight' : p + 'post_attention_layernorm.weight';
      const xn2 = rmsnorm(h2, this.w(mlpNormName), c.rmsNormEps, this.normOffset);
      const gate = linear(this.w(p + 'mlp.gate_proj.weight'), xn2, null, c.intermediateSize);
      const up = linear(this.w(p + 'mlp.up_proj.weight'), xn2, null, c.intermediateSize);
      const act = c.activation === 'silu' ? silu : geluTanh;
      const hid = gate.map((g, j) => act(g) * up[j]);
      let d = linear(this.w(p + 'mlp.down_proj.weight'), hid, null, c.hiddenSize);
      if (c.postNorms) d = rmsnorm(d, this.w(p + 'post_feedforward_layernorm.weight'), c.rmsNormEps, this.normOffset);
      return h2.map((x, j) => x + d[j]);
    });
  }

  private logits(h: Float32Array): Float32Array {
    const c = this.c;
    const xn = rmsnorm(h, this.w('model.norm.weight'), c.rmsNormEps, this.normOffset);
    const head = (c.tieWordEmbeddings ? null : this.t('lm_head.weight')) ?? this.w('model.embed_tokens.weight');
    const out = linear(head, xn, null, c.vocabSize);
    if (c.finalLogitSoftcap > 0) for (let i = 0; i < out.length; i++) out[i] = c.finalLogitSoftcap * Math.tanh(out[i] / c.finalLogitSoftcap);
    return out;
  }

  private embed(id: number): Float32Array {
    const H = this.c.hiddenSize;
    return this.w('model.embed_tokens.weight').slice(id * H, (id + 1) * H).map((v) => v * this.c.embeddingScale);
  }

  /**
   * Feeds tokens at positions start.. . With keep < L (POP), every token but the last runs
   * layers [0, keep) and gets deep-layer K/V by projecting the hidden state leaving layer
   * keep-1 with each deep layer's own norm and K/V weights; the last token runs all layers.
   * Returns the last token's logits. A Float32Array in `tokens` is an input embedding used
   * as is (a VLM's image features) instead of a table row. `blocks`: [start, end) position
   * ranges (inside this call) whose tokens attend to each other in both directions (Gemma 3's
   * images); their rows go through each layer together.
   */
  feed(tokens: (number | Float32Array)[], start: number, keep = this.c.numLayers, blocks: readonly (readonly [number, number])[] = []): Float32Array {
    const L = this.c.numLayers, n = tokens.length;
    let last: Float32Array | null = null;
    for (let i = 0; i < n; ) {
      const block = blocks.find(([s, e]) => s <= start + i && start + i < e) ?? null;
      if (block && (block[0] !== start + i || block[1] > start + n)) throw new InternalError(`reference: block [${block}] is not inside this feed`);
      const size = block ? block[1] - block[0] : 1;
      let hs = tokens.slice(i, i + size).map((id) => (typeof id === 'number' ? this.embed(id) : Float32Array.from(id)));
      const full = i + size === n; // holds the prompt's last token
      const depth = full && size === 1 ? L : keep;
      for (let l = 0; l < depth; l++) hs = this.deepstackAdd(l, this.layer(l, hs, start + i, block), start + i);
      // Rows that stop at keep: deep K/V from the hidden state leaving layer keep-1.
      const shallow = full ? (depth === L ? 0 : size - 1) : size;
      for (let r = 0; r < shallow; r++) {
        for (let l = keep; l < L; l++) {
          const { k, v } = this.layerKv(l, hs[r], start + i + r);
          this.kCache[l][start + i + r] = k;
          this.vCache[l][start + i + r] = v;
        }
      }
      if (full) {
        // The last row goes on alone through the layers it has not run yet.
        let h = hs[size - 1];
        for (let l = depth; l < L; l++) h = this.deepstackAdd(l, this.layer(l, [h], start + n - 1, null), start + n - 1)[0];
        last = this.logits(h);
      }
      i += size;
    }
    return last!;
  }

  /** Greedy generation: prompt with POP `keep`, then full-depth decode. */
  generateGreedy(prompt: number[], maxTokens: number, keep = this.c.numLayers): number[] {
    this.reset();
    let logits = this.feed(prompt, 0, keep);
    const out: number[] = [];
    let pos = prompt.length;
    for (let i = 0; i < maxTokens; i++) {
      let best = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
      out.push(best);
      if (i + 1 < maxTokens) logits = this.feed([best], pos++);
    }
    return out;
  }
}
