/**
 * Turning yargs' raw values into checked numbers and strings, with one clear message per bad
 * value (yargs would silently give NaN).
 */
import type { Argv } from 'yargs';
import { TomoError } from '../errors.js';

/** One command-line flag of a command, for yargs and --help. */
export interface FlagSpec {
  name: string;
  kind: 'string' | 'number' | 'boolean';
  describe: string;
}

/** Declares the flags; values stay strings and are converted below, so a bad number gets a clear message. */
export function defineFlags<T>(y: Argv<T>, flags: FlagSpec[]): Argv<T> {
  let out = y;
  for (const f of flags) out = out.option(f.name, { type: f.kind === 'boolean' ? 'boolean' : 'string', describe: f.describe });
  return out;
}

/** RELION only warns about unknown arguments; so do we, to stay a drop-in. */
export function warnUnknownFlags(args: Record<string, unknown>, known: Iterable<string>): void {
  const k = new Set(known);
  for (const key of Object.keys(args)) {
    if (key === '_' || key === '$0' || key === 'help' || key === 'version' || k.has(key)) continue;
    process.stderr.write(`warning: --${key} is not an option of this command and is ignored\n`);
  }
}

export function numberFlag(args: Record<string, unknown>, name: string, fallback: number): number {
  const v = args[name];
  if (v === undefined) return fallback;
  if (typeof v === 'boolean' || (typeof v === 'string' && v.trim() === '')) {
    throw new TomoError(`--${name} needs a value`);
  }
  const n = Number(v);
  if (!Number.isFinite(n)) throw new TomoError(`--${name}: expected a number, got '${String(v)}'`);
  return n;
}

export function stringFlag(args: Record<string, unknown>, name: string, fallback: string): string {
  const v = args[name];
  if (v === undefined) return fallback;
  if (typeof v === 'boolean') throw new TomoError(`--${name} needs a value`);
  return String(v);
}

export function boolFlag(args: Record<string, unknown>, name: string): boolean {
  const v = args[name];
  if (v === undefined || v === false) return false;
  if (v === true) return true;
  // `--whiten true` style values: accept RELION's 0/1 and true/false.
  const s = String(v).toLowerCase();
  if (s === 'true' || s === '1') return true;
  if (s === 'false' || s === '0') return false;
  throw new TomoError(`--${name} is a switch; it takes no value (got '${String(v)}')`);
}
