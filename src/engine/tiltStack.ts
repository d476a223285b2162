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
 * memory) or into a new array; returns the view holding exactly this tilt series. With
 * `onFrames`, frames are read a few at a time and onFrames(n) is called once the first n are in
 * place and checked (compute threads may start on them while the rest is read).
 */
export function loadTiltStack(t: Tomogram, into?: Float32Array, onFrames?: (n: number) => void): Float32Array {
  const frameSize = t.imageW * t.imageH;
  const stack = into ? into.subarray(0, frameSize * t.frameCount) : new Float32Array(frameSize * t.frameCount);
  const headers = new Map<string, MrcHeader>();
  let f = 0;
  while (f < t.frameCount) {
    // Read runs of consecutive sections of one file in a single call.
    const { path, section } = t.frames[f];
    let n = 1;
    const most = onFrames ? FRAMES_PER_READ : t.frameCount;
    while (n < most && f + n < t.frameCount && t.frames[f + n].path === path && t.frames[f + n].section === section + n) n++;
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
    onFrames?.(f);
    if (onFrames && testLoadDelayMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, testLoadDelayMs);
  }
  return stack;
}

/** Frames per read when loading progressively: small enough for threads to start early, large enough for few calls. */
const FRAMES_PER_READ = 4;

/**
 * TOMORECON_TEST_LOAD_DELAY_MS: a pause after each progressive read, so that a test can check
 * that compute threads wait for the frames they use.
 */
const testLoadDelayMs = Number(process.env.TOMORECON_TEST_LOAD_DELAY_MS ?? 0) || 0;
