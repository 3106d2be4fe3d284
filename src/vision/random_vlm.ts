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
