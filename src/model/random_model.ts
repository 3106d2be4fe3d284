// Random-weight models at real shapes: benchmarks (`random:<config-dir>`) and test fixtures
// (real configs scaled down). Tensor names and shapes come from the family spec, so every
// family gets fixtures without code of its own. Deterministic for a seed.
import type { ModelConfig } from './config.ts';
import { globalRoleShape, layerRoleShape, layerRolesFor, perLayerInputShape, type GlobalRole, type PerLayerInputRole } from './family.ts';
import { familyFor } from './registry.ts';
import { ModelFileMissingError } from '../errors.ts';
import { encodeTensor, safetensorsHead, writeSafetensors, type SafetensorsDtype } from './safetensors.ts';
import { CHUNK_BYTES, memorySource, type ModelSource } from './source.ts';

export interface RandomModelOptions {
  seed?: number;
  dtype?: SafetensorsDtype;
  /** Split the weights over this many shards with an index (default 1: model.safetensors). */
  shards?: number;
  /** Stores each tensor under rename(name) (another checkpoint layout of the family, e.g. Gemma 3's older names). */
  rename?: (name: string) => string;
}

/** Scales a real config.json down (fewer layers, narrower) keeping its structure. */
export function scaleConfig(raw: Record<string, any>, s: { layers?: number; hidden?: number; heads?: number; kvHeads?: number; headDim?: number; inter?: number; vocab?: number; maxPositions?: number }): Record<string, any> {
  const out = structuredClone(raw);
  const set = (k: string, v: number | undefined) => v !== undefined && (out[k] = v);
  set('num_hidden_layers', s.layers);
  set('hidden_size', s.hidden);
  set('num_attention_heads', s.heads);
  set('num_key_value_heads', s.kvHeads);
  set('intermediate_size', s.inter);
  set('vocab_size', s.vocab);
  set('max_position_embeddings', s.maxPositions);
  if (s.headDim !== undefined || 'head_dim' in out) out.head_dim = s.headDim ?? (out.hidden_size / out.num_attention_heads);
  if (Array.isArray(out.layer_types) && s.layers !== undefined) out.layer_types = out.layer_types.slice(0, s.layers);
  return out;
}

function gaussianSource(seed: number): () => number {
  let a = seed >>> 0 || 1;
  const u = () => {
    a ^= a << 13; a >>>= 0; a ^= a >>> 17; a ^= a << 5; a >>>= 0;
    return (a + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

interface RandomTensor {
  name: string;
  shape: number[];
  kind: 'norm' | 'weight' | 'bias';
  fanIn?: number;
  /** Norms: the stored w is used as normOffset + w (0: the gain itself, drawn near 1). */
  normOffset: number;
}

/**
 * A random model's tensors in file order (stored names): globals, then layer by layer in role
 * order, then the spec's extras (a VLM's tower, with their own gain convention).
 */
function randomTensors(rawConfig: Record<string, any>, rename: (name: string) => string = (n) => n): RandomTensor[] {
  const spec = familyFor(rawConfig.model_type);
  const c: ModelConfig = spec.normalize(rawConfig);
  const list: RandomTensor[] = [];
  const add = (name: string, shape: number[], kind: RandomTensor['kind'], fanIn?: number, normOffset = spec.normGainOffset) => list.push({ name: rename(name), shape, kind, fanIn, normOffset });
  const globals: GlobalRole[] = ['embed', 'finalNorm'];
  if (!c.tieWordEmbeddings) globals.push('lmHead');
  for (const role of globals) add(spec.globalTensors[role], globalRoleShape(c, role), role === 'finalNorm' ? 'norm' : 'weight');
  if (c.perLayerInput && spec.perLayerInputTensors) {
    for (const role of ['pleEmbed', 'pleModelProj', 'pleProjNorm'] as PerLayerInputRole[]) add(spec.perLayerInputTensors[role], perLayerInputShape(c, role), role === 'pleProjNorm' ? 'norm' : 'weight');
  }
  for (let l = 0; l < c.numLayers; l++) {
    for (const role of layerRolesFor(c, l)) {
      const name = spec.layerTensors[role]!.replace('{layer}', String(l));
      // Gemma 4's layer_scalar multiplies the hidden state: drawn near 1, like a norm's gain.
      if (role === 'layerScalar') add(name, layerRoleShape(c, role, l), 'norm', undefined, 0);
      else add(name, layerRoleShape(c, role, l), role.endsWith('Norm') ? 'norm' : role.endsWith('Bias') ? 'bias' : 'weight');
    }
  }
  // Extra tensors (a VLM's tower) keep their own gain convention: SigLIP's LayerNorms store the gain.
  for (const t of spec.extraTensors?.(c) ?? []) add(t.name, t.shape, t.kind, t.fanIn, t.normOffset ?? 0);
  return list;
}

/**
 * Draws a tensor's values `chunk` at a time, in order (the same values whatever the chunk):
 * norm gains near their identity value, weights ~ N(0, 1/in) so activations stay O(1).
 */
function* drawTensor(t: RandomTensor, g: () => number, chunk: number, scratch?: Float32Array): Generator<Float32Array> {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const std = t.kind === 'weight' ? 1 / Math.sqrt(t.fanIn ?? t.shape[t.shape.length - 1]) : 0.02;
  const base = t.kind === 'norm' ? (t.normOffset ? 0 : 1) : 0;
  const mul = t.kind === 'norm' ? 5 : 1;
  for (let i = 0; i < n; i += chunk) {
    const m = Math.min(chunk, n - i);
    const data = scratch ? scratch.subarray(0, m) : new Float32Array(m);
    for (let j = 0; j < data.length; j++) data[j] = base + std * g() * mul;
    yield data;
  }
}

const encodeJson = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 2));

/** config.json and generation_config.json of a random model. */
function randomConfigFiles(rawConfig: Record<string, any>): Map<string, Uint8Array> {
  return new Map([
    ['config.json', encodeJson(rawConfig)],
    ['generation_config.json', encodeJson({ bos_token_id: rawConfig.bos_token_id, eos_token_id: rawConfig.eos_token_id })],
  ]);
}

/** Builds config.json, generation_config.json and safetensors for a random model. */
export function randomModelFiles(rawConfig: Record<string, any>, o: RandomModelOptions = {}): Map<string, Uint8Array> {
  const list = randomTensors(rawConfig, o.rename);
  const g = gaussianSource(o.seed ?? 1234);
  const tensors = list.map((t) => {
    const [data = new Float32Array(0)] = drawTensor(t, g, Infinity);
    return { name: t.name, shape: t.shape, data, dtype: o.dtype };
  });
  const files = randomConfigFiles(rawConfig);
  const shards = Math.max(1, o.shards ?? 1);
  if (shards === 1) {
    files.set('model.safetensors', writeSafetensors(tensors));
  } else {
    const per = Math.ceil(tensors.length / shards);
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < shards; s++) {
      const part = tensors.slice(s * per, (s + 1) * per);
      const name = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      for (const t of part) weightMap[t.name] = name;
      files.set(name, writeSafetensors(part));
    }
    files.set('model.safetensors.index.json', encodeJson({ metadata: {}, weight_map: weightMap }));
  }
  return files;
}

/**
 * The same random model (model.safetensors byte for byte as randomModelFiles with one shard)
 * as a source whose weight file is drawn while it is read: nothing of it is held beyond the
 * chunk in flight, so a 1 B-parameter model costs no memory before the load reads it. `extra`
 * adds files (tokenizer, preprocessor config).
 */
export function randomModelSource(rawConfig: Record<string, any>, o: RandomModelOptions = {}, extra: ReadonlyMap<string, Uint8Array> = new Map(), id = 'random'): ModelSource {
  const list = randomTensors(rawConfig, o.rename);
  const dtype = o.dtype ?? 'F32';
  const small = memorySource(new Map([...randomConfigFiles(rawConfig), ...extra]), id);
  const head = safetensorsHead(list.map((t) => ({ ...t, dtype })));
  const width = dtype === 'F32' ? 4 : 2;
  const size = head.byteLength + list.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1) * width, 0);
  function* file(): Generator<Uint8Array> {
    yield head;
    const g = gaussianSource(o.seed ?? 1234);
    // The drawn f32 values are encoded (copied) right away: one scratch for them; the encoded chunk is new (the reader keeps it).
    const scratch = new Float32Array(CHUNK_BYTES / width);
    for (const t of list) for (const data of drawTensor(t, g, CHUNK_BYTES / width, scratch)) yield encodeTensor(data, dtype);
  }
  const open = (name: string, optional?: boolean): Generator<Uint8Array> | null => {
    if (name === 'model.safetensors') return file();
    if (!optional) throw new ModelFileMissingError(name);
    return null;
  };
  return {
    id,
    async fetchFile(name, opts = {}) {
      if (name !== 'model.safetensors') return small.fetchFile(name, opts);
      const out = new Uint8Array(size);
      let p = 0;
      for (const c of open(name)!) out.set(c, p), (p += c.byteLength);
      return out.buffer;
    },
    async openFile(name, opts = {}) {
      if (name !== 'model.safetensors') return small.openFile!(name, opts);
      const chunks = open(name, opts.optional)!;
      return {
        size,
        read: async () => {
          opts.signal?.throwIfAborted();
          const r = chunks.next();
          return r.done ? null : r.value;
        },
        finish: async () => {},
        cancel: async () => void chunks.return(undefined),
      };
    },
  };
}
