// `pop-llm calibrate`: stage-aware importance per layer (virtual gates) and the recommended
// keep for a loss budget. The recommendation goes to pop.json beside a local model (the
// engine reads it there), or to the user cache for remote and random models.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { InvalidArgumentError, ModelFileMissingError } from '../../src/errors.ts';
import type { PopCalibration } from '../../src/engine/pop.ts';
import { checkKnown, num, type ParsedArgs } from './args.ts';
import { calibrationPath } from './calibration_file.ts';
import { DEFAULT_MODEL } from './generate.ts';
import type { ImagePayload } from './protocol.ts';
import type { Session } from './session.ts';

export const CALIBRATE_OPTIONS = ['model', 'text', 'image', 'budget', 'context', 'continuation', 'json', 'help', 'host'];

export interface CalibrateCommand {
  model: string;
  text: string;
  /** --image FILE (repeatable): image+text samples, image i with the i-th part of the text. */
  images: ImagePayload[];
  budget?: number;
  context?: number;
  continuation?: number;
  json: boolean;
}

export function parseCalibrate(p: ParsedArgs): CalibrateCommand {
  checkKnown(p, CALIBRATE_OPTIONS);
  const file = p.values.get('text');
  if (!file) throw new InvalidArgumentError('--text', 'give the calibration text file: --text FILE');
  if (!existsSync(file)) throw new ModelFileMissingError(file);
  return {
    model: p.values.get('model') ?? DEFAULT_MODEL,
    text: readFileSync(file, 'utf8'),
    images: (p.lists.get('image') ?? []).map((f) => {
      if (!existsSync(f) || !statSync(f).isFile()) throw new ModelFileMissingError(f);
      return { kind: 'file' as const, name: basename(f), base64: readFileSync(f).toString('base64') };
    }),
    budget: num(p, 'budget', { min: 0 }),
    context: num(p, 'context', { integer: true, min: 2 }),
    continuation: num(p, 'continuation', { integer: true, min: 1 }),
    json: p.flags.has('json'),
  };
}

const r4 = (x: number) => Math.round(x * 1e4) / 1e4;

export async function runCalibrate(s: Session, c: CalibrateCommand): Promise<void> {
  await s.load({ arg: c.model, model: s.modelSpec(c.model) });
  const report = await s.calibrate({ text: c.text, images: c.images.length ? c.images : undefined, budget: c.budget, context: c.context, continuation: c.continuation });
  const path = calibrationPath(c.model);
  const saved: PopCalibration & Record<string, unknown> = {
    keep: report.keep, layers: report.layers, budget: report.budget,
    baseLoss: report.baseLoss, popLoss: report.popLoss, created: new Date().toISOString(),
    ...(report.imageSamples ? { imageSamples: report.imageSamples } : {}),
  };
  mkdirSync(resolve(path, '..'), { recursive: true });
  writeFileSync(path, JSON.stringify(saved, null, 2) + '\n');
  const layers = report.prefillImportance.map((p, l) => ({ layer: l, prefill_importance: r4(p), decode_importance: r4(report.decodeImportance[l]) }));
  if (c.json) {
    process.stdout.write(JSON.stringify({
      model: c.model, layers, base_loss: r4(report.baseLoss), budget: report.budget,
      pop_loss: report.popLoss.map((p) => ({ keep: p.keep, loss: r4(p.loss), delta: r4(p.delta) })),
      recommended_keep: report.keep, num_layers: report.layers, samples: report.samples, image_samples: report.imageSamples,
      context_tokens: report.contextTokens, predicted_tokens: report.predictedTokens, written: path,
    }) + '\n');
    return;
  }
  process.stdout.write(`layer  prefill-importance  decode-importance\n`);
  for (const l of layers) process.stdout.write(`${String(l.layer).padStart(5)}  ${l.prefill_importance.toFixed(4).padStart(18)}  ${l.decode_importance.toFixed(4).padStart(17)}\n`);
  process.stdout.write(`base loss ${r4(report.baseLoss)} nats; POP loss rise by keep: ${report.popLoss.map((p) => `${p.keep}:${r4(p.delta)}`).join(' ')}\n`);
  if (report.imageSamples) process.stdout.write(`${report.imageSamples} of ${report.samples} samples carry an image\n`);
  process.stdout.write(`recommended keep ${report.keep}/${report.layers} for a budget of ${report.budget} nats -> ${path}\n`);
}
