// An independent plain-TS reference of a whole VLM pipeline (tests only): preprocessing on
// raw RGBA (src/vision/preprocess.ts, itself pure math), the SigLIP tower written from the
// formulas (conv patch embedding as a direct convolution, per-head softmax attention,
// LayerNorm, GELU-tanh), the connector (Idefics3: pixel shuffle as HF's view/permute/reshape
// steps and a linear; Gemma 3: HF's projector as transpose -> reshape to [D, n, n] -> average
// pool -> flatten -> transpose -> (1+w) RMSNorm -> x @ W with W [D, textHidden] as stored),
// the splice at the image ids, and the text model via ReferenceModel (its embedding-input
// entry; Gemma 3's image blocks attend bidirectionally). Reads tensors by HF names (the
// families' canonical layout); shares no code with src/vision/siglip.ts.
import type { ModelConfig } from '../model/config.ts';
import type { Qwen3VisionConfig, SiglipVisionConfig } from '../model/vision_config.ts';
import { erfCpu } from './cpu_vision_ops.ts';
import { ReferenceModel, type TensorGetter } from './reference_model.ts';
import { InternalError } from '../errors.ts';

function lin(w: Float32Array, b: Float32Array | null, x: Float32Array, out: number): Float32Array {
  const n = x.length, y = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    let a = b ? b[o] : 0;
    for (let i = 0; i < n; i++) a += w[o * n + i] * x[i];
    y[o] = a;
  }
  return y;
}

function ln(x: Float32Array, g: Float32Array, b: Float32Array, eps: number): Float32Array {
  const mean = x.reduce((a, v) => a + v, 0) / x.length;
  const vr = x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length;
  return x.map((v, i) => ((v - mean) / Math.sqrt(vr + eps)) * g[i] + b[i]);
}

const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

export class VlmReference {
  readonly text: ReferenceModel;
  constructor(readonly c: ModelConfig, private readonly t: TensorGetter) {
    // The text model's tensors live under model.text_model.* (Idefics3) or
    // model.language_model.* (Gemma 3, with (1+w) norms); lm_head stays at the top.
    const gemma = c.modelType === 'gemma3';
    const under = gemma || c.modelType === 'qwen3_vl' ? 'model.language_model.' : 'model.text_model.';
    this.text = new ReferenceModel(c, (n) => t(n.startsWith('model.') ? `${under}${n.slice(6)}` : n), gemma ? 1 : 0);
  }

  protected w(n: string): Float32Array {
    const v = this.t(n);
    if (!v) throw new InternalError(`vlm reference: missing ${n}`);
    return v;
  }

  /** SigLIP on one tile [C, S, S]: the post-layernorm output, one Float32Array [D] per patch. */
  visionTower(tile: Float32Array): Float32Array[] {
    const v = this.c.vision as SiglipVisionConfig, D = v.hiddenSize, p = v.patchSize, S = v.imageSize, n = S / p, C = v.numChannels;
    const P = v.towerPrefix;
    const cw = this.w(`${P}embeddings.patch_embedding.weight`), cb = this.w(`${P}embeddings.patch_embedding.bias`), pos = this.w(`${P}embeddings.position_embedding.weight`);
    let h: Float32Array[] = [];
    for (let py = 0; py < n; py++) {
      for (let px = 0; px < n; px++) {
        const e = new Float32Array(D);
        for (let d = 0; d < D; d++) {
          let a = cb[d];
          for (let c = 0; c < C; c++) for (let ky = 0; ky < p; ky++) for (let kx = 0; kx < p; kx++) a += cw[((d * C + c) * p + ky) * p + kx] * tile[(c * S + py * p + ky) * S + px * p + kx];
          e[d] = a + pos[(py * n + px) * D + d];
        }
        h.push(e);
      }
    }
    const H = v.numHeads, hd = v.headDim;
    for (let l = 0; l < v.numLayers; l++) {
      const e = `${P}encoder.layers.${l}.`, g = (s: string) => this.w(e + s);
      const x1 = h.map((r) => ln(r, g('layer_norm1.weight'), g('layer_norm1.bias'), v.layerNormEps));
      const q = x1.map((r) => lin(g('self_attn.q_proj.weight'), g('self_attn.q_proj.bias'), r, D));
      const k = x1.map((r) => lin(g('self_attn.k_proj.weight'), g('self_attn.k_proj.bias'), r, D));
      const vv = x1.map((r) => lin(g('self_attn.v_proj.weight'), g('self_attn.v_proj.bias'), r, D));
      const att = h.map(() => new Float32Array(D));
      for (let i = 0; i < h.length; i++) {
        for (let hh = 0; hh < H; hh++) {
          const sc = k.map((kr) => { let s = 0; for (let j = 0; j < hd; j++) s += q[i][hh * hd + j] * kr[hh * hd + j]; return s / Math.sqrt(hd); });
          const m = Math.max(...sc), ex = sc.map((s) => Math.exp(s - m)), z = ex.reduce((a, b) => a + b, 0);
          for (let j = 0; j < hd; j++) att[i][hh * hd + j] = ex.reduce((a, w, t) => a + (w / z) * vv[t][hh * hd + j], 0);
        }
      }
      h = h.map((r, i) => { const o = lin(g('self_attn.out_proj.weight'), g('self_attn.out_proj.bias'), att[i], D); return r.map((x, j) => x + o[j]); });
      h = h.map((r) => {
        const x2 = ln(r, g('layer_norm2.weight'), g('layer_norm2.bias'), v.layerNormEps);
        const f = lin(g('mlp.fc1.weight'), g('mlp.fc1.bias'), x2, v.intermediateSize).map(gelu);
        const o = lin(g('mlp.fc2.weight'), g('mlp.fc2.bias'), f, D);
        return r.map((x, j) => x + o[j]);
      });
    }
    return h.map((r) => ln(r, this.w(`${P}post_layernorm.weight`), this.w(`${P}post_layernorm.bias`), v.layerNormEps));
  }

  /** HF Idefics3Connector.pixel_shuffle, step by step on a flat [seq, D] tensor. */
  pixelShuffle(x: Float32Array[], s: number): Float32Array[] {
    const seq = x.length, D = x[0].length, side = Math.round(Math.sqrt(seq));
    const flat = new Float32Array(seq * D);
    x.forEach((r, i) => flat.set(r, i * D));
    // view (side, side/s, s*D) is the same memory; permute(1,0,2) -> (side/s, side, s*D)
    const a = new Float32Array(flat.length);
    const W1 = side / s, C1 = s * D;
    for (let hh = 0; hh < side; hh++) for (let w = 0; w < W1; w++) for (let c = 0; c < C1; c++) a[(w * side + hh) * C1 + c] = flat[(hh * W1 + w) * C1 + c];
    // reshape (side/s, side/s, s*s*D) is the same memory; permute(1,0,2)
    const C2 = s * s * D, b = new Float32Array(flat.length);
    for (let w = 0; w < W1; w++) for (let hb = 0; hb < W1; hb++) for (let c = 0; c < C2; c++) b[(hb * W1 + w) * C2 + c] = a[(w * W1 + hb) * C2 + c];
    return Array.from({ length: seq / (s * s) }, (_, i) => b.slice(i * C2, (i + 1) * C2));
  }

  /**
   * HF Gemma3MultiModalProjector on one image's tower output [n^2][D]: [n^2, D] -> transpose
   * [D, n^2] -> reshape [D, n, n] -> AvgPool2d(k, stride k) -> [D, m, m] -> flatten [D, m^2]
   * -> transpose [m^2, D] -> RMSNorm (x / rms * (1 + w)) -> x @ W, W [D, textHidden].
   */
  gemma3Projector(tower: Float32Array[]): Float32Array[] {
    const v = this.c.vision as SiglipVisionConfig;
    if (v.connector.kind !== 'avg_pool') throw new InternalError('not a Gemma 3 projector');
    const seq = tower.length, D = tower[0].length, n = Math.round(Math.sqrt(seq)), k = v.connector.kernel, m = n / k;
    const chw = new Float32Array(D * seq); // [D, n, n]
    tower.forEach((r, i) => r.forEach((x, d) => (chw[d * seq + i] = x)));
    const pooled = new Float32Array(D * m * m); // [D, m, m]
    for (let d = 0; d < D; d++)
      for (let y = 0; y < m; y++)
        for (let x = 0; x < m; x++) {
          let a = 0;
          for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) a += chw[d * seq + (y * k + dy) * n + x * k + dx];
          pooled[(d * m + y) * m + x] = a / (k * k);
        }
    const g = this.w(v.connector.norm), W = this.w(v.connector.weight), eps = v.connector.normEps, T = v.textHidden;
    return Array.from({ length: m * m }, (_, j) => {
      const row = Float32Array.from({ length: D }, (_, d) => pooled[d * m * m + j]);
      const rms = Math.sqrt(row.reduce((a, x) => a + x * x, 0) / D + eps);
      const normed = row.map((x, d) => (x / rms) * (1 + g[d]));
      const out = new Float32Array(T);
      for (let o = 0; o < T; o++) {
        let a = 0;
        for (let d = 0; d < D; d++) a += normed[d] * W[d * T + o];
        out[o] = a;
      }
      return out;
    });
  }

  /** Connector output of one tile: tokensPerTile rows of [textHidden]. */
  connector(tower: Float32Array[]): Float32Array[] {
    const v = this.c.vision as SiglipVisionConfig;
    if (v.connector.kind === 'avg_pool') return this.gemma3Projector(tower);
    const w = this.w(v.connector.weight);
    return this.pixelShuffle(tower, v.connector.scaleFactor).map((r) => lin(w, null, r, v.textHidden));
  }

  /** Image features of preprocessed tiles ([tiles, C, S, S]), in prompt order. */
  imageFeatures(pixels: Float32Array, tiles: number): Float32Array[] {
    const v = this.c.vision as SiglipVisionConfig, T = v.numChannels * v.imageSize ** 2;
    const out: Float32Array[] = [];
    for (let t = 0; t < tiles; t++) out.push(...this.connector(this.visionTower(pixels.subarray(t * T, (t + 1) * T))));
    return out;
  }

  /**
   * First-token logits of a prompt whose image ids take `features` in order (POP keep). With
   * bidirectional images (Gemma 3) each run of image ids is one block (HF's image_group_ids:
   * a new group starts at an image token that follows a non-image one), unless `causal` is set
   * (to show the mask matters).
   */
  promptLogits(prompt: number[], features: Float32Array[], keep = this.c.numLayers, causal = false): Float32Array {
    const v = this.c.vision as SiglipVisionConfig, id = v.imageTokenId;
    this.text.mrope = null;
    this.text.deepstack = null;
    let k = 0;
    const rows = prompt.map((t) => (t === id ? features[k++] : t));
    if (k !== features.length) throw new InternalError(`prompt has ${k} image tokens, features ${features.length}`);
    const blocks: [number, number][] = [];
    if (v.bidirectionalImages && !causal) {
      prompt.forEach((t, i) => {
        if (t !== id) return;
        if (i > 0 && prompt[i - 1] === id) blocks[blocks.length - 1][1] = i + 1;
        else blocks.push([i, i + 1]);
      });
    }
    this.text.reset();
    return this.text.feed(rows, 0, keep, blocks);
  }
}

// Qwen3-VL, from transformers' modeling_qwen3_vl.py read as formulas (no code shared with
// src/vision/qwen3_vl.ts): the tower on one image's flattened patches, get_rope_index's
// positions, and the text model with M-RoPE and DeepStack's adds.
export class Qwen3VlReference extends VlmReference {
  private get v(): Qwen3VisionConfig {
    return this.c.vision as Qwen3VisionConfig;
  }

  /**
   * Qwen3VLVisionModel on one image: `patches` [gh gw, C T p p] in the processor's block order.
   * Returns the merged features [gh gw / 4][textHidden] and each DeepStack tap's, in tap order.
   */
  qwenTower(patches: Float32Array, gh: number, gw: number): { features: Float32Array[]; deepstack: Float32Array[][] } {
    const v = this.v, D = v.hiddenSize, m = v.mergeSize, N = gh * gw, K = patches.length / N, P = 'model.visual.';
    const w = (n: string) => this.w(P + n);
    // Conv3d with stride = kernel over one [C, T, p, p] patch is the dot product with each filter.
    const pw = w('patch_embed.proj.weight'), pb = w('patch_embed.proj.bias');
    let h = Array.from({ length: N }, (_, r) => lin(pw, pb, patches.subarray(r * K, (r + 1) * K), D));
    // fast_pos_embed_interpolate: raster-order bilinear samples of the side x side table, then
    // view (gh/m, m, gw/m, m) -> permute (0, 2, 1, 3): block order.
    const side = v.positionSide, table = w('pos_embed.weight');
    const lsp = (n: number) => Array.from({ length: n }, (_, i) => (n === 1 ? 0 : (i * (side - 1)) / (n - 1)));
    const hs = lsp(gh), ws = lsp(gw);
    const raster: Float32Array[] = [];
    for (const y of hs)
      for (const x of ws) {
        const y0 = Math.floor(y), x0 = Math.floor(x), y1 = Math.min(y0 + 1, side - 1), x1 = Math.min(x0 + 1, side - 1), dy = y - y0, dx = x - x0;
        const e = new Float32Array(D);
        for (let d = 0; d < D; d++) e[d] = (1 - dy) * (1 - dx) * table[(y0 * side + x0) * D + d] + (1 - dy) * dx * table[(y0 * side + x1) * D + d] + dy * (1 - dx) * table[(y1 * side + x0) * D + d] + dy * dx * table[(y1 * side + x1) * D + d];
        raster.push(e);
      }
    const blockOrder: [number, number][] = [];
    for (let bh = 0; bh < gh / m; bh++) for (let bw = 0; bw < gw / m; bw++) for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) blockOrder.push([bh * m + i, bw * m + j]);
    h = h.map((r, k) => r.map((x, d) => x + raster[blockOrder[k][0] * gw + blockOrder[k][1]][d]));
    // rot_pos_emb: freq table of head_dim/2 / 2 frequencies, row and column angles side by side, doubled.
    const hd = v.headDim, H = v.numHeads, dim = hd / 2;
    const inv = Array.from({ length: dim / 2 }, (_, j) => 1 / Math.pow(10000, (2 * j) / dim));
    const ang = blockOrder.map(([r, c]) => { const a = [...inv.map((f) => r * f), ...inv.map((f) => c * f)]; return [...a, ...a]; });
    const rot = (x: Float32Array, k: number, off: number) => {
      const out = Float32Array.from(x);
      for (let hh = 0; hh < H; hh++)
        for (let i = 0; i < hd; i++) {
          const rh = i < hd / 2 ? -x[off + hh * hd + i + hd / 2] : x[off + hh * hd + i - hd / 2];
          out[off + hh * hd + i] = x[off + hh * hd + i] * Math.cos(ang[k][i]) + rh * Math.sin(ang[k][i]);
        }
      return out;
    };
    const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    const geluErf = (x: number) => 0.5 * x * (1 + erfCpu(x / Math.SQRT2));
    const merger = (prefix: string, x: Float32Array[], post: boolean): Float32Array[] => {
      const g = (n: string) => w(prefix + n);
      const rows = post ? x : x.map((r) => ln(r, g('norm.weight'), g('norm.bias'), 1e-6));
      const out: Float32Array[] = [];
      for (let t = 0; t < rows.length / (m * m); t++) {
        const cat = new Float32Array(D * m * m);
        for (let k = 0; k < m * m; k++) cat.set(rows[t * m * m + k], k * D);
        const normed = post ? ln(cat, g('norm.weight'), g('norm.bias'), 1e-6) : cat;
        const f1 = lin(g('linear_fc1.weight'), g('linear_fc1.bias'), normed, D * m * m).map(geluErf);
        out.push(lin(g('linear_fc2.weight'), g('linear_fc2.bias'), f1, v.textHidden));
      }
      return out;
    };
    const deepstack: Float32Array[][] = [];
    for (let l = 0; l < v.numLayers; l++) {
      const b = (n: string) => w(`blocks.${l}.${n}`);
      const x1 = h.map((r) => ln(r, b('norm1.weight'), b('norm1.bias'), 1e-6));
      const qkv = x1.map((r, k) => { const y = lin(b('attn.qkv.weight'), b('attn.qkv.bias'), r, 3 * D); return rot(rot(y, k, 0), k, D); });
      const att = h.map(() => new Float32Array(D));
      for (let i = 0; i < N; i++)
        for (let hh = 0; hh < H; hh++) {
          const sc = qkv.map((kr) => { let s = 0; for (let j = 0; j < hd; j++) s += qkv[i][hh * hd + j] * kr[D + hh * hd + j]; return s / Math.sqrt(hd); });
          const mx = Math.max(...sc), ex = sc.map((s) => Math.exp(s - mx)), z = ex.reduce((a, c) => a + c, 0);
          for (let j = 0; j < hd; j++) att[i][hh * hd + j] = ex.reduce((a, e, t) => a + (e / z) * qkv[t][2 * D + hh * hd + j], 0);
        }
      h = h.map((r, i) => { const o = lin(b('attn.proj.weight'), b('attn.proj.bias'), att[i], D); return r.map((x, j) => x + o[j]); });
      h = h.map((r) => {
        const f = lin(b('mlp.linear_fc1.weight'), b('mlp.linear_fc1.bias'), ln(r, b('norm2.weight'), b('norm2.bias'), 1e-6), v.intermediateSize).map(gelu);
        const o = lin(b('mlp.linear_fc2.weight'), b('mlp.linear_fc2.bias'), f, D);
        return r.map((x, j) => x + o[j]);
      });
      const tap = v.deepstackIndexes.indexOf(l);
      if (tap >= 0) deepstack[tap] = merger(`deepstack_merger_list.${tap}.`, h, true);
    }
    return { features: merger('merger.', h, false), deepstack };
  }

  /** get_rope_index for one prompt (image k: grids[k] merged tokens per side), as HF's loop over image starts. */
  qwenPositions(prompt: readonly number[], grids: readonly { h: number; w: number }[]): { pos: [number, number, number][]; next: number } {
    const id = this.v.imageTokenId, pos: [number, number, number][] = [];
    let st = 0, image = 0;
    const nextIndex = () => (pos.length ? Math.max(...pos.map((p) => Math.max(...p))) + 1 : 0);
    while (image < grids.length) {
      const ed = prompt.indexOf(id, st);
      const s0 = nextIndex();
      for (let i = 0; i < ed - st; i++) pos.push([s0 + i, s0 + i, s0 + i]);
      const g = grids[image++], base = s0 + ed - st;
      for (let r = 0; r < g.h; r++) for (let c = 0; c < g.w; c++) pos.push([base, base + r, base + c]);
      st = ed + g.h * g.w;
    }
    const s0 = nextIndex();
    for (let i = 0; i < prompt.length - st; i++) pos.push([s0 + i, s0 + i, s0 + i]);
    return { pos, next: nextIndex() };
  }

  /**
   * Qwen3-VL text model on a prompt: image ids take `features` in order, the rows at image
   * positions add `deepstack[j]` after decoder layer j, positions by get_rope_index (decode
   * continues at the prompt's max + 1). Returns the first-token logits and then the logits after
   * each `continuation` token fed at full depth. `flat` (to show the positions matter): 1-D
   * positions instead.
   */
  qwenLogits(prompt: number[], grids: readonly { h: number; w: number }[], features: Float32Array[], deepstack: Float32Array[][], keep = this.c.numLayers, continuation: number[] = [], flat = false): Float32Array[] {
    const v = this.v, id = v.imageTokenId;
    const { pos, next } = this.qwenPositions(prompt, grids);
    this.text.mrope = { section: v.mropeSection, position: (p) => (flat ? [p, p, p] : p < pos.length ? pos[p] : [next + p - pos.length, next + p - pos.length, next + p - pos.length]) };
    let k = 0;
    const adds = new Map<number, Float32Array[]>();
    const rows = prompt.map((t, i) => {
      if (t !== id) return t;
      if (deepstack.length) adds.set(i, deepstack.map((d) => d[k]));
      return features[k++];
    });
    if (k !== features.length) throw new InternalError(`prompt has ${k} image tokens, features ${features.length}`);
    this.text.deepstack = adds;
    this.text.reset();
    const out = [this.text.feed(rows, 0, keep)];
    continuation.forEach((t, i) => out.push(this.text.feed([t], prompt.length + i)));
    return out;
  }
}
