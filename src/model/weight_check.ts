// NaN / Inf in a checkpoint: a corrupt export or a bad download that still parses. Such a
// model loads and then answers every request with empty text, so the loaders scan each row
// range once, on the host, right after it is converted to f32 and before it is uploaded
// (one pass over values already in cache). MALFORMED_WEIGHTS names the tensor and its file.
// `EngineOptions.checkWeights: false` skips the scan for trusted sources; `npm run bench`
// reports what it costs.
import { MalformedWeightsError } from '../errors.ts';
import type { LoadAccount } from './stream.ts';

/**
 * Throws MalformedWeightsError if `data` holds a NaN or an infinity. `offset`: the index of
 * data[0] within the whole tensor (row ranges), so the error points at the element.
 */
export function assertFinite(tensor: string, file: string, data: Float32Array, offset = 0, account?: LoadAccount | null): void {
  const t0 = performance.now();
  // x - x is 0 for every finite x and NaN for NaN and +-Inf: one subtraction and compare per value.
  let bad = -1;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) {
      bad = i;
      break;
    }
  }
  account?.checked(data.length, performance.now() - t0);
  if (bad < 0) return;
  let nan = 0, inf = 0;
  for (let i = bad; i < data.length; i++) {
    const v = data[i];
    if (v !== v) nan++;
    else if (v === Infinity || v === -Infinity) inf++;
  }
  throw new MalformedWeightsError(tensor, file, nan, inf, offset + bad);
}
