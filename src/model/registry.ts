// model_type -> family spec. Adding a family is one file plus one line here.
import { UnsupportedModelTypeError } from '../errors.ts';
import type { FamilySpec } from './family.ts';
import { llama } from './families/llama.ts';

const FAMILIES: readonly FamilySpec[] = [llama];

export function familyFor(modelType: string | undefined): FamilySpec {
  const spec = FAMILIES.find((f) => f.modelTypes.includes(modelType ?? ''));
  if (!spec) throw new UnsupportedModelTypeError(String(modelType), FAMILIES.flatMap((f) => f.modelTypes));
  return spec;
}
