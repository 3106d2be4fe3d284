// Which `keep` a request runs with. POP settings: 'off' (full depth), 'exact' (keep = L-1,
// lossless: a last layer's outputs for prompt tokens feed nothing but their own logits),
// 'auto' (the calibrated keep from pop.json, else exact), a layer count, or a ratio.
import { InvalidArgumentError } from '../errors.ts';

export type PopSetting = 'off' | 'exact' | 'auto' | number | { ratio: number };

export interface PopCalibration {
  /** Recommended keep for the loss budget it was calibrated with. */
  keep: number;
  layers: number;
  budget?: number;
}

/** No setting means 'exact': lossless, and it skips one layer of prefill. */
export const DEFAULT_POP: PopSetting = 'exact';

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
