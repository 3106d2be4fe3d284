// The one weight path: every format (safetensors in loader.ts, MLC's tensor cache in mlc.ts)
// turns its files into deliveries of the tensors the model needs, under their Hugging Face
// names: rows in f32 (converted from F32 / F16 / BF16 / MLC q0 / MLC q4 by the format), or, for
// a format that keeps its own int4 (MLC q4), packed rows that go to the device as they are.
// `planWeights` declares, from the config and the family spec alone, where each tensor's rows
// go (fused QKV and gate|up, POP's stacked deep K/V, norms with their gain offset, RoPE tables)
// and how each device tensor is stored (f32, int4, f16, row parts past the binding limit:
// `cols`); `WeightPlan` checks what arrives, tracks every upload (a failed load frees all of
// it) and names what never came.
import { MissingTensorError, ShapeMismatchError, UnsupportedDtypeError } from '../errors.ts';
import type { Ops, RowUpload, UploadOptions } from '../ops/ops.ts';
import type { QuantInfo } from '../core/quant.ts';
import { deepKvRows, isKvShared, layerKvDim, layerQDim, layerShape, ropeTablesByLayer, type ModelConfig } from './config.ts';
import { globalRoleShape, layerRoleShape, layerRolesFor, perLayerInputShape, type FamilySpec, type LayerRole } from './family.ts';
import type { BuildOptions, TableDtype } from './load_options.ts';
import { decodeFloats, isFloatDtype, type SafetensorsHeader, type TensorEntry } from './safetensors.ts';
import type { LoadAccount } from './stream.ts';
import { assertFinite } from './weight_check.ts';
import type { LayerWeights, Weights } from './weights.ts';

/** Elements per row along a tensor's first dimension (1 for vectors and scalars). */
export const rowElements = (shape: readonly number[]): number => (shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : 1);

function tensorName(pattern: string, layer: number): string {
  return pattern.replace('{layer}', String(layer));
}

/** Folds a norm gain into the columns of a [rows, cols] weight: W·diag(g). */
function foldGain(w: Float32Array, gain: Float32Array): Float32Array {
  const cols = gain.length, out = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = w[i] * gain[i % cols];
  return out;
}

/** Rows of one checkpoint tensor, in f32, starting at row0 of its first dimension. */
type Deliver = (row0: number, data: Float32Array) => void;

/**
 * Rows [row0, row0 + rows) of a linear [rows, cols] as a format stores it in int4 and the device
 * keeps it (MLC q4, src/model/mlc.ts: per row 4 * ceil(cols / 32) words and ceil(cols / 32)
 * scales).
 */
export interface PackedRows {
  rows: number;
  cols: number;
  words: Uint32Array;
  scales: Float32Array;
}
type DeliverPacked = (row0: number, rows: PackedRows) => void;

/** A device linear filled by packed row ranges (each row exactly once); `finish` gives the tensor. */
export interface PackedWriter<T> {
  write(row0: number, rows: PackedRows): void;
  finish(): T;
}

/**
 * A format whose linears arrive packed (MLC q4): it makes their device tensors, with optional
 * column gains (POP's deep K/V: one [cols] vector per `gains.rows` rows, read at finish).
 */
export interface LinearPacking<T> {
  writer(label: string, rows: number, cols: number, gains?: { values: Float32Array; rows: number }): PackedWriter<T>;
}

interface Route {
  name: string;
  shape: number[];
  elements: number;
  deliver: Deliver[];
  /** Deliveries of packed rows (a format's own int4) and the elements they have had. */
  packed: DeliverPacked[];
  gotPacked: number;
  /** Elements delivered so far, the file that holds the tensor (the first whose header has it) and its name there. */
  got: number;
  file: string | null;
  stored: string | null;
}

/** What a weight builder declares on a plan (the text model here, a VLM's tower in src/vision/siglip.ts). */
export interface WeightRoutes<T> {
  /** A tensor whose row ranges go to `deliver` (a tensor may have several). */
  rows(name: string, shape: number[], deliver: Deliver): void;
  /** A tensor gathered on the host; `done` gets it whole (and may keep it). */
  whole(name: string, shape: number[], done: (v: Float32Array) => void): void;
  /** A device tensor written by row ranges (Ops.uploadRows). */
  writer(label: string, rows: number, opts: UploadOptions & { cols: number }): RowUpload<T>;
  /** A whole host tensor uploaded now. */
  upload(label: string, data: Float32Array, opts?: UploadOptions): T;
  /** Host bytes a builder keeps for a while (the loader's accounting). */
  hold(bytes: number): void;
  release(bytes: number): void;
}

/**
 * Where every checkpoint tensor the model needs goes: row writes into device tensors
 * (RowUpload) or tensors gathered on the host. Tracks what was allocated, so a failed load
 * frees all of it, and what has arrived, so a missing tensor is named.
 */
export class WeightPlan<T> implements WeightRoutes<T> {
  private readonly routes = new Map<string, Route>();
  /** Routes by the name their file stores them under. */
  private readonly byStored = new Map<string, Route>();
  private readonly writers = new Set<RowUpload<T>>();
  private readonly uploaded: T[] = [];

  /** `aliases`: the family's other checkpoint layouts (FamilySpec.checkpointAliases). */
  /** `checkFinite`: every delivered f32 row range is scanned for NaN / Inf (MALFORMED_WEIGHTS) before any upload. */
  constructor(private readonly ops: Ops<T>, private readonly account: LoadAccount | null = null, private readonly aliases: FamilySpec['checkpointAliases'] = [], private readonly checkFinite = true) {}

  private route(name: string, shape: number[]): Route {
    let r = this.routes.get(name);
    if (!r) this.routes.set(name, (r = { name, shape, elements: shape.reduce((a, b) => a * b, 1), deliver: [], packed: [], gotPacked: 0, got: 0, file: null, stored: null }));
    return r;
  }

  /** The name a checkpoint stores a needed tensor under (its own, else an alias, as aliasCheckpoint); null if `has` knows neither. */
  storedName(name: string, has: (n: string) => boolean): string | null {
    if (has(name)) return name;
    for (const [canonical, alias] of this.aliases ?? []) if (name.startsWith(canonical) && has(alias + name.slice(canonical.length))) return alias + name.slice(canonical.length);
    return null;
  }

  /** A tensor whose row ranges go to `deliver` (a tensor may have several). */
  rows(name: string, shape: number[], deliver: Deliver): void {
    this.route(name, shape).deliver.push(deliver);
  }

  /** A linear whose rows go to `deliver` as the format packs them (LinearPacking). */
  packedRows(name: string, shape: number[], deliver: DeliverPacked): void {
    this.route(name, shape).packed.push(deliver);
  }

  /** Whether a needed tensor takes f32 rows, packed rows, or both (a tied head beside the embedding). */
  takes(name: string): { rows: boolean; packed: boolean } {
    const r = this.routes.get(name);
    return { rows: !!r?.deliver.length, packed: !!r?.packed.length };
  }

  /** A tensor gathered on the host; `done` gets it whole (and may keep it). */
  whole(name: string, shape: number[], done: (v: Float32Array) => void): void {
    const r = this.route(name, shape), per = rowElements(shape);
    let buf: Float32Array | null = null, got = 0;
    r.deliver.push((row0, data) => {
      if (!buf) this.hold((buf = new Float32Array(r.elements)).byteLength);
      buf.set(data, row0 * per);
      if ((got += data.length) < r.elements) return;
      const v = buf;
      buf = null;
      this.release(v.byteLength);
      done(v);
    });
  }

  /** A device tensor written by row ranges (Ops.uploadRows), freed if the load fails. */
  writer(label: string, rows: number, opts: UploadOptions & { cols: number }): RowUpload<T> {
    const w = this.ops.uploadRows(label, rows, opts);
    this.writers.add(w);
    return {
      write: (row0, data) => {
        w.write(row0, data);
        this.account?.wrote();
      },
      finish: () => {
        const t = w.finish();
        this.writers.delete(w);
        this.uploaded.push(t);
        return t;
      },
      discard: () => (this.writers.delete(w), w.discard()),
    };
  }

  /** A tensor already packed in our int4 layout (src/core/quant.ts), uploaded now. */
  uploadPacked(label: string, packed: Uint32Array, info: QuantInfo): T {
    const t = this.ops.uploadPacked(label, packed, info);
    this.uploaded.push(t);
    return t;
  }

  /** A whole host tensor uploaded now (norms, biases, RoPE tables). */
  upload(label: string, data: Float32Array, opts?: UploadOptions): T {
    const t = this.ops.upload(label, data, opts);
    this.uploaded.push(t);
    return t;
  }

  hold(bytes: number): void {
    this.account?.hold(bytes);
  }
  release(bytes: number): void {
    this.account?.release(bytes);
  }

  /** The tensors needed, in build order. */
  names(): string[] {
    return [...this.routes.keys()];
  }

  /** Checks a file's tensors that the model needs: shape and dtype. The first file listing a tensor holds it. */
  header(file: string, h: SafetensorsHeader): void {
    for (const r of this.routes.values()) {
      if (r.file !== null) continue;
      const stored = this.storedName(r.name, (n) => h.tensors.has(n));
      if (!stored) continue;
      this.check(r.name, h.tensors.get(stored)!);
      r.file = file;
      r.stored = stored;
      this.byStored.set(stored, r);
    }
  }

  /** Checks the stored entry of a needed tensor (errors name the tensor as the model knows it). */
  check(name: string, e: TensorEntry): void {
    const r = this.routes.get(name)!;
    const same = e.shape.length === r.shape.length && e.shape.every((d, i) => d === r.shape[i]);
    if (!same) throw new ShapeMismatchError(name, r.shape, e.shape);
    if (!isFloatDtype(e.dtype)) throw new UnsupportedDtypeError(name, e.dtype);
  }

  wants(file: string, e: TensorEntry): boolean {
    return this.byStored.get(e.name)?.file === file;
  }

  /**
   * Raw rows of a tensor from its file: converted to f32 in a scratch buffer reused from call
   * to call (every delivery copies what it keeps) and delivered.
   */
  accept(e: TensorEntry, row0: number, rows: number, bytes: Uint8Array): void {
    const n = rows * rowElements(e.shape);
    if (this.scratch.length < n) {
      this.release(this.scratch.byteLength);
      this.hold((this.scratch = new Float32Array(n)).byteLength);
    }
    this.deliverTo(this.byStored.get(e.name)!, row0, decodeFloats(e.name, e.dtype, bytes, n, this.scratch));
  }
  private scratch = new Float32Array(0);

  /** Rows of a needed tensor, by the model's name for it. */
  deliver(name: string, row0: number, data: Float32Array): void {
    this.deliverTo(this.routes.get(name)!, row0, data);
  }

  /** Packed rows of a needed tensor, by the model's name for it. */
  deliverPacked(name: string, row0: number, rows: PackedRows): void {
    const r = this.routes.get(name)!;
    for (const d of r.packed) d(row0, rows);
    r.gotPacked += rows.rows * rows.cols;
  }

  private deliverTo(r: Route, row0: number, data: Float32Array): void {
    if (this.checkFinite) assertFinite(r.stored ?? r.name, r.file ?? 'the checkpoint', data, row0 * (r.shape.length > 1 ? r.elements / r.shape[0] : 1), this.account);
    for (const d of r.deliver) d(row0, data);
    r.got += data.length;
  }

  /** The first needed tensor that has not fully arrived, or null. */
  missing(): string | null {
    for (const r of this.routes.values()) if ((r.deliver.length && r.got < r.elements) || (r.packed.length && r.gotPacked < r.elements)) return r.name;
    return null;
  }

  /** Frees every device tensor made so far (a failed or aborted load). */
  discard(): void {
    for (const w of this.writers) w.discard();
    this.writers.clear();
    for (const t of this.uploaded.splice(0)) this.ops.free(t);
  }
}

/** How POP's deep K/V stack is stored when quantized or f16: the layers' own values, norm gains as column gains. */
function deepKvStorage(opts: BuildOptions, cols: number, gains: { values: Float32Array; rows: number }): UploadOptions {
  return opts.quant ? { quant: { scheme: opts.quant, cols, gains } } : { half: { cols, gains } };
}

/** Every distinct device tensor of a model's weights (for freeing them). */
export function weightTensors<T>(w: Weights<T>): T[] {
  const all = new Set<T>([w.embed, w.finalNorm, w.lmHead]);
  for (const l of w.layers) for (const t of Object.values(l)) if (t) all.add(t as T);
  if (w.ple) for (const t of Object.values(w.ple)) all.add(t);
  if (w.deepKv) all.add(w.deepKv);
  if (w.deepKvBias) all.add(w.deepKvBias);
  return [...all];
}

/**
 * Declares every weight the forward reads on `p`: which checkpoint tensors go where, checked
 * against the shapes the config implies, converted, fused and stored as `opts` says. Returns
 * the step that finishes the device tensors once every tensor has arrived.
 */
export function planWeights<T>(p: WeightPlan<T>, c: ModelConfig, spec: FamilySpec, opts: BuildOptions, packing?: LinearPacking<T>): () => Weights<T> {
  const L = c.numLayers, H = c.hiddenSize, V = c.vocabSize;
  const gainOf = (g: Float32Array) => (spec.normGainOffset ? g.map((v) => v + spec.normGainOffset) : g);
  // Quantization is a property of the uploaded weight: matmul reads it, the forward does not know.
  // `cols` lets a device split a weight larger than one binding into row parts (src/ops/split.ts).
  const q = (cols: number): UploadOptions & { cols: number } => ({ cols, ...(opts.quant ? { quant: { scheme: opts.quant, cols } } : opts.half ? { half: true } : undefined) });
  // A linear [rows, cols]: f32 rows written as `store` says, or, when the format keeps its own
  // int4 (packing), its packed rows as they are. `feed` routes a checkpoint tensor's rows the same way.
  type Rows = Float32Array | PackedRows;
  const linear = (label: string, rows: number, cols: number, store: UploadOptions & { cols: number }, gains?: { values: Float32Array; rows: number }): { write(row0: number, d: Rows): void; finish(): T } => {
    if (packing) {
      const w = packing.writer(label, rows, cols, gains);
      return { write: (r, d) => w.write(r, d as PackedRows), finish: () => w.finish() };
    }
    const w = p.writer(label, rows, store);
    return { write: (r, d) => w.write(r, d as Float32Array), finish: () => w.finish() };
  };
  const feed = (name: string, shape: number[], deliver: (row0: number, d: Rows) => void) => (packing ? p.packedRows(name, shape, deliver) : p.rows(name, shape, deliver));

  const embedName = spec.globalTensors.embed;
  // Vocabulary-sized tables (embeddings, LM head) as BuildOptions says: q4 (quantized row by
  // row as the rows stream in; the gather dequantizes the rows it reads, src/kernels/embed.ts),
  // f16 or f32. A format's packed int4 embedding stays packed the same way.
  const table = (kind: TableDtype, cols: number): UploadOptions & { cols: number } =>
    kind === 'q4' ? { cols, quant: { scheme: opts.quant ?? 'q4', cols } } : kind === 'f16' ? { cols, half: true } : { cols };
  const embedKind: TableDtype = opts.embedDtype ?? 'f32';
  const headKind: TableDtype = opts.headDtype ?? (opts.quantLmHead ? 'q4' : opts.half ? 'f16' : 'f32');
  const embed = linear('embed', V, H, table(embedKind, H));
  feed(embedName, globalRoleShape(c, 'embed'), (r, d) => embed.write(r, d));
  let finalNorm!: T;
  p.whole(spec.globalTensors.finalNorm, globalRoleShape(c, 'finalNorm'), (g) => (finalNorm = p.upload('final_norm', gainOf(g))));
  // A tied head stored as the embedding is the embedding itself (a q4 embedding: the q4 GEMV
  // reads it; no f32 copy, 545 MB for Qwen2.5-0.5B); stored otherwise, its own copy of the same
  // rows. A packed format's tied head is always its embedding.
  const head = !c.tieWordEmbeddings || (!packing && headKind !== embedKind) ? linear('lm_head', V, H, packing ? { cols: H } : table(headKind, H)) : null;
  if (head) feed(c.tieWordEmbeddings ? embedName : spec.globalTensors.lmHead, globalRoleShape(c, 'lmHead'), (r, d) => head.write(r, d));
  const ple = planPerLayerInputs(p, c, spec, q, table(embedKind, c.numLayers * (c.perLayerInput?.dim ?? 0)), packing);

  // POP's deep K/V stack: layer l's [K; V] rows start at deepKvRows(c, l + 1) (layers L-1, L-2,
  // .. 1 in that order; KV-shared layers have none). Quantized or f16 it keeps the layers' own
  // q4 / f16 values and takes the norm gains as column gains (see quant.ts), one gain row per
  // `gainRows` rows (the gcd of the layers' 2 kvDim: a wider layer repeats its gain); f32 folds
  // the gain in, so rows that arrive before their layer's norm wait for it.
  const deepRowsTotal = deepKvRows(c, 1);
  const deep = opts.pop && deepRowsTotal > 0;
  const hasKv = (l: number) => l >= 1 && !isKvShared(c, l);
  let gainRows = 0;
  for (let l = 1; l < L; l++) if (hasKv(l)) gainRows = gcd(gainRows, 2 * layerKvDim(c, l));
  const deepGains = deep && (opts.quant || opts.half || packing) ? new Float32Array((deepRowsTotal / gainRows) * H) : null;
  const gainSpec = deepGains ? { values: deepGains, rows: gainRows } : undefined;
  const deepKv = deep ? linear('pop.deep_kv', deepRowsTotal, H, gainSpec && !packing ? { cols: H, ...deepKvStorage(opts, H, gainSpec) } : { cols: H }, gainSpec) : null;
  const deepBias = deep && c.attentionBias ? new Float32Array(deepRowsTotal) : null;
  const foldWith: (Float32Array | null)[] = new Array(L).fill(null);
  const waiting: { row: number; data: Float32Array }[][] = Array.from({ length: L }, () => []);
  /** Rows [row0, ..) of layer l's [K; V] block. */
  const deepRows = (l: number, row0: number, d: Rows) => {
    const row = deepKvRows(c, l + 1) + row0, g = foldWith[l];
    if (deepGains) deepKv!.write(row, d); // stored with the norm gains as column gains (packed rows always are)
    else if (g) deepKv!.write(row, foldGain(d as Float32Array, g));
    else {
      const data = (d as Float32Array).slice();
      p.hold(data.byteLength);
      waiting[l].push({ row, data });
    }
  };
  const deepNorm = (l: number, g: Float32Array) => {
    if (deepGains) {
      const first = deepKvRows(c, l + 1) / gainRows;
      for (let j = 0; j < (2 * layerKvDim(c, l)) / gainRows; j++) deepGains.set(g, (first + j) * H);
      return;
    }
    foldWith[l] = g;
    for (const w of waiting[l].splice(0)) deepKv!.write(w.row, foldGain(w.data, g)), p.release(w.data.byteLength);
  };

  const ropeFor = ropeTablesByLayer(c, opts.positions, (label, table) => p.upload(label, table));
  const scalars: number[] | null = c.layerScalar ? new Array(L).fill(1) : null;

  const layers: (() => LayerWeights<T>)[] = [];
  for (let l = 0; l < L; l++) {
    const roles = new Set(layerRolesFor(c, l));
    const Q = layerQDim(c, l), KV = layerKvDim(c, l), F = layerShape(c, l).intermediateSize;
    const own = !isKvShared(c, l), kEqV = layerShape(c, l).kEqV;
    const t = (role: LayerRole) => {
      const pattern = spec.layerTensors[role];
      if (!pattern) throw new MissingTensorError(`${role} (layer ${l})`, 'family spec');
      return tensorName(pattern, l);
    };
    const shape = (role: LayerRole) => layerRoleShape(c, role, l);
    const name = (s: string) => `L${l}.${s}`;
    const toDeep = deep && hasKv(l);
    /** A norm gain (offset folded in), uploaded once it has arrived; null when the family has none. */
    const norm = (role: LayerRole, label: string, then?: (g: Float32Array) => void): (() => T | null) => {
      let v: T | null = null;
      if (roles.has(role)) p.whole(t(role), shape(role), (g) => {
        const gg = gainOf(g);
        v = p.upload(label, gg);
        then?.(gg);
      });
      return () => v;
    };
    const inputNorm = norm('inputNorm', name('input_norm'), toDeep ? (g) => deepNorm(l, g) : undefined);
    // [q | k | v]; a KV-shared layer (Gemma 4) has only q; with kEqV the K rows are V's too.
    const qkv = linear(name('qkv'), own ? Q + 2 * KV : Q, H, q(H));
    feed(t('q'), shape('q'), (r, d) => qkv.write(r, d));
    if (own) {
      feed(t('k'), shape('k'), (r, d) => {
        qkv.write(Q + r, d);
        if (kEqV) qkv.write(Q + KV + r, d);
        if (toDeep) deepRows(l, r, d), kEqV && deepRows(l, KV + r, d);
      });
      if (!kEqV) feed(t('v'), shape('v'), (r, d) => (qkv.write(Q + KV + r, d), toDeep && deepRows(l, KV + r, d)));
    }
    let qkvBias: T | null = null;
    if (roles.has('qBias')) {
      const bias = new Float32Array(Q + 2 * KV);
      let parts = 0;
      const part = (role: LayerRole, at: number, deepAt: number | null) => p.whole(t(role), shape(role), (b) => {
        bias.set(b, at);
        if (deepBias && toDeep && deepAt !== null) deepBias.set(b, deepKvRows(c, l + 1) + deepAt);
        if (++parts === 3) qkvBias = p.upload(name('qkv_bias'), bias);
      });
      part('qBias', 0, null);
      part('kBias', Q, 0);
      part('vBias', Q + KV, KV);
    }
    const qNorm = norm('qNorm', name('qNorm')), kNorm = norm('kNorm', name('kNorm'));
    const o = linear(name('o'), H, Q, q(Q));
    feed(t('o'), shape('o'), (r, d) => o.write(r, d));
    const attnOutNorm = norm('attnOutNorm', name('attn_out_norm'));
    const mlpNorm = norm('mlpNorm', name('mlp_norm'));
    const gateUp = linear(name('gate_up'), 2 * F, H, q(H));
    feed(t('gate'), shape('gate'), (r, d) => gateUp.write(r, d));
    feed(t('up'), shape('up'), (r, d) => gateUp.write(F + r, d));
    const down = linear(name('down'), H, F, q(F));
    feed(t('down'), shape('down'), (r, d) => down.write(r, d));
    const mlpOutNorm = norm('mlpOutNorm', name('mlp_out_norm'));
    let pleGate: { finish(): T } | null = null, pleProj: { finish(): T } | null = null;
    if (roles.has('pleGate')) {
      const P = c.perLayerInput!.dim;
      const gw = linear(name('ple_gate'), P, H, q(H)), pw = linear(name('ple_proj'), H, P, q(P));
      feed(t('pleGate'), shape('pleGate'), (r, d) => gw.write(r, d));
      feed(t('pleProj'), shape('pleProj'), (r, d) => pw.write(r, d));
      (pleGate = gw), (pleProj = pw);
    }
    const pleNorm = norm('pleNorm', name('ple_norm'));
    if (scalars && roles.has('layerScalar')) p.whole(t('layerScalar'), shape('layerScalar'), (v) => (scalars[l] = v[0]));
    const rope = ropeFor(l);
    layers.push(() => ({
      inputNorm: inputNorm()!, qkv: qkv.finish(), qkvBias, qNorm: qNorm(), kNorm: kNorm(), o: o.finish(), attnOutNorm: attnOutNorm(),
      mlpNorm: mlpNorm()!, gateUp: gateUp.finish(), down: down.finish(), mlpOutNorm: mlpOutNorm(), rope,
      ...(pleGate ? { pleGate: pleGate.finish(), pleProj: pleProj!.finish(), pleNorm: pleNorm() } : {}),
    }));
  }
  return () => {
    const e = embed.finish();
    return {
      embed: e, finalNorm, lmHead: head ? head.finish() : e, layers: layers.map((f) => f()),
      deepKv: deepKv ? deepKv.finish() : null,
      deepKvBias: deepBias ? p.upload('pop.deep_kv_bias', deepBias) : null,
      ple: ple ? ple() : null,
      layerScalars: scalars,
    };
  };
}

const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);

/**
 * Gemma 4's per-layer embeddings (ModelConfig.perLayerInput): the [vocab, L·P] table (stored as
 * the main embedding is, `tableStore`: q4 / f16 / f32, in row parts past the binding limit), the
 * projection of the main embedding with hidden^-0.5 folded in, and its norm with the 2^-0.5 of
 * the mean folded in.
 */
function planPerLayerInputs<T>(p: WeightPlan<T>, c: ModelConfig, spec: FamilySpec, q: (cols: number) => UploadOptions & { cols: number }, tableStore: UploadOptions & { cols: number }, packing: LinearPacking<T> | undefined): (() => NonNullable<Weights<T>['ple']>) | null {
  const cfg = c.perLayerInput, names = spec.perLayerInputTensors;
  if (!cfg) return null;
  if (!names) throw new MissingTensorError('per-layer input tensors', 'family spec');
  if (packing) throw new MissingTensorError('per-layer input tensors (f32 rows)', 'a packed-int4 format');
  const LP = c.numLayers * cfg.dim, H = c.hiddenSize;
  const table = p.writer('ple.table', cfg.vocab, tableStore);
  p.rows(names.pleEmbed, perLayerInputShape(c, 'pleEmbed'), (r, d) => table.write(r, d));
  const proj = p.writer('ple.model_proj', LP, q(H));
  const projScale = Math.pow(H, -0.5);
  p.rows(names.pleModelProj, perLayerInputShape(c, 'pleModelProj'), (r, d) => proj.write(r, d.map((v) => v * projScale)));
  let projNorm!: T;
  p.whole(names.pleProjNorm, perLayerInputShape(c, 'pleProjNorm'), (g) => (projNorm = p.upload('ple.proj_norm', g.map((v) => (v + spec.normGainOffset) * Math.SQRT1_2))));
  return () => ({ table: table.finish(), modelProj: proj.finish(), projNorm });
}

