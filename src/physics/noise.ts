/**
 * Noise whitening weights from the tilt images themselves (Tomogram::computeNoiseWeight,
 * numerics.md §3.3): averaged periodogram of overlapping s0×s0 blocks, radially averaged,
 * g = 1/√P painted onto the binned sh×s grid.
 */
import { rfft2 } from '../recon/fft.js';

/**
 * Radial profile of the averaged block periodogram of one frame: b = s0/2+1 bins, linear binning.
 * Blocks start at multiples of t = ⌊s0/2⌋ (overlap 2), no windowing, Both-normalised FFTs.
 */
export function periodogramProfile(stack: Float32Array, frameOffset: number, W: number, H: number, s0: number): Float64Array {
  const t = Math.trunc(s0 / 2);
  const sh0 = (s0 >> 1) + 1;
  const power = new Float64Array(sh0 * s0);
  const block = new Float64Array(s0 * s0);
  const spec = new Float64Array(2 * sh0 * s0);
  let count = 0;
  if (W >= s0 && H >= s0) {
    for (let by = 0; by <= Math.floor((H - s0) / t); by++) {
      for (let bx = 0; bx <= Math.floor((W - s0) / t); bx++) {
        for (let y = 0; y < s0; y++) {
          const src = frameOffset + (by * t + y) * W + bx * t;
          for (let x = 0; x < s0; x++) block[y * s0 + x] = stack[src + x];
        }
        rfft2(block, s0, s0, spec);
        for (let i = 0; i < power.length; i++) power[i] += spec[2 * i] * spec[2 * i] + spec[2 * i + 1] * spec[2 * i + 1];
        count++;
      }
    }
  }
  // |F/s0|² summed then averaged over the blocks.
  const norm = count > 0 ? 1 / (count * s0 * s0) : 0;
  const b = sh0;
  const sum = new Float64Array(b);
  const wsum = new Float64Array(b);
  for (let y = 0; y < s0; y++) {
    const yy = y < s0 / 2 ? y : y - s0;
    for (let x = 0; x < sh0; x++) {
      const r = Math.sqrt(x * x + yy * yy);
      const r0 = Math.floor(r);
      const w1 = r - r0;
      const p = power[y * sh0 + x] * norm;
      if (r0 < b) {
        sum[r0] += (1 - w1) * p;
        wsum[r0] += 1 - w1;
      }
      if (r0 + 1 < b) {
        sum[r0 + 1] += w1 * p;
        wsum[r0 + 1] += w1;
      }
    }
  }
  for (let i = 0; i < b; i++) sum[i] = wsum[i] > 0 ? sum[i] / wsum[i] : 0;
  return sum;
}

/**
 * Paints g = 1/√P (0 where P = 0) onto the sh×s half grid of the binned box. The profile is read
 * at the same physical frequency, scale = s0/(s·bin) (RELION reads it at bin·k, [Q6]; fixed).
 */
export function paintNoiseWeights(profile: Float64Array, s: number, s0: number, bin: number, out: Float32Array): Float32Array {
  const sh = (s >> 1) + 1;
  const b = profile.length;
  const g = new Float64Array(b);
  for (let i = 0; i < b; i++) g[i] = profile[i] > 0 ? Math.fround(1 / Math.sqrt(profile[i])) : 0;
  const scale = s0 / (s * bin);
  for (let y = 0; y < s; y++) {
    const yy = y < s / 2 ? y : y - s;
    for (let x = 0; x < sh; x++) {
      const rd = scale * Math.sqrt(x * x + yy * yy);
      const r0 = Math.trunc(rd);
      let v: number;
      if (r0 + 1 >= b) v = g[b - 1];
      else {
        const t = rd - r0;
        v = (1 - t) * g[r0] + t * g[r0 + 1];
      }
      out[y * sh + x] = v;
    }
  }
  return out;
}

/** Noise weights of every frame of a stack: F × (sh×s) floats. */
export function noiseWeightStack(
  stack: Float32Array,
  W: number,
  H: number,
  frames: number,
  s: number,
  s0: number,
  bin: number,
): Float32Array {
  const sh = (s >> 1) + 1;
  const out = new Float32Array(frames * sh * s);
  for (let f = 0; f < frames; f++) {
    const profile = periodogramProfile(stack, f * W * H, W, H, s0);
    paintNoiseWeights(profile, s, s0, bin, out.subarray(f * sh * s, (f + 1) * sh * s));
  }
  return out;
}
