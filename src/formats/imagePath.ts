import { TomoError } from '../errors.js';

/** A RELION image reference: `[N@]path[:fmt]`. */
export interface ImageRef {
  path: string;
  /** 0-based frame index (from the 1-based `N@`), or null for the whole file. */
  index: number | null;
  /** Format override from a `:fmt` suffix (lower case), or null. */
  format: string | null;
}

/**
 * Parses `000003@stack.mrcs`, `file.mrc`, `file.st:mrc`, `000003@x.mrcs:mrcs`.
 * The image number is everything before the first `@` and must be an integer >= 1.
 * A `:fmt` suffix is recognised only when the text after the last `:` contains no `/`,
 * so that a `:` inside a directory name is kept as part of the path.
 */
export function parseImageRef(spec: string): ImageRef {
  let rest = spec.trim();
  let index: number | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const n = rest.slice(0, at);
    const value = /^\d+$/.test(n) ? Number(n) : NaN;
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new TomoError(`invalid image reference '${spec}': the image number before '@' must be an integer >= 1, found '${n}'`);
    }
    index = value - 1;
    rest = rest.slice(at + 1);
  }
  let format: string | null = null;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0 && !rest.slice(colon + 1).includes('/')) {
    format = rest.slice(colon + 1).toLowerCase();
    rest = rest.slice(0, colon);
    if (format === '') throw new TomoError(`invalid image reference '${spec}': empty format after ':'`);
  }
  if (rest === '') throw new TomoError(`invalid image reference '${spec}': no file name`);
  return { path: rest, index, format };
}
