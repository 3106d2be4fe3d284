// Loads a Hugging Face model folder: config.json (-> family spec -> ModelConfig),
// generation_config.json, tokenizer files, and model.safetensors or a sharded index. The
// weights stream (src/model/stream.ts): each file's header is checked against the shapes the
// config implies before its data arrives, then every tensor's rows are converted to f32 and
// written, as they arrive, into the device tensors the forward reads (fused QKV and gate|up,
// POP's stacked deep K/V; f32, int4 or f16 as asked) through Ops.uploadRows. The WeightPlan
// (src/model/weight_plan.ts, the one weight path) maps checkpoint tensors to those writes, so
// the order of tensors in a file does not matter and the host never holds a whole tensor. A
// folder with mlc-chat-config.json instead (MLC / WebLLM) is read by src/model/mlc.ts into the
// same plan.
import { MalformedFileError, MissingTensorError } from '../errors.ts';
import type { Ops } from '../ops/ops.ts';
import type { ModelConfig } from './config.ts';
import type { FamilySpec } from './family.ts';
import { familyFor } from './registry.ts';
import type { BuildOptions, LoadProgress, StreamOptions } from './load_options.ts';
export type { BuildOptions, LoadProgress, StreamOptions };
import { MLC_CONFIG, mlcModelInfo, type MlcModelInfo } from './mlc.ts';
import { toFloat32, type TensorEntry } from './safetensors.ts';
import { openModelFile, readJsonObject, type ModelSource } from './source.ts';
import { LoadAccount, streamSafetensors, type LoadStats, type TensorSink } from './stream.ts';
import { planWeights, WeightPlan, type WeightRoutes } from './weight_plan.ts';
import type { Weights } from './weights.ts';

export { WeightPlan, weightTensors, type WeightRoutes } from './weight_plan.ts';

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
