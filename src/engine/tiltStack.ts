/**
 * Loads the pixels of one tilt series (W×H×F float32) from its MRC stack or per-tilt images.
 * The buffer can live in shared memory so that worker threads read it without copies.
 */
import { TomoError } from '../errors.js';
import { firstNonFinite } from '../formats/finite.js';
import { MrcHeader, readMrcHeader, readMrcSections } from '../formats/mrc.js';
import { Tomogram } from '../model/tomogramSet.js';

export function stackBytes(t: Tomogram): number {
  return t.imageW * t.imageH * t.frameCount * 4;
}

/**
 * Loads the stack into `into` (reused across tomograms: the largest stack's size, possibly shared
 * memory) or into a new array; returns the view holding exactly this tilt series.
 */
export function loadTiltStack(t: Tomogram, into?: Float32Array): Float32Array {
  const frameSize = t.imageW * t.imageH;
  const stack = into ? into.subarray(0, frameSize * t.frameCount) : new Float32Array(frameSize * t.frameCount);
  const headers = new Map<string, MrcHeader>();
  let f = 0;
  while (f < t.frameCount) {
    // Read runs of consecutive sections of one file in a single call.
    const { path, section } = t.frames[f];
    let n = 1;
    while (f + n < t.frameCount && t.frames[f + n].path === path && t.frames[f + n].section === section + n) n++;
    let h = headers.get(path);
    if (!h) {
      h = readMrcHeader(path);
      headers.set(path, h);
    }
    const data = readMrcSections(path, section, n, h, stack.subarray(f * frameSize, (f + n) * frameSize));
    const i = firstNonFinite(data);
    if (i >= 0) {
      const z = Math.floor(i / frameSize);
      const p = i - z * frameSize;
      throw new TomoError(
        `${path}: section ${section + z + 1} (tilt ${f + z + 1} of ${t.name}) has a non-finite pixel (${data[i]}) at x=${p % t.imageW}, y=${Math.floor(p / t.imageW)}`,
      );
    }
    f += n;
  }
  return stack;
}
