// "Will it fit?" before any shard is fetched: from config.json and the file sizes alone
// (the index's total_size, or HEAD requests), estimate the device bytes of the weights (f32
// after conversion, or f16 / int4 as `WeightFormat` says), the KV cache at the requested
// context, and the largest single binding, and compare them with the adapter's limits and the
// browser's free storage.
import { ModelTooLargeError, StorageQuotaError } from '../errors.ts';
import { kvDim, qDim, type ModelConfig } from './config.ts';
import type { VisionConfig } from '../vision/config.ts';
import { familyFor } from './registry.ts';

export interface FitLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  /** Free browser storage in bytes (quota - usage), when known. */
  storageAvailable?: number;
}

export interface FitReport {
  fits: boolean;
  params: number;
  downloadBytes: number;
  weightBytes: number;
  kvBytes: number;
  largestBindingBytes: number;
  largestBinding: string;
  contextWindow: number;
  problems: { what: string; bytes: number; limitName: string; limit: number; suggestion: string }[];
}

/** How the engine will store the weights (EngineOptions; 'auto' resolved by the caller). Default: f32. */
export interface WeightFormat {
  weightDtype?: 'f32' | 'f16';
  quantization?: 'none' | 'q4' | 'q4-asym';
  quantizeLmHead?: boolean;
}

/** Device bytes per weight of a matmul weight: q4 nibbles + f32 group-32 scale (+ offset when asymmetric), f16, f32. */
function bytesPerWeight(kind: 'q4' | 'q4-asym' | 'f16' | 'f32'): number {
  return kind === 'q4' ? 0.5 + 4 / 32 : kind === 'q4-asym' ? 0.5 + 8 / 32 : kind === 'f16' ? 2 : 4;
}

/** Parameter count of the weights the engine keeps (POP's stacked deep K/V and a VLM's tower included). */
export function paramCount(c: ModelConfig): number {
  const H = c.hiddenSize, F = c.intermediateSize, Q = qDim(c), KV = kvDim(c);
  const perLayer = H * (Q + 2 * KV) + Q * H + 3 * H * F + 4 * H;
  const head = c.tieWordEmbeddings ? 0 : c.vocabSize * H;
  const deepKv = (c.numLayers - 1) * 2 * KV * H;
  return c.vocabSize * H + head + c.numLayers * perLayer + deepKv + (c.vision ? visionParamCount(c.vision) : 0);
}

/** Parameters of a VLM's SigLIP tower and connector (stored f32 whatever the text weights' format). */
export function visionParamCount(v: VisionConfig): number {
  const D = v.hiddenSize, F = v.intermediateSize, patches = (v.imageSize / v.patchSize) ** 2;
  const layer = 4 * (D * D + D) + 2 * D * F + F + D + 4 * D; // q, k, v, o (+bias), fc1, fc2 (+bias), 2 LayerNorms
  const cn = v.connector;
  const connector = cn.kind === 'pixel_shuffle' ? v.textHidden * D * cn.scaleFactor ** 2 : D * v.textHidden + D;
  return D * v.numChannels * v.patchSize ** 2 + D + patches * D + v.numLayers * layer + 2 * D + connector;
}

export function estimateFit(rawConfig: Record<string, any>, downloadBytes: number, contextWindow: number | undefined, limits: FitLimits, format: WeightFormat = {}): FitReport {
  const c = familyFor(rawConfig.model_type).normalize(rawConfig);
  const ctx = contextWindow ?? Math.min(c.maxPositionEmbeddings, 4096);
  const params = paramCount(c);
  // Embeddings, norms and biases stay f32; projections and POP's deep K/V take the quantization
  // (else weightDtype); the LM head too when asked (a tied one then gets its own copy).
  const quant = format.quantization ?? 'none';
  const proj = bytesPerWeight(quant !== 'none' ? quant : format.weightDtype ?? 'f32');
  const headKind = quant !== 'none' && format.quantizeLmHead ? quant : format.weightDtype ?? 'f32';
  const head = bytesPerWeight(headKind);
  const H = c.hiddenSize, embed = c.vocabSize * H;
  const projParams = c.numLayers * (H * (qDim(c) + 2 * kvDim(c)) + qDim(c) * H + 3 * H * c.intermediateSize) + (c.numLayers - 1) * 2 * kvDim(c) * H;
  const headBytes = c.tieWordEmbeddings ? (headKind === 'f32' ? 0 : embed * head) : embed * head;
  const gains = proj !== 4 ? (c.numLayers - 1) * H * 4 : 0;
  const weightBytes = Math.round((params - projParams - (c.tieWordEmbeddings ? 0 : embed)) * 4 + projParams * proj + headBytes + gains);
  const kvBytes = c.numLayers * 2 * kvDim(c) * ctx * 4;
  const bindings: [string, number][] = [
    ['embedding table', c.vocabSize * c.hiddenSize * 4],
    ['gate|up projection', 2 * c.intermediateSize * c.hiddenSize * proj],
    ['POP deep K/V stack', (c.numLayers - 1) * 2 * kvDim(c) * c.hiddenSize * proj],
    ['LM head', c.tieWordEmbeddings && headKind === 'f32' ? 0 : embed * head],
    ['KV cache of one layer', kvBytes / (2 * c.numLayers)],
  ];
  const [largestBinding, largestBindingBytes] = bindings.reduce((a, b) => (b[1] > a[1] ? b : a));
  const problems: FitReport['problems'] = [];
  const bindLimit = Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize);
  if (largestBindingBytes > bindLimit) {
    problems.push({ what: largestBinding, bytes: largestBindingBytes, limitName: 'maxStorageBufferBindingSize', limit: bindLimit, suggestion: largestBinding.startsWith('KV') ? 'Use a smaller context window.' : 'Choose a smaller model.' });
  }
  if (limits.storageAvailable !== undefined && downloadBytes > limits.storageAvailable) {
    problems.push({ what: 'download', bytes: downloadBytes, limitName: 'free browser storage', limit: limits.storageAvailable, suggestion: 'Delete cached models or free disk space.' });
  }
  return { fits: problems.length === 0, params, downloadBytes, weightBytes, kvBytes, largestBindingBytes, largestBinding, contextWindow: ctx, problems };
}

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
