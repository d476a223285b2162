/**
 * RELION's command-line conventions (formats.md §7.1; RELION's IOParser), turned into what the
 * yargs parser takes, for the commands that accept RELION's flags:
 * - `--name value`, where the value may look like a negative number (`--helical_rise -1e-3`:
 *   yargs would read `-1e-3` as short options);
 * - switches take no value: a word after one is not its value (`--whiten false` still whitens,
 *   as in RELION), and is ignored with a warning;
 * - any word that is not an option's value is ignored (RELION only checks `-` tokens), with a
 *   warning;
 * - an option given twice: the last one counts, with a warning;
 * - `-h` is `--help`.
 * Values are passed on as `--name=value`, so that yargs takes them as they are.
 */
import type { FlagSpec } from './flags.js';

/** RELION's console options (Log::readParams): accepted, and without effect here. */
export const RELION_CONSOLE_FLAGS: FlagSpec[] = [
  { name: 'theme', kind: 'string', describe: "RELION's console colour theme (tomorecon writes no colours: ignored)" },
  { name: 'list_themes', kind: 'boolean', describe: "Lists RELION's console colour themes and exits" },
];

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

export function relionArgs(argv: string[], flags: FlagSpec[], warn: (message: string) => void): string[] {
  const kinds = new Map(flags.map((f) => [f.name, f.kind]));
  const out: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h') {
      out.push('--help');
      continue;
    }
    if (!a.startsWith('--') || a === '--') {
      warn(`'${a}' is neither an option nor an option's value and is ignored`);
      continue;
    }
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (seen.has(name) && name !== 'help') warn(`--${name} is given more than once; the last one counts`);
    seen.add(name);
    if (kinds.get(name) === 'boolean') {
      const next = argv[i + 1];
      if (value === undefined && next !== undefined && !next.startsWith('-')) {
        warn(`'${next}' after --${name} is ignored: a switch takes no value (--${name} is on)`);
        i++;
      }
      // `--name=value` for a switch is left to the flag's own check (a clear error).
      out.push(value === undefined ? `--${name}` : `--${name}=${value}`);
      continue;
    }
    if (value === undefined) {
      const next = argv[i + 1];
      if (next !== undefined && (!next.startsWith('-') || NUMBER.test(next))) {
        value = next;
        i++;
      }
    }
    out.push(value === undefined ? `--${name}` : `--${name}=${value}`);
  }
  return out;
}

/** The value of `--name=value` in normalised arguments (the last one), or undefined. */
export function normalisedValue(args: string[], name: string): string | undefined {
  let v: string | undefined;
  for (const a of args) if (a.startsWith(`--${name}=`)) v = a.slice(name.length + 3);
  return v;
}
