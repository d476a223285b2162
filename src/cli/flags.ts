/**
 * Turning yargs' raw values into checked numbers and strings, with one clear message per bad
 * value (yargs would silently give NaN).
 */
import { TomoError } from '../errors.js';

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
