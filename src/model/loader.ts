// Loads a Hugging Face model folder: config.json (-> family spec -> ModelConfig),
// generation_config.json, tokenizer files, and model.safetensors or a sharded index. The
// weights stream (src/model/stream.ts): each file's header is checked against the shapes the
// config implies before its data arrives, then every tensor's rows are converted to f32 and
// written, as they arrive, into the device tensors the forward reads (fused QKV and gate|up,
// POP's stacked deep K/V; f32, int4 or f16 as asked) through Ops.uploadRows. A WeightPlan maps
// checkpoint tensors to those writes, so the order of tensors in a file does not matter and
// the host never holds a whole tensor. A folder with mlc-chat-config.json instead (MLC /
// WebLLM) loads its weights through src/model/mlc.ts.
import { MalformedFileError, MissingTensorError, ShapeMismatchError, UnsupportedDtypeError } from '../errors.ts';
import type { Ops, RowUpload, UploadOptions } from '../ops/ops.ts';
import { kvDim, qDim, ropeTablesByLayer, type ModelConfig } from './config.ts';
import { globalRoleShape, layerRoleShape, layerRolesFor, type FamilySpec, type LayerRole } from './family.ts';
import { familyFor } from './registry.ts';
import type { BuildOptions, LoadProgress, StreamOptions } from './load_options.ts';
export type { BuildOptions, LoadProgress, StreamOptions };
import { MLC_CONFIG, mlcModelInfo, type MlcModelInfo } from './mlc.ts';
import { decodeFloats, isFloatDtype, toFloat32, type SafetensorsHeader, type TensorEntry } from './safetensors.ts';
import { openModelFile, readJsonObject, type ModelSource } from './source.ts';
import { LoadAccount, streamSafetensors, type LoadStats, type TensorSink } from './stream.ts';
import type { LayerWeights, Weights } from './weights.ts';

export interface ModelFiles {
  rawConfig: Record<string, any>;
  generationConfig: Record<string, any> | null;
  tokenizerJson: Record<string, any> | null;
  tokenizerConfig: Record<string, any> | null;
  chatTemplate: string | null;
  config: ModelConfig;
  spec: FamilySpec;
  /** Set for an MLC / WebLLM folder: its weights load through src/model/mlc.ts. */
  mlc?: MlcModelInfo;
}


/** Reads the small files: config, generation config, tokenizer, chat template. */
export async function loadModelFiles(source: ModelSource, signal?: AbortSignal): Promise<ModelFiles> {
  // An MLC / WebLLM folder (src/model/mlc.ts) has mlc-chat-config.json instead of config.json.
  let rawConfig = await readJsonObject(source, 'config.json', true, signal);
  let mlc: MlcModelInfo | undefined;
  if (!rawConfig) {
    const chat = await readJsonObject(source, MLC_CONFIG, true, signal);
    if (!chat) rawConfig = (await readJsonObject(source, 'config.json', false, signal))!; // MODEL_FILE_MISSING config.json
    else {
      mlc = mlcModelInfo(chat);
      rawConfig = mlc.rawConfig;
    }
  }
  const configFile = mlc ? MLC_CONFIG : 'config.json';
  const spec = familyFor(rawConfig.model_type);
  const generationConfig = await readJsonObject(source, 'generation_config.json', true, signal);
  let config: ModelConfig;
  try {
    config = spec.normalize(rawConfig, generationConfig ?? undefined);
  } catch (e) {
    // Families refuse what they cannot run as MalformedFileError('config.json', detail): name the file read.
    throw new MalformedFileError(configFile, e instanceof MalformedFileError ? String(e.fields.detail) : (e as Error).message);
  }
  for (const k of ['hiddenSize', 'intermediateSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'vocabSize'] as const) {
    if (!Number.isInteger(config[k]) || config[k] <= 0) throw new MalformedFileError(configFile, `${k} must be a positive integer (got ${config[k]})`);
  }
  if (config.numHeads % config.numKvHeads) throw new MalformedFileError(configFile, 'num_attention_heads must be a multiple of num_key_value_heads');
  const tokenizerJson = await readJsonObject(source, 'tokenizer.json', true, signal);
  const tokenizerConfig = await readJsonObject(source, 'tokenizer_config.json', true, signal);
  let chatTemplate: string | null = (tokenizerConfig?.chat_template as string | undefined) ?? null;
  if (!chatTemplate) {
    const t = await source.fetchFile('chat_template.jinja', { optional: true, signal });
    if (t) chatTemplate = new TextDecoder().decode(t);
  }
  return { rawConfig, generationConfig, tokenizerJson, tokenizerConfig, chatTemplate, config, spec, mlc };
}

/** Host-side tensors of one checkpoint, found across its shards. */
export interface Checkpoint {
  get(name: string): Float32Array | null;
  entry(name: string): TensorEntry | null;
  files: string[];
}

/** The weight files: model.safetensors, or the shards model.safetensors.index.json names (and its map). */
async function weightFiles(source: ModelSource, signal?: AbortSignal): Promise<{ files: string[]; index: Record<string, string> | null }> {
  const index = await readJsonObject(source, 'model.safetensors.index.json', true, signal);
  if (!index) return { files: ['model.safetensors'], index: null };
  const map = index.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map)) throw new MalformedFileError('model.safetensors.index.json', 'no weight_map');
  if (Object.values(map).some((f) => typeof f !== 'string')) throw new MalformedFileError('model.safetensors.index.json', 'weight_map values must be shard file names');
  return { files: [...new Set(Object.values(map as Record<string, string>))], index: map };
}

/** Elements per row along a tensor's first dimension (1 for vectors and scalars). */
const rowElements = (shape: readonly number[]): number => (shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : 1);

/** Raw bytes of whole tensors on the host (loadCheckpoint: tests and the CPU reference). */
class HeldTensors implements Checkpoint {
  private readonly bytes = new Map<string, { entry: TensorEntry; data: Uint8Array }>();
  constructor(readonly files: string[]) {}
  wants(e: TensorEntry): boolean {
    return !this.bytes.has(e.name);
  }
  rows(e: TensorEntry, row0: number, _rows: number, chunk: Uint8Array): void {
    let t = this.bytes.get(e.name);
    if (!t || t.entry !== e) this.bytes.set(e.name, (t = { entry: e, data: new Uint8Array(e.end - e.begin) }));
    const rows = e.shape.length ? e.shape[0] : 1;
    t.data.set(chunk, rows ? row0 * ((e.end - e.begin) / rows) : 0);
  }
  entry(name: string): TensorEntry | null {
    return this.bytes.get(name)?.entry ?? null;
  }
  get(name: string): Float32Array | null {
    const t = this.bytes.get(name);
    return t ? toFloat32(t.entry, t.data) : null;
  }
}

/** Fetches model.safetensors, or every shard named by model.safetensors.index.json, onto the host (tests and the CPU reference). */
export async function loadCheckpoint(source: ModelSource, onProgress?: (p: LoadProgress) => void, signal?: AbortSignal): Promise<Checkpoint> {
  const { files, index } = await weightFiles(source, signal);
  const account = new LoadAccount();
  const held = new HeldTensors(files);
  let loadedBytes = 0;
  for (let i = 0; i < files.length; i++) {
    const stream = (await openModelFile(source, files[i], { signal }))!;
    try {
      loadedBytes += await streamSafetensors(files[i], stream, { header: () => {}, wants: (e) => held.wants(e), rows: (e, r0, n, b) => held.rows(e, r0, n, b) }, account, { signal });
    } catch (e) {
      await stream.cancel(e);
      throw e;
    }
    await stream.finish();
    onProgress?.({ file: files[i], loadedFiles: i + 1, totalFiles: files.length, loadedBytes });
  }
  if (index) for (const [name, file] of Object.entries(index)) if (!held.entry(name)) throw new MissingTensorError(name, file);
  return held;
}

/**
 * The checkpoint seen through a family's other layouts (FamilySpec.checkpointAliases): a
 * canonical name the files lack is found under its alias. Errors keep naming the canonical name.
 */
export function aliasCheckpoint(ck: Checkpoint, spec: Pick<FamilySpec, 'checkpointAliases'>): Checkpoint {
  const aliases = spec.checkpointAliases;
  if (!aliases?.length) return ck;
  const resolve = (name: string): string => {
    if (ck.entry(name)) return name;
    for (const [canonical, alias] of aliases) if (name.startsWith(canonical) && ck.entry(alias + name.slice(canonical.length))) return alias + name.slice(canonical.length);
    return name;
  };
  return { files: ck.files, entry: (name) => ck.entry(resolve(name)), get: (name) => ck.get(resolve(name)) };
}

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

interface Route {
  name: string;
  shape: number[];
  elements: number;
  deliver: Deliver[];
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
  constructor(private readonly ops: Ops<T>, private readonly account: LoadAccount | null = null, private readonly aliases: FamilySpec['checkpointAliases'] = []) {}

  private route(name: string, shape: number[]): Route {
    let r = this.routes.get(name);
    if (!r) this.routes.set(name, (r = { name, shape, elements: shape.reduce((a, b) => a * b, 1), deliver: [], got: 0, file: null, stored: null }));
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

  private deliverTo(r: Route, row0: number, data: Float32Array): void {
    for (const d of r.deliver) d(row0, data);
    r.got += data.length;
  }

  /** The first needed tensor that has not fully arrived, or null. */
  missing(): string | null {
    for (const r of this.routes.values()) if (r.got < r.elements) return r.name;
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
  if (w.deepKv) all.add(w.deepKv);
  if (w.deepKvBias) all.add(w.deepKvBias);
  return [...all];
}

/**
 * Declares every weight the forward reads on `p`: which checkpoint tensors go where, checked
 * against the shapes the config implies, converted, fused and stored as `opts` says. Returns
 * the step that finishes the device tensors once every tensor has arrived.
 */
function planWeights<T>(p: WeightPlan<T>, c: ModelConfig, spec: FamilySpec, opts: BuildOptions): () => Weights<T> {
  const L = c.numLayers, H = c.hiddenSize, KV = kvDim(c), Q = qDim(c), F = c.intermediateSize, V = c.vocabSize;
  const gainOf = (g: Float32Array) => (spec.normGainOffset ? g.map((v) => v + spec.normGainOffset) : g);
  const roles = new Set(layerRolesFor(c));
  // Quantization is a property of the uploaded weight: matmul reads it, the forward does not know.
  // `cols` lets a device split a weight larger than one binding into row parts (src/ops/split.ts).
  const q = (cols: number): UploadOptions & { cols: number } => ({ cols, ...(opts.quant ? { quant: { scheme: opts.quant, cols } } : opts.half ? { half: true } : undefined) });

  const embedName = spec.globalTensors.embed;
  const embed = p.writer('embed', V, { cols: H });
  p.rows(embedName, globalRoleShape(c, 'embed'), (r, d) => embed.write(r, d));
  let finalNorm!: T;
  p.whole(spec.globalTensors.finalNorm, globalRoleShape(c, 'finalNorm'), (g) => (finalNorm = p.upload('final_norm', gainOf(g))));
  // A tied head is the embedding itself, unless it is stored otherwise (q4 / f16): then its own copy of the same rows.
  const qHead = opts.quantLmHead ? q(H) : opts.half ? { half: true as const } : undefined;
  const head = !c.tieWordEmbeddings || qHead ? p.writer('lm_head', V, { cols: H, ...qHead }) : null;
  if (head) p.rows(c.tieWordEmbeddings ? embedName : spec.globalTensors.lmHead, globalRoleShape(c, 'lmHead'), (r, d) => head.write(r, d));

  // POP's deep K/V stack: layer l's [K; V] rows are block j = L-1-l. Quantized or f16 it keeps
  // the layers' own q4 / f16 values and takes the norm gains as column gains (see quant.ts);
  // f32 folds the gain in, so rows that arrive before their layer's norm wait for it.
  const deep = opts.pop && L > 1;
  const deepGains = deep && (opts.quant || opts.half) ? new Float32Array((L - 1) * H) : null;
  const deepKv = deep ? p.writer('pop.deep_kv', (L - 1) * 2 * KV, deepGains ? { cols: H, ...deepKvStorage(opts, H, { values: deepGains, rows: 2 * KV }) } : { cols: H }) : null;
  const deepBias = deep && c.attentionBias ? new Float32Array((L - 1) * 2 * KV) : null;
  const foldWith: (Float32Array | null)[] = new Array(L).fill(null);
  const waiting: { row: number; data: Float32Array }[][] = Array.from({ length: L }, () => []);
  /** Rows [row0, ..) of layer l's [K; V] block. */
  const deepRows = (l: number, row0: number, d: Float32Array) => {
    const row = (L - 1 - l) * 2 * KV + row0, g = foldWith[l];
    if (deepGains) deepKv!.write(row, d);
    else if (g) deepKv!.write(row, foldGain(d, g));
    else {
      const data = d.slice();
      p.hold(data.byteLength);
      waiting[l].push({ row, data });
    }
  };
  const deepNorm = (l: number, g: Float32Array) => {
    if (deepGains) return deepGains.set(g, (L - 1 - l) * H);
    foldWith[l] = g;
    for (const w of waiting[l].splice(0)) deepKv!.write(w.row, foldGain(w.data, g)), p.release(w.data.byteLength);
  };

  const ropeFor = ropeTablesByLayer(c, opts.positions, (label, table) => p.upload(label, table));

  const layers: (() => LayerWeights<T>)[] = [];
  for (let l = 0; l < L; l++) {
    const t = (role: LayerRole) => {
      const pattern = spec.layerTensors[role];
      if (!pattern) throw new MissingTensorError(`${role} (layer ${l})`, 'family spec');
      return tensorName(pattern, l);
    };
    const shape = (role: LayerRole) => layerRoleShape(c, role);
    const name = (s: string) => `L${l}.${s}`;
    const toDeep = deep && l >= 1;
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
    const qkv = p.writer(name('qkv'), Q + 2 * KV, q(H));
    p.rows(t('q'), shape('q'), (r, d) => qkv.write(r, d));
    p.rows(t('k'), shape('k'), (r, d) => (qkv.write(Q + r, d), toDeep && deepRows(l, r, d)));
    p.rows(t('v'), shape('v'), (r, d) => (qkv.write(Q + KV + r, d), toDeep && deepRows(l, KV + r, d)));
    let qkvBias: T | null = null;
    if (roles.has('qBias')) {
      const bias = new Float32Array(Q + 2 * KV);
      let parts = 0;
      const part = (role: LayerRole, at: number, deepAt: number | null) => p.whole(t(role), shape(role), (b) => {
        bias.set(b, at);
        if (deepBias && toDeep && deepAt !== null) deepBias.set(b, (L - 1 - l) * 2 * KV + deepAt);
        if (++parts === 3) qkvBias = p.upload(name('qkv_bias'), bias);
      });
      part('qBias', 0, null);
      part('kBias', Q, 0);
      part('vBias', Q + KV, KV);
    }
    const qNorm = norm('qNorm', name('qNorm')), kNorm = norm('kNorm', name('kNorm'));
    const o = p.writer(name('o'), H, q(Q));
    p.rows(t('o'), shape('o'), (r, d) => o.write(r, d));
    const attnOutNorm = norm('attnOutNorm', name('attn_out_norm'));
    const mlpNorm = norm('mlpNorm', name('mlp_norm'));
    const gateUp = p.writer(name('gate_up'), 2 * F, q(H));
    p.rows(t('gate'), shape('gate'), (r, d) => gateUp.write(r, d));
    p.rows(t('up'), shape('up'), (r, d) => gateUp.write(F + r, d));
    const down = p.writer(name('down'), H, q(F));
    p.rows(t('down'), shape('down'), (r, d) => down.write(r, d));
    const mlpOutNorm = norm('mlpOutNorm', name('mlp_out_norm'));
    const rope = ropeFor(l);
    layers.push(() => ({
      inputNorm: inputNorm()!, qkv: qkv.finish(), qkvBias, qNorm: qNorm(), kNorm: kNorm(), o: o.finish(), attnOutNorm: attnOutNorm(),
      mlpNorm: mlpNorm()!, gateUp: gateUp.finish(), down: down.finish(), mlpOutNorm: mlpOutNorm(), rope,
    }));
  }
  return () => {
    const e = embed.finish();
    return {
      embed: e, finalNorm, lmHead: head ? head.finish() : e, layers: layers.map((f) => f()),
      deepKv: deepKv ? deepKv.finish() : null,
      deepKvBias: deepBias ? p.upload('pop.deep_kv_bias', deepBias) : null,
    };
  };
}

/**
 * Checks, converts, fuses and uploads every weight the forward reads from a host checkpoint
 * (tests). On any failure (a missing tensor in layer 20, out of memory...) what was uploaded so
 * far is freed.
 */
export function buildWeights<T>(ops: Ops<T>, c: ModelConfig, spec: FamilySpec, ck: Checkpoint, opts: BuildOptions): Weights<T> {
  const p = new WeightPlan(ops);
  try {
    const finish = planWeights(p, c, spec, opts);
    for (const name of p.names()) {
      const e = ck.entry(name);
      if (!e) throw new MissingTensorError(name, ck.files.join(', '));
      p.check(name, e);
      p.deliver(name, 0, ck.get(name)!);
    }
    return finish();
  } catch (e) {
    p.discard();
    throw e;
  }
}

export interface StreamedWeights<T, E> {
  weights: Weights<T>;
  /** What `extra` built (a VLM's vision tower), null without one. */
  extra: E | null;
  stats: LoadStats;
}

/**
 * Loads the weights of an HF folder while they download: file by file, each tensor's rows
 * written to the device as they arrive (see the top of this file). A file is stored by a
 * caching source only once it was read whole and good (FileStream.finish). On any failure
 * (missing tensor, truncated file, abort, out of memory) everything made so far is freed.
 */
export async function streamWeights<T, E = never>(ops: Ops<T>, c: ModelConfig, spec: FamilySpec, source: ModelSource, opts: BuildOptions, o: StreamOptions & { extra?: (p: WeightRoutes<T>) => () => E } = {}): Promise<StreamedWeights<T, E>> {
  const { files, index } = await weightFiles(source, o.signal);
  const account = new LoadAccount();
  const p = new WeightPlan(ops, account, spec.checkpointAliases);
  try {
    const finish = planWeights(p, c, spec, opts);
    const finishExtra = o.extra?.(p) ?? null;
    // Checked before any weight byte is read: what the index does not list, no shard has.
    const unlisted = index && p.names().find((n) => !p.storedName(n, (x) => x in index));
    if (unlisted) throw new MissingTensorError(unlisted, files.join(', '));
    const seen = new Set<string>();
    let loadedBytes = 0;
    for (let i = 0; i < files.length; i++) {
      const file = files[i];
      const sink: TensorSink = {
        header: (f, h) => {
          const lacks = index ? Object.keys(index).find((n) => index[n] === f && !h.tensors.has(n) && !seen.has(n)) : p.names().find((n) => !p.storedName(n, (x) => h.tensors.has(x)));
          if (lacks) throw new MissingTensorError(lacks, f);
          for (const n of h.tensors.keys()) seen.add(n);
          p.header(f, h);
        },
        wants: (e) => p.wants(file, e),
        rows: (e, r0, n, bytes) => p.accept(e, r0, n, bytes),
      };
      const stream = (await openModelFile(source, file, { signal: o.signal }))!;
      try {
        loadedBytes += await streamSafetensors(file, stream, sink, account, { chunkBytes: o.chunkBytes, signal: o.signal });
      } catch (e) {
        await stream.cancel(e);
        throw e;
      }
      await stream.finish();
      o.onProgress?.({ file, loadedFiles: i + 1, totalFiles: files.length, loadedBytes });
    }
    const missing = p.missing();
    if (missing) throw new MissingTensorError(missing, files.join(', '));
    return { weights: finish(), extra: finishExtra ? finishExtra() : null, stats: account.stats };
  } catch (e) {
    p.discard();
    throw e;
  }
}
