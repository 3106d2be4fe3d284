// Where `pop-llm calibrate` keeps a model's calibration and how a later command finds it
// (read by the session when it loads a model, written by calibrate).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { PopCalibration } from '../../src/engine/pop.ts';

/** Where a model's calibration lives: pop.json in a local folder, else the user cache. */
export function calibrationPath(model: string): string {
  const local = !model.startsWith('random:') && existsSync(model) && statSync(model).isDirectory();
  if (local) return join(resolve(model), 'pop.json');
  const dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'pop-llm', 'pop');
  return join(dir, model.replace(/[^\w.-]+/g, '_') + '.json');
}

/** The cached calibration of a remote or random model, if any (local folders serve their own). */
export function cachedCalibration(model: string): PopCalibration | null {
  const p = calibrationPath(model);
  if (p.endsWith(`${'/'}pop.json`) || !existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8'));
  } catch {
    return null;
  }
}
