// The one forward pass. Reads top to bottom like the architecture:
//   embed -> per layer [norm -> QKV -> RoPE -> paged KV write -> attention -> O (+res)
//   -> norm -> gate|up -> GLU -> down (+res)] -> final norm -> LM head (last row only).
// POP is a parameter: prompt rows run layers [0, keep) only; at layer `keep` each deep
// layer's K/V for those rows is projected from the hidden state leaving layer keep-1
// (independent KV projection, one GEMM over stacked weights); the boundary row (the last
// prompt token) goes on through every layer. keep = L is ordinary prefill and decode.
import type { ModelConfig } from '../model/config.ts';
import { deepKvRows, isKvShared, kvSourceOf, layerKvDim, layerQDim, layerShape, maxOverLayers } from '../model/config.ts';
import type { Weights } from '../model/weights.ts';
import type { Ops } from '../ops/ops.ts';
import type { PagedKvCache } from '../kv/paged_kv_cache.ts';
import { InvalidArgumentError } from '../errors.ts';

/** Scratch activations, sized for `maxRows` tokens per forward call. */
export interface RunState<T> {
  maxRows: number;
  x: T; //      [rows, hidden]        residual stream
  xb: T; //     [rows, hidden]        normed input / projection output
  qkv: T; //    [rows, q + 2 kv]
  att: T; //    [rows, q]             attention output
  gu: T; //     [rows, 2 inter]       gate | up
  hb: T; //     [rows, inter]         GLU output
  deepKv: T | null; // [rows, (L-1) 2 kv]  POP's stacked K/V projections
  gateSave: T; //  [rows, hidden]        residual rows kept aside while a virtual gate is closed
  ple: T | null; // [rows, L P]        Gemma 4: every layer's per-layer input
  pleRows: T | null; // [rows, L P]    the per-layer table's rows, then added into `ple`
  pleGate: T | null; // [rows, P]      one layer's gated per-layer input
  last: T; //   [hidden]              final-normed last row
  logits: T; // [vocab]
}

export function createRunState<T>(ops: Ops<T>, c: ModelConfig, maxRows: number, withPop: boolean): RunState<T> {
  const h = c.hiddenSize, f = maxOverLayers(c, (l) => layerShape(c, l).intermediateSize);
  const deepRows = deepKvRows(c, 1);
  const LP = c.perLayerInput ? c.numLayers * c.perLayerInput.dim : 0;
  return {
    maxRows,
    x: ops.alloc('state.x', maxRows * h),
    xb: ops.alloc('state.xb', maxRows * h),
    qkv: ops.alloc('state.qkv', maxRows * maxOverLayers(c, (l) => layerQDim(c, l) + 2 * layerKvDim(c, l))),
    att: ops.alloc('state.att', maxRows * maxOverLayers(c, (l) => layerQDim(c, l))),
    gu: ops.alloc('state.gu', maxRows * 2 * f),
    hb: ops.alloc('state.hb', maxRows * f),
    deepKv: withPop && deepRows > 0 ? ops.alloc('state.deepKv', maxRows * deepRows) : null,
    gateSave: ops.alloc('state.gateSave', maxRows * h),
    ple: LP ? ops.alloc('state.ple', maxRows * LP) : null,
    pleRows: LP ? ops.alloc('state.pleRows', maxRows * LP) : null,
    pleGate: LP ? ops.alloc('state.pleGate', maxRows * c.perLayerInput!.dim) : null,
    last: ops.alloc('state.last', h),
    logits: ops.alloc('state.logits', c.vocabSize),
  };
}

export function freeRunState<T>(ops: Ops<T>, s: RunState<T>): void {
  for (const t of [s.x, s.xb, s.qkv, s.att, s.gu, s.hb, s.deepKv, s.gateSave, s.ple, s.pleRows, s.pleGate, s.last, s.logits]) if (t) ops.free(t);
}

export interface ForwardStep<T = unknown> {
  seqId: number;
  tokens: ArrayLike<number>;
  /** Position of tokens[0]. */
  startPos: number;
  /** Layers [0, keep) run for every row; keep = numLayers is full depth. */
  keep: number;
  /** The last row runs at full depth and produces logits (prompt end, or decode). */
  lastRowFullDepth: boolean;
  /**
   * Calibration's virtual gate: layer `layer`'s residual update is discarded for the context
   * rows ('prefill': every row but a full-depth last row) or for the predicting row ('decode':
   * the last row). The layer still writes its K/V for those rows.
   */
  gate?: { layer: number; stage: 'prefill' | 'decode' };
  /**
   * VLMs: row rows[i] of this step takes row src[i] of `data` ([*, hidden], the image
   * features) as its input embedding instead of the table row of its token id. Everything
   * after the embedding (POP included) treats these rows like any other.
   */
  embedOverride?: {
    data: T; rows: ArrayLike<number>; src: ArrayLike<number>;
    /**
     * DeepStack (Qwen3-VL): after decoder layer j (j < adds.length), row rows[i] adds row src[i]
     * of adds[j]. These layers are shallow: under POP they always run for every prompt row
     * (the engine refuses a keep below adds.length for image prompts), so no row misses an add.
     */
    adds?: readonly T[];
  };
  /**
   * M-RoPE (Qwen3-VL image prompts): the RoPE table of this request by cache position (row p =
   * the cos/sin of the token at position p, from its 3-D position), used instead of each
   * layer's 1-D table by every layer and by POP's deep K/V.
   */
  ropeTable?: T;
  /**
   * Per-row key ends (absolute positions, one per row of the step; Gemma 3's images): row r
   * also attends keys below keyEnd[r], i.e. the rest of its image, whose K/V this step writes
   * before attending. Used by the layers that run every row; POP's deep layers run only the
   * last row, the prompt's end, which sees every key already.
   */
  keyEnd?: ArrayLike<number>;
}

/** Runs one step; when lastRowFullDepth, `state.logits` holds the last row's logits. */
export function forward<T>(ops: Ops<T>, c: ModelConfig, w: Weights<T>, s: RunState<T>, cache: PagedKvCache<T>, step: ForwardStep<T>): void {
  const n = step.tokens.length;
  const L = c.numLayers, H = c.hiddenSize;
  const keep = Math.max(1, Math.min(L, step.keep));
  const seq = cache.reserve(step.seqId, step.startPos + n);

  ops.embed(s.x, step.tokens, w.embed, n, H, c.embeddingScale);
  if (step.embedOverride) spliceRows(ops, s.x, step.embedOverride, H);
  const P = c.perLayerInput?.dim ?? 0, LP = L * P;
  if (w.ple && s.ple && s.pleRows) perLayerInputs(ops, c, w.ple, s.ple, s.pleRows, s.x, step.tokens, n);

  let rows = n;
  let pos = step.startPos;
  let ple = s.ple; // the rows' per-layer inputs (after POP's switch, the last row's copy)
  for (let l = 0; l < L; l++) {
    if (l === keep) {
      // POP: prompt rows stop here; deep layers get their K/V from this hidden state.
      const shallowRows = step.lastRowFullDepth ? n - 1 : n;
      if (shallowRows > 0) projectDeepKv(ops, c, w, s, cache, seq, shallowRows, step.startPos, keep, step.ropeTable);
      if (!step.lastRowFullDepth) break;
      if (n > 1) ops.copyRows(s.x, 0, s.x, n - 1, 1, H);
      if (ple && s.pleRows) {
        ops.copyRows(s.pleRows, 0, ple, n - 1, 1, LP); // another buffer: a plain copy
        ple = s.pleRows;
      }
      rows = 1;
      pos = step.startPos + n - 1;
    }
    const lw = w.layers[l];
    const shape = layerShape(c, l), hd = shape.headDim, kvHeads = shape.numKvHeads;
    const Q = layerQDim(c, l), KV = layerKvDim(c, l);
    // A KV-shared layer (Gemma 4) projects only Q and attends its source layer's pages.
    const own = !isKvShared(c, l), QKV = own ? Q + 2 * KV : Q;
    const F = shape.intermediateSize;
    const rope = step.ropeTable ?? lw.rope;
    const gated = gatedRows(step, l, rows);
    if (gated) ops.copyRows(s.gateSave, 0, s.x, gated.first, gated.count, H);

    // Attention block.
    ops.normMatmul(s.qkv, s.x, lw.inputNorm, c.rmsNormEps, lw.qkv, rows, QKV, H, { bias: lw.qkvBias, normed: s.xb });
    ops.rope(s.qkv, rows, QKV, 0, c.numHeads, hd, pos, rope, lw.qNorm && { gain: lw.qNorm, eps: c.rmsNormEps });
    if (own) {
      if (c.valueNorm) ops.headNorm(s.qkv, rows, QKV, Q + KV, kvHeads, hd, null, c.rmsNormEps);
      ops.kvWrite(cache.layers[l], seq, s.qkv, rows, QKV, Q, Q + KV, kvHeads, hd, pos, rope, lw.kNorm && { gain: lw.kNorm, eps: c.rmsNormEps });
    }
    ops.attention(s.att, s.qkv, QKV, cache.layers[kvSourceOf(c, l)], seq, rows, pos, { numHeads: c.numHeads, numKvHeads: kvHeads, headDim: hd, scale: c.attnScale, window: c.slidingWindow[l] }, rows === n ? step.keyEnd : null);
    residualProject(ops, s, s.att, lw.o, lw.attnOutNorm, rows, H, Q, c.rmsNormEps);

    // MLP block.
    ops.normMatmul(s.gu, s.x, lw.mlpNorm, c.rmsNormEps, lw.gateUp, rows, 2 * F, H, { normed: s.xb });
    if (!lw.mlpOutNorm) ops.gluMatmul(s.x, s.gu, c.activation, lw.down, rows, H, F, { accumulate: true, hidden: s.hb });
    else {
      ops.gluMatmul(s.xb, s.gu, c.activation, lw.down, rows, H, F, { hidden: s.hb });
      ops.rmsNorm(s.xb, s.xb, lw.mlpOutNorm, rows, H, c.rmsNormEps);
      ops.add(s.x, s.xb, rows * H);
    }

    // Gemma 4: the per-layer input, gated by the hidden state, projected, normed and added;
    // then the layer's scalar on the whole hidden state.
    if (lw.pleGate && lw.pleProj && ple && s.pleGate) {
      ops.matmul(s.pleGate, s.x, lw.pleGate, rows, P, H);
      ops.gateMul(s.pleGate, ple, rows, P, LP, l * P, c.activation);
      residualProject(ops, s, s.pleGate, lw.pleProj, lw.pleNorm ?? null, rows, H, P, c.rmsNormEps);
    }
    const scalar = w.layerScalars?.[l] ?? 1;
    if (scalar !== 1) ops.scale(s.x, rows * H, scalar);
    if (gated) ops.copyRows(s.x, gated.first, s.gateSave, 0, gated.count, H);
    const adds = step.embedOverride?.adds;
    if (adds && l < adds.length) addRows(ops, s.x, step.embedOverride!, adds[l], H);
  }
  cache.setLength(step.seqId, step.startPos + n);

  if (step.lastRowFullDepth) {
    ops.copyRows(s.last, 0, s.x, rows - 1, 1, H);
    ops.rmsNorm(s.last, s.last, w.finalNorm, 1, H, c.rmsNormEps);
    ops.matmul(s.logits, s.last, w.lmHead, 1, c.vocabSize, H);
    if (c.finalLogitSoftcap > 0) ops.softcap(s.logits, c.vocabSize, c.finalLogitSoftcap);
  }
  ops.flush();
}

/**
 * Gemma 4's per-layer inputs for every row, [rows, L·P]: (rmsnorm_P(W_proj · e · hidden^-0.5) +
 * T[id] · sqrt(P)) · 2^-0.5, with e the scaled embedding in `x`. The hidden^-0.5 is folded
 * into W_proj and the 2^-0.5 into the norm gain and the table scale at load.
 */
function perLayerInputs<T>(ops: Ops<T>, c: ModelConfig, ple: NonNullable<Weights<T>['ple']>, out: T, rowsBuf: T, x: T, ids: ArrayLike<number>, n: number): void {
  const p = c.perLayerInput!, LP = c.numLayers * p.dim;
  ops.matmul(out, x, ple.modelProj, n, LP, c.hiddenSize);
  ops.rmsNorm(out, out, ple.projNorm, n * c.numLayers, p.dim, c.rmsNormEps);
  ops.embed(rowsBuf, ids, ple.table, n, LP, p.tableScale * Math.SQRT1_2);
  ops.add(out, rowsBuf, n * LP);
}

/** Copies override rows into the residual stream, one copy per run of consecutive rows. */
function spliceRows<T>(ops: Ops<T>, x: T, o: NonNullable<ForwardStep<T>['embedOverride']>, H: number): void {
  for (let i = 0; i < o.rows.length; ) {
    let j = i + 1;
    while (j < o.rows.length && o.rows[j] === o.rows[j - 1] + 1 && o.src[j] === o.src[j - 1] + 1) j++;
    ops.copyRows(x, o.rows[i], o.data, o.src[i], j - i, H);
    i = j;
  }
}

/** DeepStack: x[rows[i]] += add[src[i]], one add per run of consecutive rows. */
function addRows<T>(ops: Ops<T>, x: T, o: NonNullable<ForwardStep<T>['embedOverride']>, add: T, H: number): void {
  for (let i = 0; i < o.rows.length; ) {
    let j = i + 1;
    while (j < o.rows.length && o.rows[j] === o.rows[j - 1] + 1 && o.src[j] === o.src[j - 1] + 1) j++;
    ops.add(x, add, (j - i) * H, { out: o.rows[i] * H, a: o.src[i] * H });
    i = j;
  }
}

/** Rows whose update the calibration gate discards at layer l, or null. */
function gatedRows(step: ForwardStep, l: number, rows: number): { first: number; count: number } | null {
  const g = step.gate;
  if (!g || g.layer !== l) return null;
  const lastIsPredicting = step.lastRowFullDepth;
  if (g.stage === 'decode') return lastIsPredicting ? { first: rows - 1, count: 1 } : null;
  const context = lastIsPredicting ? rows - 1 : rows;
  return context > 0 ? { first: 0, count: context } : null;
}

/** x += proj(input), with an optional norm on the projection (Gemma's sandwich norms). */
function residualProject<T>(ops: Ops<T>, s: RunState<T>, input: T, weight: T, outNorm: T | null, rows: number, H: number, K: number, eps: number): void {
  if (!outNorm) {
    ops.matmul(s.x, input, weight, rows, H, K, { accumulate: true });
    return;
  }
  ops.matmul(s.xb, input, weight, rows, H, K);
  ops.rmsNorm(s.xb, s.xb, outNorm, rows, H, eps);
  ops.add(s.x, s.xb, rows * H);
}

/**
 * POP's independent KV projection: for rows [0, rows) of the hidden state leaving layer
 * keep-1, every deep layer l in [keep, L) gets K = RoPE(kNorm(W_k,l · norm_l(h))) and
 * V = W_v,l · norm_l(h) written into its pages. The norm gains are folded into the stacked
 * weights, so one gain-free norm and one GEMM cover all deep layers. A KV-shared deep layer
 * (Gemma 4) has no block: it attends its source layer's pages, filled here or by a full layer.
 */
function projectDeepKv<T>(ops: Ops<T>, c: ModelConfig, w: Weights<T>, s: RunState<T>, cache: PagedKvCache<T>, seq: ReturnType<PagedKvCache<T>['reserve']>, rows: number, startPos: number, keep: number, ropeTable: T | undefined): void {
  const L = c.numLayers, H = c.hiddenSize;
  const stride = deepKvRows(c, keep);
  if (stride === 0) return; // every deep layer shares an earlier layer's K/V
  if (!w.deepKv || !s.deepKv) throw new InvalidArgumentError('pop', 'POP weights were not built for this model (EngineOptions.popWeights is false)');
  ops.rmsNorm(s.xb, s.x, null, rows, H, c.rmsNormEps);
  ops.matmul(s.deepKv, s.xb, w.deepKv, rows, stride, H, { bias: w.deepKvBias });
  for (let l = keep; l < L; l++) {
    if (isKvShared(c, l)) continue;
    const at = deepKvRows(c, l + 1); // block of layer l in the reversed stack
    const lw = w.layers[l], shape = layerShape(c, l), KV = layerKvDim(c, l);
    if (c.valueNorm) ops.headNorm(s.deepKv, rows, stride, at + KV, shape.numKvHeads, shape.headDim, null, c.rmsNormEps);
    ops.kvWrite(cache.layers[l], seq, s.deepKv, rows, stride, at, at + KV, shape.numKvHeads, shape.headDim, startPos, ropeTable ?? lw.rope, lw.kNorm && { gain: lw.kNorm, eps: c.rmsNormEps });
  }
}
