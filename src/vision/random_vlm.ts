// Random-weight VLM fixtures: scales a real config down (text via scaleConfig, vision tower,
// connector, image token ids) and adds a preprocessor_config.json at the scaled image size.
// Idefics3 / SmolVLM, Gemma 3 and Qwen3-VL. The tensors come from randomModelFiles through the family's
// extraTensors (vision + connector); tokenizers get the family's special tokens added.
import { randomModelFiles, scaleConfig, type RandomModelOptions } from '../model/random_model.ts';
import { GEMMA3_BOI_TOKEN, GEMMA3_EOI_TOKEN, GEMMA3_IMAGE_TOKEN } from './prompt.ts';
import { InternalError } from '../errors.ts';

export interface VlmScale {
  text: Parameters<typeof scaleConfig>[1];
  vision: { hidden: number; layers: number; heads: number; inter: number; imageSize: number; patch: number };
  scaleFactor: number;
  imageTokenId: number;
  /** Longest edge images are first resized to (default 2 tiles). */
  longestEdge?: number;
}

export function scaleIdefics3Config(raw: Record<string, any>, s: VlmScale): Record<string, any> {
  const out = structuredClone(raw);
  out.text_config = scaleConfig(raw.text_config, s.text);
  if (s.text.vocab !== undefined) out.vocab_size = s.text.vocab;
  const v = out.vision_config;
  Object.assign(v, { hidden_size: s.vision.hidden, num_hidden_layers: s.vision.layers, num_attention_heads: s.vision.heads, intermediate_size: s.vision.inter, image_size: s.vision.imageSize, patch_size: s.vision.patch });
  v.max_image_size = { longest_edge: s.vision.imageSize };
  v.size = { longest_edge: s.longestEdge ?? 2 * s.vision.imageSize };
  out.scale_factor = s.scaleFactor;
  out.image_token_id = s.imageTokenId;
  return out;
}

export interface Gemma3Scale {
  /** Text scale; headDim is needed (gemma-3-4b's text_config leaves head_dim to its default 256). */
  text: Parameters<typeof scaleConfig>[1] & { headDim: number };
  /** Per-layer 'sliding_attention' | 'full_attention' (one of each at least, to cover both RoPEs). */
  layerTypes: string[];
  slidingWindow: number;
  vision: { hidden: number; layers: number; heads: number; inter: number; imageSize: number; patch: number };
  /** mm_tokens_per_image (a square). */
  tokensPerImage: number;
  /** Ids of `<image_soft_token>`, `<start_of_image>`, `<end_of_image>` (below the vocab). */
  imageTokenId: number;
  boiTokenId: number;
  eoiTokenId: number;
}

/** Gemma 3 scaled down: the real wrapper (rope_scaling, defaults for absent keys) at a tiny shape. */
export function scaleGemma3Config(raw: Record<string, any>, s: Gemma3Scale): Record<string, any> {
  const out = structuredClone(raw);
  out.text_config = { ...scaleConfig(raw.text_config, s.text), layer_types: s.layerTypes, sliding_window: s.slidingWindow };
  Object.assign(out.vision_config, { hidden_size: s.vision.hidden, num_hidden_layers: s.vision.layers, num_attention_heads: s.vision.heads, intermediate_size: s.vision.inter, image_size: s.vision.imageSize, patch_size: s.vision.patch });
  Object.assign(out, { mm_tokens_per_image: s.tokensPerImage, image_token_index: s.imageTokenId, boi_token_index: s.boiTokenId, eoi_token_index: s.eoiTokenId });
  return out;
}

/** Gemma 3's preprocessor_config.json (Gemma3ImageProcessor as published: bilinear, 0.5 mean/std, no pan-and-scan) at a tower size. */
export function gemma3PreprocessorConfig(imageSize: number, tokensPerImage: number): Record<string, any> {
  return {
    image_processor_type: 'Gemma3ImageProcessor', processor_class: 'Gemma3Processor',
    do_convert_rgb: null, do_normalize: true, do_pan_and_scan: null, do_rescale: true, do_resize: true,
    image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], image_seq_length: tokensPerImage,
    resample: 2, rescale_factor: 1 / 255, size: { height: imageSize, width: imageSize },
  };
}

export interface Qwen3VlScale {
  /** Text scale; headDim sets mrope_section (scaled from the real one to head_dim / 2). */
  text: Parameters<typeof scaleConfig>[1] & { headDim: number };
  vision: { hidden: number; layers: number; heads: number; inter: number; patch: number; positions: number; deepstack: number[] };
  /** Ids of <|image_pad|>, <|vision_start|>, <|vision_end|> (below the vocab). */
  imageTokenId: number;
  visionStartId: number;
  visionEndId: number;
}

/** Qwen3-VL scaled down: the real structure (M-RoPE interleaved, DeepStack taps, tied head) at a tiny shape. */
export function scaleQwen3VlConfig(raw: Record<string, any>, s: Qwen3VlScale): Record<string, any> {
  const out = structuredClone(raw);
  const text: Record<string, any> = { ...scaleConfig(raw.text_config, s.text), head_dim: s.text.headDim };
  const real: number[] = raw.text_config.rope_scaling.mrope_section, half = s.text.headDim / 2, total = real.reduce((a, b) => a + b, 0);
  const section = real.map((x) => Math.round((x * half) / total));
  section[0] += half - section.reduce((a, b) => a + b, 0);
  text.rope_scaling = { ...raw.text_config.rope_scaling, mrope_section: section };
  out.text_config = text;
  Object.assign(out.vision_config, {
    hidden_size: s.vision.hidden, depth: s.vision.layers, num_heads: s.vision.heads, intermediate_size: s.vision.inter, patch_size: s.vision.patch,
    num_position_embeddings: s.vision.positions, deepstack_visual_indexes: s.vision.deepstack, out_hidden_size: s.text.hidden,
  });
  Object.assign(out, { image_token_id: s.imageTokenId, vision_start_token_id: s.visionStartId, vision_end_token_id: s.visionEndId, video_token_id: s.visionEndId + 1 });
  return out;
}

/** Qwen3-VL's preprocessor_config.json as published (Qwen2VLImageProcessorFast, 0.5 mean/std, 256^2..4096^2 pixels) at a tower's patch sizes. */
export function qwen3VlPreprocessorConfig(patch: number, merge: number, temporal: number): Record<string, any> {
  return {
    image_processor_type: 'Qwen2VLImageProcessorFast', processor_class: 'Qwen3VLProcessor',
    size: { shortest_edge: 65536, longest_edge: 16777216 }, patch_size: patch, merge_size: merge, temporal_patch_size: temporal,
    image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], do_rescale: true, do_normalize: true, do_resize: true,
  };
}

/** A Qwen3-VL-style chat template (ChatML turns; an image item is <|vision_start|><|image_pad|><|vision_end|>), for tokenizers that lack one. */
export const QWEN3_VL_CHAT_TEMPLATE = [
  "{% for m in messages %}<|im_start|>{{ m['role'] }}\n",
  "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for item in m['content'] %}",
  "{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}",
  "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
].join('');

/** Qwen3-VL's vision and turn tokens at the given ids. */
export function withQwen3VlTokens(tokenizerJson: string, ids: { imageTokenId: number; visionStartId: number; visionEndId: number; imStartId: number; imEndId: number }): string {
  return withSpecialTokens(tokenizerJson, [
    { content: '<|image_pad|>', id: ids.imageTokenId }, { content: '<|vision_start|>', id: ids.visionStartId }, { content: '<|vision_end|>', id: ids.visionEndId },
    { content: '<|im_start|>', id: ids.imStartId }, { content: '<|im_end|>', id: ids.imEndId },
  ]);
}

/**
 * Model files plus preprocessor_config.json: Idefics3's real one with tile and longest edge
 * scaled; Gemma 3's given one (or the published settings) at the scaled image size.
 */
export function randomVlmFiles(rawConfig: Record<string, any>, preprocessor: Record<string, any>, o: RandomModelOptions = {}): Map<string, Uint8Array> {
  const files = randomModelFiles(rawConfig, o);
  files.set('preprocessor_config.json', randomVlmPreprocessor(rawConfig, preprocessor));
  return files;
}

/** The preprocessor_config.json of a random VLM (see randomVlmFiles); randomModelSource takes it as an extra file. */
export function randomVlmPreprocessor(rawConfig: Record<string, any>, preprocessor: Record<string, any>): Uint8Array {
  const v = rawConfig.vision_config;
  if (rawConfig.model_type === 'qwen3_vl') {
    const pre = { ...qwen3VlPreprocessorConfig(v.patch_size ?? 16, v.spatial_merge_size ?? 2, v.temporal_patch_size ?? 2), ...preprocessor };
    return new TextEncoder().encode(JSON.stringify(pre, null, 2));
  }
  const pre = rawConfig.model_type === 'gemma3'
    ? { ...gemma3PreprocessorConfig(v.image_size, rawConfig.mm_tokens_per_image ?? 256), ...preprocessor, size: { height: v.image_size, width: v.image_size } }
    : { ...preprocessor, max_image_size: { longest_edge: v.image_size }, size: { longest_edge: v.size?.longest_edge ?? 4 * v.image_size } };
  return new TextEncoder().encode(JSON.stringify(pre, null, 2));
}

/** Idefics3 / SmolVLM's special tokens besides `<image>`: the global view, tile positions (6 x 6), the wrapper, the turn end. */
export function idefics3SpecialTokens(): string[] {
  const out = ['<global-img>'];
  for (let r = 1; r <= 6; r++) for (let c = 1; c <= 6; c++) out.push(`<row_${r}_col_${c}>`);
  out.push('<fake_token_around_image>', '<end_of_utterance>');
  return out;
}

/**
 * A tokenizer.json (text, e.g. SmolLM2's) with Idefics3's special tokens added, so that a
 * random VLM can tokenize expanded image prompts. `<image>` goes to `imageTokenId`; the others
 * take SmolVLM's ids (image-38 .. image-1 for the global view, tiles and wrapper; vocab-1 for
 * `<end_of_utterance>`) when those are free, else the lowest free ids below `vocabSize`.
 * Tokens the tokenizer already has are left alone.
 */
export function withIdefics3Tokens(tokenizerJson: string, imageTokenId: number, vocabSize: number): string {
  const tok = JSON.parse(tokenizerJson);
  const added: { id: number; content: string }[] = tok.added_tokens ?? [];
  const used = new Set<number>([...Object.values((tok.model?.vocab ?? {}) as Record<string, number>), ...added.map((t) => t.id)]);
  const have = new Set(added.map((t) => t.content));
  const want: [string, number | null][] = [['<image>', imageTokenId]];
  const rest = idefics3SpecialTokens();
  rest.forEach((content, i) => want.push([content, content === '<end_of_utterance>' ? vocabSize - 1 : imageTokenId - (rest.length - 1) + i]));
  const smolFree = want.every(([c, id]) => have.has(c) || (id !== null && id >= 0 && id < vocabSize && !used.has(id)));
  let next = 0;
  const free = () => {
    while (used.has(next) || next === imageTokenId) next++;
    if (next >= vocabSize) throw new InternalError(`no free token id below ${vocabSize} for Idefics3's special tokens`);
    return next;
  };
  for (const [content, id] of want) {
    if (have.has(content)) continue;
    const at = content === '<image>' || smolFree ? id! : free();
    used.add(at);
    added.push({ id: at, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true } as { id: number; content: string });
  }
  tok.added_tokens = added;
  return JSON.stringify(tok);
}

/** Adds special tokens at given ids to a tokenizer.json (tokens it already has are left alone). */
export function withSpecialTokens(tokenizerJson: string, tokens: readonly { content: string; id: number }[]): string {
  const tok = JSON.parse(tokenizerJson);
  const added: { id: number; content: string }[] = tok.added_tokens ?? [];
  const used = new Set<number>([...Object.values((tok.model?.vocab ?? {}) as Record<string, number>), ...added.map((t) => t.id)]);
  const have = new Set(added.map((t) => t.content));
  for (const t of tokens) {
    if (have.has(t.content)) continue;
    if (used.has(t.id)) throw new InternalError(`token id ${t.id} for ${t.content} is taken`);
    used.add(t.id);
    added.push({ id: t.id, content: t.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true } as { id: number; content: string });
  }
  tok.added_tokens = added;
  return JSON.stringify(tok);
}

/**
 * A Gemma-3-style chat template (the published one's structure: bos, `<start_of_turn>role`,
 * the assistant as `model`, an image item as `<start_of_image>`, trimmed text, `<end_of_turn>`),
 * for tokenizers that lack one (random fixtures). The system prompt goes before the first user turn.
 */
export const GEMMA3_CHAT_TEMPLATE = [
  "{{ bos_token }}{% set sys = '' %}{% set msgs = messages %}",
  "{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] if messages[0]['content'] is string else messages[0]['content'][0]['text'] %}{% set sys = sys + '\n\n' %}{% set msgs = messages[1:] %}{% endif %}",
  "{% for m in msgs %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ sys if loop.first else '' }}",
  "{% if m['content'] is string %}{{ m['content'] | trim }}{% else %}{% for item in m['content'] %}",
  "{% if item['type'] == 'image' %}<start_of_image>{% elif item['type'] == 'text' %}{{ item['text'] | trim }}{% endif %}",
  "{% endfor %}{% endif %}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}",
].join('');

/** Gemma 3's three image special tokens at the given ids, and its turn tokens when ids are given for them. */
export function withGemma3Tokens(tokenizerJson: string, ids: { imageTokenId: number; boiTokenId: number; eoiTokenId: number; startOfTurnId?: number; endOfTurnId?: number }): string {
  const tokens = [
    { content: GEMMA3_IMAGE_TOKEN, id: ids.imageTokenId },
    { content: GEMMA3_BOI_TOKEN, id: ids.boiTokenId },
    { content: GEMMA3_EOI_TOKEN, id: ids.eoiTokenId },
  ];
  if (ids.startOfTurnId !== undefined) tokens.push({ content: '<start_of_turn>', id: ids.startOfTurnId });
  if (ids.endOfTurnId !== undefined) tokens.push({ content: '<end_of_turn>', id: ids.endOfTurnId });
  return withSpecialTokens(tokenizerJson, tokens);
}

/** A deterministic RGBA test pattern (gradients + a checker of `checker` px squares, optionally varying alpha), for benchmarks and tests. */
export function patternImage(width: number, height: number, o: { checker?: number; alpha?: boolean } = {}): { width: number; height: number; data: Uint8ClampedArray } {
  const data = new Uint8ClampedArray(width * height * 4);
  const cell = o.checker ?? 16;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      data[i] = (x * 255) / width;
      data[i + 1] = (y * 255) / height;
      data[i + 2] = (Math.floor(x / cell) + Math.floor(y / cell)) % 2 ? 220 : 30;
      data[i + 3] = o.alpha ? 128 + ((x + y) % 128) : 255;
    }
  return { width, height, data };
}
