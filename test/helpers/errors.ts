import { expect } from 'vitest';
import { TomoError } from '../../src/errors.js';

/** Runs fn, expects it to throw the project's TomoError, and returns the message. */
export function tomoError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TomoError);
    return (e as Error).message;
  }
  throw new Error('expected a TomoError');
}
