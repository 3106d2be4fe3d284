// What the CLI (Node) and its page (cli.html, tools/cli/page.ts) pass each other through
// page.evaluate. Everything here is plain JSON.
import type { PopCalibration, PopSetting } from '../../src/engine/pop.ts';
import type { CalibrationReport } from '../../src/engine/calibrate.ts';
import type { LoadStats } from '../../src/model/stream.ts';
import type { KernelFamilyReport } from '../../src/engine/create.ts';

/** An image the page decodes: an encoded file (base64 bytes), or a test pattern it draws. */
export type ImagePayload =
  | { kind: 'file'; name: string; base64: string }
  | { kind: 'pattern'; width: number; height: number };

export interface CalibrateRequest {
  text: string;
  budget?: number;
  context?: number;
  continuation?: number;
  /** VLMs: image+text samples, image i paired with the i-th part of the text. */
  images?: ImagePayload[];
}
export type CalibrateReply = CalibrationReport;

export interface PopQualityRequest {
  prompts: number[][];
  pops: { setting: PopSetting; label: string }[];
  maxTokens: number;
}
export interface PopQualityRow {
  pop: string;
  keep: number;
  layers: number;
  /** KL(full depth || POP) of the first generated token's distribution, mean and max over prompts. */
  firstTokenKlMean: number;
  firstTokenKlMax: number;
  /** Share of prompts whose first greedy token equals full depth's. */
  firstTokenAgreement: number;
  /** Share of greedy tokens equal to full depth's, position by position. */
  greedyAgreement: number;
}

/** A model as the page loads it: a URL (served or remote) or a random model from a config. */
export type ModelSpec =
  | { kind: 'url'; id: string; url: string }
  /** A local folder read from disk where the engine runs in Node (the Node host); the page fetches folders as URLs instead. */
  | { kind: 'folder'; id: string; path: string }
  | { kind: 'random'; id: string; config: Record<string, unknown>; tokenizerJson: string | null; tokenizerConfigJson: string | null; seed?: number; preprocessorConfig?: Record<string, unknown> | null };

export interface LoadRequest {
  model: ModelSpec;
  /** POP calibration kept outside the model folder (remote and random models). */
  calibration?: PopCalibration | null;
  contextWindow?: number;
  prefillChunk?: number;
  /** int4 weight-only quantization on load (EngineOptions.quantization; default 'none'). */
  quantization?: 'none' | 'q4' | 'q4-asym';
  /** KV cache storage (EngineOptions.kvDtype; default 'auto'). */
  kvDtype?: 'auto' | 'f32' | 'f16';
  /** Also time prefill's kernels at load (GpuEngineOptions.probePrefill; bench sets it, to report them). */
  probePrefill?: boolean;
}

/** Memory of one load (tools/cli/memory.ts). */
export interface LoadMemory {
  /** The engine's BufferPool after load: bytes held (weights + KV cache + scratch) and the peak. */
  gpuBytes: number;
  gpuPeakBytes: number;
  /** Text weights on the GPU (POP's deep K/V and RoPE tables included), and the KV cache. */
  weightBytes: number;
  kvBytes: number;
  /** How the KV cache stores K/V ('f32' or 'f16'). */
  kvDtype: string;
  deepKvBytes: number;
  /** Gemma 4's per-layer embeddings (table, projection, norm); 0 without. */
  pleBytes: number;
  /** The main embedding table. */
  embedBytes: number;
  /** The LM head's own storage: 0 when the head is the embedding itself (tied, stored alike). */
  lmHeadBytes: number;
  /** How the vocabulary tables are stored: 'q4' | 'q4-asym' | 'f16' | 'f32' ('tied' for a head that is the embedding). */
  embedStorage: string;
  lmHeadStorage: string;
  /** Parameters of the text model (from its config) and their f32 bytes. */
  params: number;
  modelBytes: number;
  /**
   * performance.memory.usedJSHeapSize (ArrayBuffers included): before the load (after a GC),
   * its peak during the load (files, conversions, uploads), and after it (after a GC); null
   * where the browser has no performance.memory.
   */
  jsHeapBaseBytes: number | null;
  jsHeapPeakBytes: number | null;
  jsHeapAfterBytes: number | null;
  jsHeapSamples: number;
  /** The loader's own accounting of the streamed load (src/model/stream.ts); null for none. */
  loader: LoadStats | null;
}

export interface ModelInfo {
  layers: number;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  bosTokenId: number | null;
  contextWindow: number;
  hasTokenizer: boolean;
  variants: Record<string, string>;
  adapter: unknown;
  /** The matmul weights' storage ('f32' | 'f16'; q4 layers are q4 either way), f16 arithmetic in use, the adapter's features. */
  weightDtype: string;
  f16Arithmetic: boolean;
  features: Record<string, boolean>;
  /** Each kernel family's choice on this adapter and its candidates' timings (src/engine/create.ts kernelReport). */
  kernels: KernelFamilyReport[];
  /** VLMs: the vision tower and image processor (null for text-only models). */
  vision: { layers: number; hiddenSize: number; imageSize: number; patchSize: number; tokensPerTile: number; imageTokenId: number; longestEdge: number } | null;
  memory: LoadMemory;
}

/** One image+text prompt: `text` holds an `<image>` marker per image (expanded in the page). */
export interface ImagePromptRequest {
  text: string;
  images: ImagePayload[];
  /** Overrides the image processor's size.longest_edge (e.g. 512: one tile per image). */
  longestEdge?: number;
  maxTokens: number;
  pop?: PopSetting;
  /**
   * 'full': images through the tower, then the prompt; 'text': the same prompt with the image
   * tokens swapped for text ids and no images (the prefill alone); 'vision': tower + connector only.
   */
  part?: 'full' | 'text' | 'vision';
}

export interface ImagePromptReply {
  promptTokens: number;
  imageTokens: number;
  tiles: number;
  /** Decode + resize + normalize in the page. */
  preprocessMs: number;
  /** From the call into the engine to the first token (vision tower included for 'full'). */
  ttftMs: number;
  /** The engine's own prefill time (it starts after the images were recorded). */
  prefillMs: number;
  keep: number;
  layers: number;
  ids: number[];
}

export interface GenerateRequest {
  promptIds?: number[];
  prompt?: string;
  maxTokens: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  pop?: PopSetting;
  ignoreEos?: boolean;
  /** VLMs: the user turn's images, before the prompt text (rendered with the model's chat template when it has one). */
  images?: ImagePayload[];
  /** Call window.__popCliToken(id, textDelta) for every token. */
  stream?: boolean;
}

export interface GenerateReply {
  promptIds: number[];
  ids: number[];
  text: string | null;
  /** With stream: the text the streamer still held back at the end. */
  streamTail: string | null;
  prefillMs: number;
  decodeMs: number;
  ttftMs: number;
  prefillTokensPerS: number;
  decodeTokensPerS: number;
  keep: number;
  keepReason: string;
  layers: number;
  finishReason: string;
}

export interface GemmShape {
  m: number;
  n: number;
  k: number;
}

export interface GemmReply {
  variant: string;
  /** Per shape: time per dispatch and the rate, from a batch of dispatches in one submission. */
  results: (GemmShape & { ms: number; gflops: number })[];
}

export interface CliErrorInfo {
  code: string;
  message: string;
  fields?: Record<string, unknown>;
}

export type Reply<T> = { ok: T } | { error: CliErrorInfo };

/** Where the engine runs (tools/cli/session.ts): calls of the CLI page's API (tools/cli/page.ts), local folders, tokens. */
export interface EngineLink {
  call<T>(fn: string, arg: unknown, arg2?: unknown): Promise<Reply<T>>;
  /** A local model folder as this host's engine reads it. */
  folder(dir: string): ModelSpec;
  /** Receives every streamed token (set once by the Session). */
  onToken: ((id: number, text: string) => void) | null;
  close(): Promise<void>;
}
