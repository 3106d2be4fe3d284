// model_type -> family spec. Adding a family is one file plus one line here.
import { UnsupportedModelTypeError } from '../errors.ts';
import type { FamilySpec } from './family.ts';
import { llama } from './families/llama.ts';
import { qwen2 } from './families/qwen2.ts';
import { qwen3 } from './families/qwen3.ts';
import { gemma3Text } from './families/gemma3.ts';
import { idefics3 } from './families/idefics3.ts';
import { gemma3 } from './families/gemma3_vlm.ts';
import { gemma4, gemma4Text } from './families/gemma4.ts';
import { qwen3Vl } from './families/qwen3_vl.ts';

const FAMILIES: readonly FamilySpec[] = [llama, qwen2, qwen3, gemma3Text, idefics3, gemma3, qwen3Vl, gemma4Text, gemma4];

export function familyFor(modelType: string | undefined): FamilySpec {
  const spec = FAMILIES.find((f) => f.modelTypes.includes(modelType ?? ''));
  if (!spec) throw new UnsupportedModelTypeError(String(modelType), FAMILIES.flatMap((f) => f.modelTypes));
  return spec;
}
