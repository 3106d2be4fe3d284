// Which `keep` a request runs with. POP settings: 'off' (full depth), 'exact' (keep = L-1,
// lossless: a last layer's outputs for prompt tokens feed nothing but their own logits),
// 'auto' (the calibrated keep from pop.json, else exact), a layer count, or a ratio.
import { InvalidArgumentError } from '../errors.ts';
import { isKvShared, type ModelConfig } from '../model/config.ts';

export type PopSetting = 'off' | 'exact' | 'auto' | number | { ratio: number };

export interface PopCalibration {
  /** Recommended keep for the loss budget it was calibrated with. */
  keep: number;
  layers: number;
  budget?: number;
}

/** No setting means 'exact': lossless, and it skips one layer of prefill. */
export const DEFAULT_POP: PopSetting = 'exact';

/** The keep a request runs with and why: 'off', 'exact' (lossless), 'auto' (calibrated or exact), or as given. */
export interface KeepChoice {
  keep: number;
  reason: string;
}

/**
 * The smallest lossless keep: the last layer that has K/V of its own. With keep = k, layer k
 * gets its prompt rows' K/V projected from its own input (exact); layers after it must not
 * need any: true of the last layer (keep = L-1), and of Gemma 4's KV-shared layers, which
 * only read the K/V of earlier layers. So with the last S layers shared, keep = L-S-1 is
 * lossless (E2B: 14 of 35 layers prefill, layer 14's K/V projected, layers 15.. skipped).
 */
export function losslessKeep(c: ModelConfig): { keep: number; reason: string } {
  const L = c.numLayers;
  let last = L - 1;
  while (last > 1 && isKvShared(c, last)) last--;
  if (last === L - 1) return { keep: Math.max(1, L - 1), reason: 'exact: keep = L-1 (the last layer\'s prompt outputs feed nothing)' };
  return { keep: last, reason: `exact: layers ${last + 1}..${L - 1} are KV-shared (they read earlier layers' K/V), so prefill stops at the last layer with its own K/V (${last}), whose K/V is projected from its input` };
}

/** resolveKeep with the reason; `lossless` is the model's smallest lossless keep (default L-1). */
export function resolveKeepWithReason(setting: PopSetting | undefined, layers: number, calibrated: PopCalibration | null, lossless?: { keep: number; reason: string }): KeepChoice {
  const exact = lossless ?? { keep: Math.max(1, layers - 1), reason: 'exact: keep = L-1 (the last layer\'s prompt outputs feed nothing)' };
  const s = setting ?? DEFAULT_POP;
  if (s === 'off') return { keep: layers, reason: 'off: full depth' };
  if (s === 'exact') return exact;
  if (s === 'auto') {
    if (calibrated && calibrated.layers === layers) return { keep: clampKeep(calibrated.keep, layers), reason: `auto: calibrated keep from pop.json${calibrated.budget !== undefined ? ` (budget ${calibrated.budget} nats)` : ''}` };
    return { ...exact, reason: `auto without a calibration -> ${exact.reason}` };
  }
  const keep = resolveKeep(s, layers, calibrated);
  return { keep, reason: typeof s === 'number' ? `keep ${s} as asked` : `ratio ${(s as { ratio: number }).ratio} of ${layers} layers` };
}

export function resolveKeep(setting: PopSetting | undefined, layers: number, calibrated: PopCalibration | null): number {
  const s = setting ?? DEFAULT_POP;
  if (s === 'off') return layers;
  if (s === 'exact') return Math.max(1, layers - 1);
  if (s === 'auto') return calibrated && calibrated.layers === layers ? clampKeep(calibrated.keep, layers) : Math.max(1, layers - 1);
  if (typeof s === 'number') {
    if (!Number.isInteger(s) || s < 1 || s > layers) throw new InvalidArgumentError('pop', `keep must be an integer in 1..${layers} (got ${s})`);
    return s;
  }
  if (typeof s === 'object' && typeof s.ratio === 'number') {
    if (!(s.ratio > 0 && s.ratio <= 1)) throw new InvalidArgumentError('pop ratio', `must be in (0, 1] (got ${s.ratio})`);
    return clampKeep(Math.ceil(s.ratio * layers), layers);
  }
  throw new InvalidArgumentError('pop', `expected off, exact, auto, a keep in 1..${layers} or {ratio} (got ${JSON.stringify(s)})`);
}

function clampKeep(k: number, layers: number): number {
  return Math.max(1, Math.min(layers, k));
}

/** Parses a CLI/API string: off | exact | auto | <keep> | <ratio in (0,1)> | <a/b>. */
export function parsePopSetting(s: string): PopSetting {
  if (s === 'off' || s === 'exact' || s === 'auto') return s;
  // A fraction such as 2/3 (keep = ceil(2/3 · L), exactly 20 of 30 layers).
  const frac = /^(\d+)\/(\d+)$/.exec(s);
  if (frac && Number(frac[2]) > 0) return { ratio: Number(frac[1]) / Number(frac[2]) };
  const v = Number(s);
  if (!Number.isFinite(v)) throw new InvalidArgumentError('pop', `expected off, exact, auto, a keep or a ratio (got '${s}')`);
  return Number.isInteger(v) && v >= 1 ? v : { ratio: v };
}
