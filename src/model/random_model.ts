// Random-weight models at real shapes: benchmarks (`random:<config-dir>`) and test fixtures
// (real configs scaled down). Tensor names and shapes come from the family spec, so every
// family gets fixtures without code of its own. Deterministic for a seed.
import type { ModelConfig } from './config.ts';
import { globalRoleShape, layerRoleShape, layerRolesFor, type GlobalRole } from './family.ts';
import { familyFor } from './registry.ts';
import { writeSafetensors, type SafetensorsDtype } from './safetensors.ts';

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

/** Builds config.json, generation_config.json and safetensors for a random model. */
export function randomModelFiles(rawConfig: Record<string, any>, o: RandomModelOptions = {}): Map<string, Uint8Array> {
  const spec = familyFor(rawConfig.model_type);
  const c: ModelConfig = spec.normalize(rawConfig);
  const g = gaussianSource(o.seed ?? 1234);
  const tensors: { name: string; shape: number[]; data: Float32Array; dtype?: SafetensorsDtype }[] = [];
  const make = (name: string, shape: number[], kind: 'norm' | 'weight' | 'bias', fanIn = shape[shape.length - 1], normOffset = spec.normGainOffset) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    // Norm gains near their identity value; weights ~ N(0, 1/in) so activations stay O(1).
    const std = kind === 'weight' ? 1 / Math.sqrt(fanIn) : 0.02;
    const base = kind === 'norm' ? (normOffset ? 0 : 1) : 0;
    for (let i = 0; i < n; i++) data[i] = base + std * g() * (kind === 'norm' ? 5 : 1);
    tensors.push({ name: o.rename ? o.rename(name) : name, shape, data, dtype: o.dtype });
  };
  const globals: GlobalRole[] = ['embed', 'finalNorm'];
  if (!c.tieWordEmbeddings) globals.push('lmHead');
  for (const role of globals) make(spec.globalTensors[role], globalRoleShape(c, role), role === 'finalNorm' ? 'norm' : 'weight');
  for (let l = 0; l < c.numLayers; l++) {
    for (const role of layerRolesFor(c)) {
      const pattern = spec.layerTensors[role]!;
      const shape = layerRoleShape(c, role);
      make(pattern.replace('{layer}', String(l)), shape, role.endsWith('Norm') ? 'norm' : role.endsWith('Bias') ? 'bias' : 'weight');
    }
  }
  // Extra tensors (a VLM's tower) keep their own gain convention: SigLIP's LayerNorms store the gain.
  for (const t of spec.extraTensors?.(c) ?? []) make(t.name, t.shape, t.kind, t.fanIn, t.normOffset ?? 0);
  const files = new Map<string, Uint8Array>();
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 2));
  files.set('config.json', enc(rawConfig));
  files.set('generation_config.json', enc({ bos_token_id: rawConfig.bos_token_id, eos_token_id: rawConfig.eos_token_id }));
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
    files.set('model.safetensors.index.json', enc({ metadata: {}, weight_map: weightMap }));
  }
  return files;
}
