// "Will it fit?" before any shard is fetched: from config.json and the file sizes alone
// (the index's total_size, or HEAD requests), estimate the device bytes of the weights (f32
// after conversion, or f16 / int4 as `WeightFormat` says), the KV cache at the requested
// context, and the largest single binding, and compare them with the adapter's limits, the
// browser's free storage and, when the app gives one, a device memory budget. Matrices larger
// than one binding are stored as row parts (src/ops/split.ts), planned here exactly as the
// loader will: only a row block that alone exceeds the binding limit, or a layer's KV cache
// (never split), is refused for its size.
import { ModelTooLargeError, StorageQuotaError } from '../errors.ts';
import type { UploadOptions } from '../ops/ops.ts';
import { planSplit, storedBytes } from '../ops/split.ts';
import { deepKvRows, isKvShared, layerKvDim, layerQDim, layerShape, maxOverLayers, type ModelConfig } from './config.ts';
import { familyFor } from './registry.ts';
import { tableStorage, type TableDtype } from './load_options.ts';

export interface FitLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  /** Free browser storage in bytes (quota - usage), when known. */
  storageAvailable?: number;
  /**
   * Device memory the weights and KV cache may use, when the app knows it (WebGPU does not
   * tell: a GPU's VRAM, or RAM for integrated GPUs and SwiftShader). Unset: not checked.
   */
  memoryBytes?: number;
}

export interface FitReport {
  fits: boolean;
  params: number;
  downloadBytes: number;
  weightBytes: number;
  kvBytes: number;
  /** The largest single buffer the model will bind (after row splitting), and what it is. */
  largestBindingBytes: number;
  largestBinding: string;
  /** Tensors larger than one binding, stored as this many row parts. */
  splits: { what: string; bytes: number; parts: number }[];
  contextWindow: number;
  problems: { what: string; bytes: number; limitName: string; limit: number; suggestion: string }[];
}

/** How the engine will store the weights (EngineOptions; 'auto' resolved by the caller). Default: f32. */
export interface WeightFormat {
  weightDtype?: 'f32' | 'f16';
  /** KV cache storage (default f32): f16 is 2 bytes a value. */
  kvDtype?: 'f32' | 'f16';
  quantization?: 'none' | 'q4' | 'q4-asym';
  quantizeLmHead?: boolean;
  /** EngineOptions.embeddingDtype / lmHeadDtype (src/model/load_options.ts tableStorage). */
  embeddingDtype?: 'auto' | TableDtype;
  lmHeadDtype?: 'auto' | TableDtype;
}

/** Device bytes per weight of a matmul weight: q4 nibbles + f32 group-32 scale (+ offset when asymmetric), f16, f32. */
function bytesPerWeight(kind: 'q4' | 'q4-asym' | 'f16' | 'f32'): number {
  return kind === 'q4' ? 0.5 + 4 / 32 : kind === 'q4-asym' ? 0.5 + 8 / 32 : kind === 'f16' ? 2 : 4;
}

/** Parameter count of the weights the engine keeps (POP's stacked deep K/V and a VLM's tower included). */
export function paramCount(c: ModelConfig): number {
  const H = c.hiddenSize;
  const head = c.tieWordEmbeddings ? 0 : c.vocabSize * H;
  let norms = 0;
  for (let l = 0; l < c.numLayers; l++) norms += (c.perLayerInput ? 5 : 4) * H;
  const pleTable = c.perLayerInput ? c.perLayerInput.vocab * c.numLayers * c.perLayerInput.dim : 0;
  return c.vocabSize * H + head + projectionParams(c) + norms + pleTable + visionParamCount(c);
}

/**
 * Parameters of the matmul weights (what int4 / f16 apply to): every layer's QKV (a KV-shared
 * layer has only Q), O, gate|up, down (Gemma 4: per-layer widths, the per-layer input gate and
 * projection), POP's deep K/V stack, and Gemma 4's projection of the main embedding.
 */
export function projectionParams(c: ModelConfig): number {
  const H = c.hiddenSize, P = c.perLayerInput?.dim ?? 0;
  let n = deepKvRows(c, 1) * H + c.numLayers * P * H;
  for (let l = 0; l < c.numLayers; l++) {
    const Q = layerQDim(c, l), KV = isKvShared(c, l) ? 0 : layerKvDim(c, l);
    n += H * (Q + 2 * KV) + Q * H + 3 * H * layerShape(c, l).intermediateSize + 2 * H * P;
  }
  return n;
}

/**
 * Parameters of a VLM's tower and connector (its family's extra tensors); `matmulOnly`: those
 * marked as matmul weights (ExtraTensor.matmul), which are stored as the projections are; the
 * rest stays f32 whatever the text weights' format.
 */
export function visionParamCount(c: ModelConfig, matmulOnly = false): number {
  const tensors = c.vision ? familyFor(c.modelType).extraTensors?.(c) ?? [] : [];
  return tensors.filter((t) => !matmulOnly || t.matmul).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
}

export function estimateFit(rawConfig: Record<string, any>, downloadBytes: number, contextWindow: number | undefined, limits: FitLimits, format: WeightFormat = {}): FitReport {
  const c = familyFor(rawConfig.model_type).normalize(rawConfig);
  const ctx = contextWindow ?? Math.min(c.maxPositionEmbeddings, 4096);
  const params = paramCount(c);
  // Norms and biases stay f32; projections, POP's deep K/V and a tower's matmul weights take the
  // quantization (else weightDtype); the vocabulary tables as tableStorage says (below). Every
  // matrix as the loader uploads it (src/model/weight_plan.ts): a row length, so the device
  // may split it into row parts; q4 / f16 as the format says; POP's deep K/V with column gains.
  const stored = (kind: 'q4' | 'q4-asym' | 'f16' | 'f32', cols: number, gainRows = 0): UploadOptions & { cols: number } => {
    const gains = gainRows ? { values: new Float32Array(0), rows: gainRows } : undefined;
    if (kind === 'f32') return { cols };
    if (kind === 'f16') return { cols, half: gains ? { cols, gains } : true };
    return { cols, quant: { scheme: kind, cols, gains } };
  };
  const quant = format.quantization ?? 'none';
  const proj = bytesPerWeight(quant !== 'none' ? quant : format.weightDtype ?? 'f32');
  // The embedding tables (main, Gemma 4's per-layer) and the LM head as the loader stores them
  // (tableStorage): q4 in the quantization's scheme, f16 or f32; a tied head stored as the
  // embedding is shares it.
  const tables = tableStorage(format);
  const tableKind = (k: TableDtype): 'q4' | 'q4-asym' | 'f16' | 'f32' => (k === 'q4' ? (quant !== 'none' ? quant : 'q4') : k);
  const embedKind = tableKind(tables.embed), headKind = tableKind(tables.head);
  const H = c.hiddenSize, V = c.vocabSize, LP = c.perLayerInput ? c.numLayers * c.perLayerInput.dim : 0;
  const projParams = projectionParams(c) + visionParamCount(c, true);
  const ownHead = !c.tieWordEmbeddings || headKind !== embedKind;
  const tableBytes = storedBytes(V, H, stored(embedKind, H)) + (LP ? storedBytes(c.perLayerInput!.vocab, LP, stored(embedKind, LP)) : 0) + (ownHead ? storedBytes(V, H, stored(headKind, H)) : 0);
  const tableParams = V * H * (c.tieWordEmbeddings ? 1 : 2) + (LP ? c.perLayerInput!.vocab * LP : 0);
  const gains = proj !== 4 ? (c.numLayers - 1) * H * 4 : 0;
  const weightBytes = Math.round((params - projParams - tableParams) * 4 + projParams * proj + tableBytes + gains);
  // KV-shared layers (Gemma 4) store nothing: they read their source layer's pages.
  let kvPerToken = 0;
  const kvValue = format.kvDtype === 'f16' ? 2 : 4;
  for (let l = 0; l < c.numLayers; l++) if (!isKvShared(c, l)) kvPerToken += 2 * layerKvDim(c, l) * kvValue;
  const kvBytes = kvPerToken * ctx;
  const projKind = quant !== 'none' ? quant : format.weightDtype ?? 'f32';
  const maxF = maxOverLayers(c, (l) => layerShape(c, l).intermediateSize);
  const minKv = Math.min(...Array.from({ length: c.numLayers }, (_, l) => layerKvDim(c, l)));
  const matrices: { what: string; rows: number; opts: UploadOptions & { cols: number } }[] = [
    { what: 'embedding table', rows: c.vocabSize, opts: stored(embedKind, H) },
    { what: 'gate|up projection', rows: 2 * maxF, opts: stored(projKind, H) },
    { what: 'down projection', rows: H, opts: stored(projKind, maxF) },
    { what: 'QKV projection', rows: maxOverLayers(c, (l) => layerQDim(c, l) + 2 * layerKvDim(c, l)), opts: stored(projKind, H) },
    { what: 'POP deep K/V stack', rows: deepKvRows(c, 1), opts: stored(projKind, H, projKind === 'f32' ? 0 : 2 * minKv) },
  ];
  if (c.perLayerInput) {
    const LP = c.numLayers * c.perLayerInput.dim;
    matrices.push({ what: 'per-layer embedding table', rows: c.perLayerInput.vocab, opts: stored(embedKind, LP) });
    matrices.push({ what: 'per-layer input projection', rows: LP, opts: stored(projKind, H) });
  }
  if (ownHead) matrices.push({ what: 'LM head', rows: c.vocabSize, opts: stored(headKind, H) });
  const bindLimit = Math.floor(Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize) / 16) * 16;
  const problems: FitReport['problems'] = [];
  const splits: FitReport['splits'] = [];
  let largestBinding = 'KV cache of one layer', largestBindingBytes = maxOverLayers(c, (l) => layerKvDim(c, l)) * ctx * kvValue;
  if (largestBindingBytes > bindLimit) {
    problems.push({ what: largestBinding, bytes: largestBindingBytes, limitName: 'maxStorageBufferBindingSize', limit: bindLimit, suggestion: 'Use a smaller context window.' });
  }
  for (const m of matrices) {
    if (m.rows <= 0) continue;
    const bytes = storedBytes(m.rows, m.opts.cols, m.opts);
    let binding = bytes;
    if (bytes > bindLimit) {
      const plan = planSplit(m.rows * m.opts.cols, m.opts, bindLimit);
      if (!plan) {
        // Not even one row (one block of column-gain rows) fits a binding: no split helps.
        const unit = gainRowsOf(m.opts);
        problems.push({ what: `${m.what} (${unit > 1 ? `a block of ${unit} rows` : 'one row'})`, bytes: storedBytes(unit, m.opts.cols, m.opts), limitName: 'maxStorageBufferBindingSize', limit: bindLimit, suggestion: 'Choose a smaller model.' });
        continue;
      }
      binding = Math.max(...plan.partRows.map((r) => storedBytes(r, m.opts.cols, m.opts)));
      splits.push({ what: m.what, bytes, parts: plan.partRows.length });
    }
    if (binding > largestBindingBytes) (largestBinding = m.what), (largestBindingBytes = binding);
  }
  if (limits.memoryBytes !== undefined && weightBytes + kvBytes > limits.memoryBytes) {
    problems.push({ what: 'weights + KV cache', bytes: weightBytes + kvBytes, limitName: 'device memory', limit: limits.memoryBytes, suggestion: 'Choose a smaller model, int4 weights or a smaller context window.' });
  }
  if (limits.storageAvailable !== undefined && downloadBytes > limits.storageAvailable) {
    problems.push({ what: 'download', bytes: downloadBytes, limitName: 'free browser storage', limit: limits.storageAvailable, suggestion: 'Delete cached models or free disk space.' });
  }
  return { fits: problems.length === 0, params, downloadBytes, weightBytes, kvBytes, largestBindingBytes, largestBinding, splits, contextWindow: ctx, problems };
}

const gainRowsOf = (o: UploadOptions): number => o.quant?.gains?.rows ?? (typeof o.half === 'object' ? o.half.gains?.rows : undefined) ?? 1;

/** Throws the typed error for the first problem of a report. */
export function assertFits(r: FitReport): void {
  const p = r.problems[0];
  if (!p) return;
  if (p.what === 'download') throw new StorageQuotaError(p.bytes, p.limit);
  throw new ModelTooLargeError(p.what, p.bytes, p.limitName, p.limit, p.suggestion);
}

/** Download size from the index's metadata.total_size, or HEAD requests for each weight file. */
export async function downloadSize(baseUrl: string, index: Record<string, any> | null, fetchImpl: typeof fetch = fetch): Promise<number> {
  const total = index?.metadata?.total_size;
  if (typeof total === 'number') return total;
  const files = index ? [...new Set(Object.values(index.weight_map as Record<string, string>))] : ['model.safetensors'];
  let sum = 0;
  for (const f of files) {
    const res = await fetchImpl(`${baseUrl}/${f}`, { method: 'HEAD' }).catch(() => null);
    sum += Number(res?.headers.get('content-length') ?? 0);
  }
  return sum;
}
