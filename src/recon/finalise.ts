/**
 * From accumulated Fourier sums to real-space maps (numerics.md §8–§9): gridding correction,
 * Wiener or heuristic division by the weight, taper with mean subtraction, centre crop, and the
 * centred full layout of the weight volume.
 */
import { irfft3, rfft3 } from './fft.js';

/**
 * griddingCorrect3D_sinc2: (−1)^(x+y+z) phase (real-space origin to the box centre), unitary c2r,
 * then division by sinc²(r/w). Returns the s³ "data" map; `data` is not modified unless
 * `consumeInput` (then it is used as work space and holds garbage afterwards).
 */
export function griddingCorrect(data: Float64Array, s: number, consumeInput = false): Float64Array {
  const sh = (s >> 1) + 1;
  const phased = consumeInput ? data : new Float64Array(data.length);
  for (let z = 0; z < s; z++) {
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < sh; x++) {
        const i = 2 * ((z * s + y) * sh + x);
        const sign = (x + y + z) & 1 ? -1 : 1;
        phased[i] = sign * data[i];
        phased[i + 1] = sign * data[i + 1];
      }
    }
  }
  const V = irfft3(phased, s, s, s, undefined, true);
  const norm = 1 / Math.pow(s, 1.5);
  const w = 2 * (sh - 1);
  const cx = Math.floor(w / 2);
  const c = Math.floor(s / 2);
  // The correction depends on the integer r² only: one table instead of a sqrt and a sin per voxel.
  const maxR2 = (s - cx) * (s - cx) + 2 * (s - c) * (s - c) + 1;
  const factor = new Float64Array(Math.max(maxR2, cx * cx + 2 * c * c + 1));
  for (let r2 = 0; r2 < factor.length; r2++) {
    if (r2 === 0) {
      factor[r2] = norm;
      continue;
    }
    const t = Math.sqrt(r2) / w;
    const sinc = Math.sin(Math.PI * t) / (Math.PI * t);
    const q = sinc * sinc;
    factor[r2] = q < 0.01 || t > 1 ? norm / 0.01 : norm / q;
  }
  for (let z = 0; z < s; z++) {
    for (let y = 0; y < s; y++) {
      const ryz = (y - c) * (y - c) + (z - c) * (z - c);
      const row = (z * s + y) * s;
      for (let x = 0; x < s; x++) V[row + x] *= factor[(x - cx) * (x - cx) + ryz];
    }
  }
  return V;
}

/** Radial average of a half-layout weight with linear binning (RadialAvg::fftwHalf_3D_lin), sh bins. */
export function radialAverage3D(W: Float64Array, s: number): Float64Array {
  const sh = (s >> 1) + 1;
  const sum = new Float64Array(sh);
  const wsum = new Float64Array(sh);
  for (let z = 0; z < s; z++) {
    const zz = z < s / 2 ? z : z - s;
    for (let y = 0; y < s; y++) {
      const yy = y < s / 2 ? y : y - s;
      for (let x = 0; x < sh; x++) {
        const r = Math.sqrt(x * x + yy * yy + zz * zz);
        const r0 = Math.floor(r);
        const f = r - r0;
        const v = W[(z * s + y) * sh + x];
        if (r0 < sh) {
          sum[r0] += (1 - f) * v;
          wsum[r0] += 1 - f;
        }
        if (r0 + 1 < sh) {
          sum[r0 + 1] += f * v;
          wsum[r0 + 1] += f;
        }
      }
    }
  }
  for (let i = 0; i < sh; i++) sum[i] = wsum[i] > 0 ? sum[i] / wsum[i] : 0;
  return sum;
}

/**
 * CTF/weight division of the data map V (s³): Wiener F/(W + 1/SNR) when snr > 0, otherwise
 * RELION's heuristic F/max(W, 0.001·⟨W⟩(r)) with everything at |k| ≥ s/2 zeroed ([Q26]).
 * `spectrum` (2·sh·s² doubles) and `out` (s³, may be V itself) avoid allocating the two volumes.
 */
export function divideByWeight(
  V: Float64Array,
  W: Float64Array,
  s: number,
  snr: number,
  spectrum?: Float64Array,
  out?: Float64Array,
): Float64Array {
  const sh = (s >> 1) + 1;
  const norm = 1 / Math.pow(s, 1.5);
  const F = rfft3(V, s, s, s, spectrum);
  if (snr > 0) {
    const reg = 1 / snr;
    for (let i = 0; i < W.length; i++) {
      const d = W[i] + reg;
      F[2 * i] = (F[2 * i] * norm) / d;
      F[2 * i + 1] = (F[2 * i + 1] * norm) / d;
    }
  } else {
    const avg = radialAverage3D(W, s);
    for (let z = 0; z < s; z++) {
      const zz = z < s / 2 ? z : z - s;
      for (let y = 0; y < s; y++) {
        const yy = y < s / 2 ? y : y - s;
        for (let x = 0; x < sh; x++) {
          const i = (z * s + y) * sh + x;
          const r = Math.sqrt(x * x + yy * yy + zz * zz);
          const r0 = Math.floor(r);
          const r1 = r0 + 1;
          if (r1 >= sh) {
            F[2 * i] = 0;
            F[2 * i + 1] = 0;
            continue;
          }
          const f = r - r0;
          const thr = 0.001 * (f * avg[r1] + (1 - f) * avg[r0]);
          const g = Math.max(W[i], thr);
          let re = F[2 * i] * norm;
          let im = F[2 * i + 1] * norm;
          if (g > 0) {
            re /= g;
            im /= g;
          }
          F[2 * i] = re;
          F[2 * i + 1] = im;
        }
      }
    }
  }
  const res = irfft3(F, s, s, s, out, true);
  for (let i = 0; i < res.length; i++) res[i] *= norm;
  return res;
}

/**
 * Reconstruction::taper with mean subtraction: soft spherical mask of width `dist` at radius n/2,
 * the mask-weighted mean inside is subtracted first. In place on an n³ map.
 */
export function taper(img: Float64Array, n: number, dist: number): void {
  const m = n / 2;
  let sum = 0;
  let wsum = 0;
  const maskAt = (r: number): number =>
    r < m - dist ? 1 : 0.5 - 0.5 * Math.cos((Math.PI * (m - r)) / dist);
  for (let z = 0; z < n; z++) {
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        const r = Math.sqrt((x - m) * (x - m) + (y - m) * (y - m) + (z - m) * (z - m));
        if (r < m) {
          const c = maskAt(r);
          sum += c * img[(z * n + y) * n + x];
          wsum += c;
        }
      }
    }
  }
  const mu = wsum > 0 ? sum / wsum : 0;
  for (let z = 0; z < n; z++) {
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        const i = (z * n + y) * n + x;
        const r = Math.sqrt((x - m) * (x - m) + (y - m) * (y - m) + (z - m) * (z - m));
        img[i] = r < m ? maskAt(r) * (img[i] - mu) : 0;
      }
    }
  }
}

/** Central crop to size s − 2⌊(s − crop)/2⌋ (callers reject odd s − crop). */
export function centreCrop(img: Float64Array, s: number, crop: number): { map: Float64Array; n: number } {
  const b = Math.floor((s - crop) / 2);
  const n = s - 2 * b;
  const out = new Float64Array(n * n * n);
  for (let z = 0; z < n; z++) {
    for (let y = 0; y < n; y++) {
      const src = ((z + b) * s + (y + b)) * s + b;
      out.set(img.subarray(src, src + n), (z * n + y) * n);
    }
  }
  return { map: out, n };
}

/**
 * fftwHalfToHumanFull: half-layout weight (sh×s×s) to a full s³ array (float32, as written) with
 * the zero frequency at voxel (s/2, s/2, s/2) (even s). Each output voxel reads its source
 * directly: x < s/2 from the direct write, x > s/2 from the Friedel mate, and on the Nyquist
 * plane x = s/2, where RELION writes both, whichever write comes later in its z, y, x loop ([Q27]).
 */
export function weightToCentredFull(W: Float64Array, s: number, out = new Float32Array(s * s * s)): Float32Array {
  const sh = (s >> 1) + 1;
  const half = s >> 1;
  for (let z = 0; z < s; z++) {
    const fz = (z + s - half) % s;
    const mz = (s - fz) % s;
    for (let y = 0; y < s; y++) {
      const fy = (y + s - half) % s;
      const my = (s - fy) % s;
      const row = (z * s + y) * s;
      for (let x = 0; x < s; x++) {
        const fx = (x + s - half) % s;
        let v: number;
        if (fx < half) v = W[(fz * s + fy) * sh + fx];
        else if (fx > half) v = W[(mz * s + my) * sh + (s - fx)];
        else v = W[(mz * s + my > fz * s + fy ? mz * s + my : fz * s + fy) * sh + half];
        out[row + x] = v;
      }
    }
  }
  return out;
}
