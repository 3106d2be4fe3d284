// The one forward pass. Reads top to bottom like the architecture:
//   embed -> per layer [norm -> QKV -> RoPE -> paged KV write -> attention -> O (+res)
//   -> norm -> gate|up -> GLU -> down (+res)] -> final norm -> LM head (last row only).
// POP is a parameter: prompt rows run layers [0, keep) only; at layer `keep` each deep
// layer's K/V for those rows is projected from the hidden state leaving layer keep-1
// (independent KV projection, one GEMM over stacked weights); the boundary row (the last
// prompt token) goes on through every layer. keep = L is ordinary prefill and decode.
import type { ModelConfig } from '../model/config.ts';
import { kvDim, qDim } from '../model/config.ts';
import type { Weights } from '../model/weights.ts';
import type { Ops } from '../ops/ops.ts';
import type { PagedKvCache } from '../kv/paged_kv_cache.ts';
import { InternalError } from '../errors.ts';

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
  last: T; //   [hidden]              final-normed last row
  logits: T; // [vocab]
}

export function createRunState<T>(ops: Ops<T>, c: ModelConfig, maxRows: number, withPop: boolean): RunState<T> {
  const h = c.hiddenSize, f = c.intermediateSize;
  return {
    maxRows,
    x: ops.alloc('state.x', maxRows * h),
    xb: ops.alloc('state.xb', maxRows * h),
    qkv: ops.alloc('state.qkv', maxRows * (qDim(c) + 2 * kvDim(c))),
    att: ops.alloc('state.att', maxRows * qDim(c)),
    gu: ops.alloc('state.gu', maxRows * 2 * f),
    hb: ops.alloc('state.hb', maxRows * f),
    deepKv: withPop && c.numLayers > 1 ? ops.alloc('state.deepKv', maxRows * (c.numLayers - 1) * 2 * kvDim(c)) : null,
    gateSave: ops.alloc('state.gateSave', maxRows * h),
    last: ops.alloc('state.last', h),
    logits: ops.alloc('state.logits', c.vocabSize),
  };
}

export function freeRunState<T>(ops: Ops<T>, s: RunState<T>): void {
  for (const t of [s.x, s.xb, s.qkv, s.att, s.gu, s.hb, s.deepKv, s.gateSave, s.last, s.logits]) if (t) ops.free(t);
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
  const L = c.numLayers, H = c.hiddenSize, F = c.intermediateSize;
  const Q = qDim(c), KV = kvDim(c), QKV = Q + 2 * KV;
  const keep = Math.max(1, Math.min(L, step.keep));
  const seq = cache.reserve(step.seqId, step.startPos + n);

  ops.embed(s.x, step.tokens, w.embed, n, H, c.embeddingScale);
  if (step.embedOverride) spliceRows(ops, s.x, step.embedOverride, H);

  let rows = n;
  let pos = step.startPos;
  for (let l = 0; l < L; l++) {
    if (l === keep) {
      // POP: prompt rows stop here; deep layers get their K/V from this hidden state.
      const shallowRows = step.lastRowFullDepth ? n - 1 : n;
      if (shallowRows > 0) projectDeepKv(ops, c, w, s, cache, seq, shallowRows, step.startPos, keep, step.ropeTable);
      if (!step.lastRowFullDepth) break;
      if (n > 1) ops.copyRows(s.x, 0, s.x, n - 1, 1, H);
      rows = 1;
      pos = step.startPos + n - 1;
    }
    const lw = w.layers[l];
    const kv = cache.layers[l];
    const rope = step.ropeTable ?? lw.rope;
    const gated = gatedRows(step, l, rows);
    if (gated) ops.copyRows(s.gateSave, 0, s.x, gated.first, gated.count, H);

    // Attention block.
    ops.rmsNorm(s.xb, s.x, lw.inputNorm, rows, H, c.rmsNormEps);
    ops.matmul(s.qkv, s.xb, lw.qkv, rows, QKV, H, { bias: lw.qkvBias });
    ops.rope(s.qkv, rows, QKV, 0, c.numHeads, c.headDim, pos, rope, lw.qNorm && { gain: lw.qNorm, eps: c.rmsNormEps });
    ops.kvWrite(kv, seq, s.qkv, rows, QKV, Q, Q + KV, c.numKvHeads, c.headDim, pos, rope, lw.kNorm && { gain: lw.kNorm, eps: c.rmsNormEps });
    ops.attention(s.att, s.qkv, QKV, kv, seq, rows, pos, { numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, scale: c.attnScale, window: c.slidingWindow[l] }, rows === n ? step.keyEnd : null);
    residualProject(ops, s, s.att, lw.o, lw.attnOutNorm, rows, H, Q, c.rmsNormEps);

    // MLP block.
    ops.rmsNorm(s.xb, s.x, lw.mlpNorm, rows, H, c.rmsNormEps);
    ops.matmul(s.gu, s.xb, lw.gateUp, rows, 2 * F, H);
    ops.glu(s.hb, s.gu, rows, F, c.activation);
    residualProject(ops, s, s.hb, lw.down, lw.mlpOutNorm, rows, H, F, c.rmsNormEps);
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
 * weights, so one gain-free norm and one GEMM cover all deep layers.
 */
function projectDeepKv<T>(ops: Ops<T>, c: ModelConfig, w: Weights<T>, s: RunState<T>, cache: PagedKvCache<T>, seq: ReturnType<PagedKvCache<T>['reserve']>, rows: number, startPos: number, keep: number, ropeTable: T | undefined): void {
  const L = c.numLayers, H = c.hiddenSize, KV = kvDim(c);
  const deep = L - keep;
  if (!w.deepKv || !s.deepKv) throw new InternalError('POP weights were not built for this model');
  const stride = deep * 2 * KV;
  ops.rmsNorm(s.xb, s.x, null, rows, H, c.rmsNormEps);
  ops.matmul(s.deepKv, s.xb, w.deepKv, rows, stride, H, { bias: w.deepKvBias });
  for (let l = keep; l < L; l++) {
    const j = L - 1 - l; // block index in the reversed stack
    const lw = w.layers[l];
    ops.kvWrite(cache.layers[l], seq, s.deepKv, rows, stride, j * 2 * KV, j * 2 * KV + KV, c.numKvHeads, c.headDim, startPos, ropeTable ?? lw.rope, lw.kNorm && { gain: lw.kNorm, eps: c.rmsNormEps });
  }
}
