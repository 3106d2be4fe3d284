// Random-weight Idefics3 / SmolVLM fixtures: scales a real config down (text via scaleConfig,
// vision tower, scale factor, image token id) and adds a scaled preprocessor_config.json.
// The tensors come from randomModelFiles through the family's extraTensors (vision + connector).
import { randomModelFiles, scaleConfig, type RandomModelOptions } from '../model/random_model.ts';

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

/** Model files plus preprocessor_config.json (the real one, tile and longest edge scaled). */
export function randomVlmFiles(rawConfig: Record<string, any>, preprocessor: Record<string, any>, o: RandomModelOptions = {}): Map<string, Uint8Array> {
  const files = randomModelFiles(rawConfig, o);
  const v = rawConfig.vision_config;
  const pre = { ...preprocessor, max_image_size: { longest_edge: v.image_size }, size: { longest_edge: v.size?.longest_edge ?? 4 * v.image_size } };
  files.set('preprocessor_config.json', new TextEncoder().encode(JSON.stringify(pre, null, 2)));
  return files;
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
    if (next >= vocabSize) throw new Error(`no free token id below ${vocabSize} for Idefics3's special tokens`);
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

/** A deterministic RGBA test pattern (gradients + a checker), for benchmarks and tests. */
export function patternImage(width: number, height: number): { width: number; height: number; data: Uint8ClampedArray } {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      data[i] = (x * 255) / width;
      data[i + 1] = (y * 255) / height;
      data[i + 2] = ((x >> 4) + (y >> 4)) % 2 ? 220 : 30;
      data[i + 3] = 255;
    }
  return { width, height, data };
}
