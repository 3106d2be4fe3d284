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
import type { VisionConfig } from '../model/vision_config.ts';
import { ReferenceModel, type TensorGetter } from './reference_model.ts';

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
    const under = gemma ? 'model.language_model.' : 'model.text_model.';
    this.text = new ReferenceModel(c, (n) => t(n.startsWith('model.') ? `${under}${n.slice(6)}` : n), gemma ? 1 : 0);
  }

  private w(n: string): Float32Array {
    const v = this.t(n);
    if (!v) throw new Error(`vlm reference: missing ${n}`);
    return v;
  }

  /** SigLIP on one tile [C, S, S]: the post-layernorm output, one Float32Array [D] per patch. */
  visionTower(tile: Float32Array): Float32Array[] {
    const v = this.c.vision as VisionConfig, D = v.hiddenSize, p = v.patchSize, S = v.imageSize, n = S / p, C = v.numChannels;
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
    const v = this.c.vision as VisionConfig;
    if (v.connector.kind !== 'avg_pool') throw new Error('not a Gemma 3 projector');
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
    const v = this.c.vision as VisionConfig;
    if (v.connector.kind === 'avg_pool') return this.gemma3Projector(tower);
    const w = this.w(v.connector.weight);
    return this.pixelShuffle(tower, v.connector.scaleFactor).map((r) => lin(w, null, r, v.textHidden));
  }

  /** Image features of preprocessed tiles ([tiles, C, S, S]), in prompt order. */
  imageFeatures(pixels: Float32Array, tiles: number): Float32Array[] {
    const v = this.c.vision as VisionConfig, T = v.numChannels * v.imageSize ** 2;
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
    const v = this.c.vision as VisionConfig, id = v.imageTokenId;
    let k = 0;
    const rows = prompt.map((t) => (t === id ? features[k++] : t));
    if (k !== features.length) throw new Error(`prompt has ${k} image tokens, features ${features.length}`);
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
