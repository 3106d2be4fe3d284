// Command-line parsing for pop-llm: `--key value`, `--key=value` and boolean flags.
// Bad arguments become InvalidArgumentError, so they print with a code like every other error.
import { InvalidArgumentError } from '../../src/errors.ts';
import { parsePopSetting, type PopSetting } from '../../src/engine/pop.ts';

export interface ParsedArgs {
  command: string | null;
  values: Map<string, string>;
  /** Every value of each option, in order (repeatable options such as --image). */
  lists: Map<string, string[]>;
  flags: Set<string>;
  positionals: string[];
}

export function parseArgs(argv: readonly string[], booleans: ReadonlySet<string>): ParsedArgs {
  const values = new Map<string, string>();
  const lists = new Map<string, string[]>();
  const flags = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h') {
      flags.add('help');
      continue;
    }
    if (!a.startsWith('--') || a === '--') {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const key = a.slice(2, eq < 0 ? undefined : eq);
    if (booleans.has(key)) {
      if (eq >= 0) throw new InvalidArgumentError(`--${key}`, 'is a flag and takes no value');
      flags.add(key);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = a.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value === undefined || (value.startsWith('--') && value.length > 2)) throw new InvalidArgumentError(`--${key}`, 'needs a value');
      i++;
    }
    values.set(key, value);
    lists.set(key, [...(lists.get(key) ?? []), value]);
  }
  return { command: positionals.shift() ?? null, values, lists, flags, positionals };
}

/** Rejects options a command does not know (typos would otherwise be silently ignored). */
export function checkKnown(p: ParsedArgs, known: readonly string[]): void {
  const ok = new Set(known);
  for (const k of [...p.values.keys(), ...p.flags]) if (!ok.has(k)) throw new InvalidArgumentError(`--${k}`, `unknown option for '${p.command}'`);
  if (p.positionals.length) throw new InvalidArgumentError('arguments', `unexpected '${p.positionals.join(' ')}'`);
}

export function num(p: ParsedArgs, key: string, o: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
  const s = p.values.get(key);
  if (s === undefined) return undefined;
  const v = Number(s);
  if (s.trim() === '' || !Number.isFinite(v)) throw new InvalidArgumentError(`--${key}`, `expected a number (got '${s}')`);
  if (o.integer && !Number.isInteger(v)) throw new InvalidArgumentError(`--${key}`, `expected an integer (got '${s}')`);
  if (o.min !== undefined && v < o.min) throw new InvalidArgumentError(`--${key}`, `must be at least ${o.min} (got ${v})`);
  if (o.max !== undefined && v > o.max) throw new InvalidArgumentError(`--${key}`, `must be at most ${o.max} (got ${v})`);
  return v;
}

export function intList(p: ParsedArgs, key: string, min = 0): number[] | undefined {
  const s = p.values.get(key);
  if (s === undefined) return undefined;
  const parts = s.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (!parts.length) throw new InvalidArgumentError(`--${key}`, 'expected a comma-separated list of integers');
  return parts.map((x) => {
    const v = Number(x);
    if (!Number.isInteger(v) || v < min) throw new InvalidArgumentError(`--${key}`, `expected integers >= ${min} (got '${x}')`);
    return v;
  });
}

/** --pop off|exact|auto|<keep>|<ratio>, or --pop-ratio R; the string is kept for reports. */
export function popOption(p: ParsedArgs): { setting: PopSetting | undefined; label: string } {
  const ratio = p.values.get('pop-ratio');
  const pop = p.values.get('pop');
  if (ratio !== undefined && pop !== undefined) throw new InvalidArgumentError('--pop-ratio', 'give either --pop or --pop-ratio, not both');
  if (ratio !== undefined) {
    const r = num(p, 'pop-ratio')!;
    if (!(r > 0 && r <= 1)) throw new InvalidArgumentError('--pop-ratio', `must be in (0, 1] (got ${r})`);
    return { setting: { ratio: r }, label: `ratio:${r}` };
  }
  if (pop === undefined) return { setting: undefined, label: 'exact' };
  return { setting: parsePopSetting(pop), label: pop };
}

export function popList(s: string): { setting: PopSetting; label: string }[] {
  const parts = s.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (!parts.length) throw new InvalidArgumentError('--pop', 'expected a comma-separated list of off, exact, auto, keeps or ratios');
  return parts.map((x) => ({ setting: parsePopSetting(x), label: x }));
}
