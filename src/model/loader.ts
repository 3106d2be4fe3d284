// Loads a Hugging Face model folder: config.json (-> family spec -> ModelConfig),
// generation_config.json, tokenizer files, and model.safetensors or a sharded index. Every
// tensor is checked against the shape the config implies, converted to f32, fused into the
// layouts the forward reads (QKV, gate|up, POP's stacked deep K/V) and uploaded. A folder with
// mlc-chat-config.json instead (MLC / WebLLM) loads its weights through src/model/mlc.ts.
import { MalformedFileError, MissingTensorError, ShapeMismatchError } from '../errors.ts';
import type { Ops, UploadOptions } from '../ops/ops.ts';
import type { QuantScheme } from '../ops/quant.ts';
import { kvDim, qDim, ropeTable, type ModelConfig } from './config.ts';
import { globalRoleShape, layerRoleShape, layerRolesFor, type FamilySpec, type GlobalRole, type LayerRole } from './family.ts';
import { familyFor } from './registry.ts';
import { MLC_CONFIG, mlcModelInfo, type MlcModelInfo } from './mlc.ts';
import { parseSafetensorsHeader, toFloat32, type TensorEntry } from './safetensors.ts';
import { readJsonObject, type ModelSource } from './source.ts';
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

export interface LoadProgress {
  file: string;
  loadedFiles: number;
  totalFiles: number;
  loadedBytes: number;
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
    throw new MalformedFileError(configFile, (e as Error).message);
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

/** Fetches model.safetensors, or every shard named by model.safetensors.index.json. */
export async function loadCheckpoint(source: ModelSource, onProgress?: (p: LoadProgress) => void, signal?: AbortSignal): Promise<Checkpoint> {
  const index = await readJsonObject(source, 'model.safetensors.index.json', true, signal);
  let files: string[];
  if (index) {
    const map = index.weight_map;
    if (!map || typeof map !== 'object' || Array.isArray(map)) throw new MalformedFileError('model.safetensors.index.json', 'no weight_map');
    if (Object.values(map).some((f) => typeof f !== 'string')) throw new MalformedFileError('model.safetensors.index.json', 'weight_map values must be shard file names');
    files = [...new Set(Object.values(index.weight_map as Record<string, string>))];
  } else {
    files = ['model.safetensors'];
  }
  const where = new Map<string, { entry: TensorEntry; bytes: Uint8Array }>();
  let loadedBytes = 0;
  for (let i = 0; i < files.length; i++) {
    const buf = (await source.fetchFile(files[i], { signal }))!;
    const bytes = new Uint8Array(buf);
    const header = parseSafetensorsHeader(files[i], bytes, bytes.byteLength);
    for (const e of header.tensors.values()) where.set(e.name, { entry: e, bytes });
    loadedBytes += bytes.byteLength;
    onProgress?.({ file: files[i], loadedFiles: i + 1, totalFiles: files.length, loadedBytes });
  }
  if (index) {
    for (const [name, file] of Object.entries(index.weight_map as Record<string, string>)) {
      if (!where.has(name)) throw new MissingTensorError(name, file);
    }
  }
  return {
    files,
    entry: (name) => where.get(name)?.entry ?? null,
    get(name) {
      const w = where.get(name);
      return w ? toFloat32(w.entry, w.bytes.subarray(w.entry.begin, w.entry.end)) : null;
    },
  };
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

/** Fetches one tensor, checking presence and shape. */
function take(ck: Checkpoint, name: string, shape: number[]): Float32Array {
  const e = ck.entry(name);
  if (!e) throw new MissingTensorError(name, ck.files.join(', '));
  const same = e.shape.length === shape.length && e.shape.every((d, i) => d === shape[i]);
  if (!same) throw new ShapeMismatchError(name, shape, e.shape);
  return ck.get(name)!;
}

function concatRows(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), (o += p.length);
  return out;
}

/** Folds a norm gain into the columns of a [rows, cols] weight: W·diag(g). */
function foldGain(w: Float32Array, gain: Float32Array): Float32Array {
  const cols = gain.length, out = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = w[i] * gain[i % cols];
  return out;
}

export interface BuildOptions {
  /** Build POP's stacked deep K/V weights (needed for keep < L). */
  pop: boolean;
  /** Positions the RoPE tables cover (the context window). */
  positions: number;
  /** int4-quantize the projection weights (qkv, o, gate|up, down, POP's deep K/V); null: f32. */
  quant?: QuantScheme | null;
  /** Quantize the LM head too (a tied one gets its own q4 copy; the embedding table stays f32). */
  quantLmHead?: boolean;
  /**
   * f16 storage (src/ops/half.ts) for the matmul weights not quantized: projections, POP's deep
   * K/V (layer values rounded, norm gains as column gains) and the LM head (a tied one gets its
   * own f16 copy). Embeddings, norms and biases stay f32.
   */
  half?: boolean;
}

/**
 * Checks, converts, fuses and uploads every weight the forward reads. On any failure
 * (a missing tensor in layer 20, out of memory...) what was uploaded so far is freed.
 */
export function buildWeights<T>(ops: Ops<T>, c: ModelConfig, spec: FamilySpec, ck: Checkpoint, opts: BuildOptions): Weights<T> {
  const uploaded: T[] = [];
  const tracking: Ops<T> = Object.create(ops, {
    upload: { value: (label: string, data: Float32Array, ...rest: unknown[]) => {
      const t = (ops.upload as (...a: unknown[]) => T)(label, data, ...rest);
      uploaded.push(t);
      return t;
    } },
  });
  try {
    return buildWeightsOn(tracking, c, spec, ck, opts);
  } catch (e) {
    for (const t of uploaded) ops.free(t);
    throw e;
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
function buildWeightsOn<T>(ops: Ops<T>, c: ModelConfig, spec: FamilySpec, ck: Checkpoint, opts: BuildOptions): Weights<T> {
  const L = c.numLayers, H = c.hiddenSize, KV = kvDim(c);
  const gainOf = (g: Float32Array) => (spec.normGainOffset ? g.map((v) => v + spec.normGainOffset) : g);
  const global = (role: GlobalRole) => take(ck, spec.globalTensors[role], globalRoleShape(c, role));
  const roles = new Set(layerRolesFor(c));
  // Quantization is a property of the uploaded weight: matmul reads it, the forward does not know.
  // `cols` lets a device split a weight larger than one binding into row parts (src/ops/split.ts).
  const q = (cols: number): UploadOptions => ({ cols, ...(opts.quant ? { quant: { scheme: opts.quant, cols } } : opts.half ? { half: true } : undefined) });

  const embedHost = global('embed');
  const embed = ops.upload('embed', embedHost, { cols: H });
  const finalNorm = ops.upload('final_norm', gainOf(global('finalNorm')));
  let lmHead: T;
  const qHead = opts.quantLmHead ? q(H) : opts.half ? { half: true as const } : undefined;
  if (c.tieWordEmbeddings) lmHead = qHead ? ops.upload('lm_head', embedHost, { cols: H, ...qHead }) : embed;
  else lmHead = ops.upload('lm_head', global('lmHead'), { cols: H, ...qHead });

  const deepKvHost = opts.pop && L > 1 ? new Float32Array((L - 1) * 2 * KV * H) : null;
  const deepBiasHost = opts.pop && L > 1 && c.attentionBias ? new Float32Array((L - 1) * 2 * KV) : null;
  // Quantized or f16, the deep K/V stack keeps the layers' own q4 / f16 values and takes the norm gains as column gains (see quant.ts).
  const deepGainsHost = deepKvHost && (opts.quant || opts.half) ? new Float32Array((L - 1) * H) : null;
  const ropeTables = new Map<string, T>();
  const ropeFor = (l: number) => {
    const key = JSON.stringify(c.rope[l]);
    let t = ropeTables.get(key);
    if (!t) ropeTables.set(key, (t = ops.upload(`rope.${ropeTables.size}`, ropeTable(c.rope[l], c.headDim, opts.positions))));
    return t;
  };
  const layers: LayerWeights<T>[] = [];
  for (let l = 0; l < L; l++) {
    const get = (role: LayerRole) => {
      const pattern = spec.layerTensors[role];
      if (!pattern) throw new MissingTensorError(`${role} (layer ${l})`, 'family spec');
      return take(ck, tensorName(pattern, l), layerRoleShape(c, role));
    };
    const opt = (role: LayerRole) => (roles.has(role) ? get(role) : null);
    const qw = get('q'), k = get('k'), v = get('v');
    const qb = opt('qBias'), kb = opt('kBias'), vb = opt('vBias');
    const inputNorm = gainOf(get('inputNorm'));
    const name = (s: string) => `L${l}.${s}`;
    const headNorm = (role: LayerRole) => {
      const g = opt(role);
      return g ? ops.upload(name(role), gainOf(g)) : null;
    };
    const attnOut = opt('attnOutNorm'), mlpOut = opt('mlpOutNorm');
    layers.push({
      inputNorm: ops.upload(name('input_norm'), inputNorm),
      qkv: ops.upload(name('qkv'), concatRows([qw, k, v]), q(H)),
      qkvBias: qb && kb && vb ? ops.upload(name('qkv_bias'), concatRows([qb, kb, vb])) : null,
      qNorm: headNorm('qNorm'),
      kNorm: headNorm('kNorm'),
      o: ops.upload(name('o'), get('o'), q(qDim(c))),
      attnOutNorm: attnOut ? ops.upload(name('attn_out_norm'), gainOf(attnOut)) : null,
      mlpNorm: ops.upload(name('mlp_norm'), gainOf(get('mlpNorm'))),
      gateUp: ops.upload(name('gate_up'), concatRows([get('gate'), get('up')]), q(H)),
      down: ops.upload(name('down'), get('down'), q(c.intermediateSize)),
      mlpOutNorm: mlpOut ? ops.upload(name('mlp_out_norm'), gainOf(mlpOut)) : null,
      rope: ropeFor(l),
    });
    if (deepKvHost && l >= 1) {
      const j = L - 1 - l;
      deepKvHost.set(deepGainsHost ? k : foldGain(k, inputNorm), j * 2 * KV * H);
      deepKvHost.set(deepGainsHost ? v : foldGain(v, inputNorm), (j * 2 + 1) * KV * H);
      deepGainsHost?.set(inputNorm, j * H);
      if (deepBiasHost && kb && vb) deepBiasHost.set(kb, j * 2 * KV), deepBiasHost.set(vb, j * 2 * KV + KV);
    }
  }
  return {
    embed, finalNorm, lmHead, layers,
    deepKv: deepKvHost ? ops.upload('pop.deep_kv', deepKvHost, deepGainsHost ? deepKvStorage(opts, H, { values: deepGainsHost, rows: 2 * KV }) : { cols: H }) : null,
    deepKvBias: deepBiasHost ? ops.upload('pop.deep_kv_bias', deepBiasHost) : null,
  };
}
