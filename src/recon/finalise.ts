/**
 * From accumulated Fourier sums to real-space maps (numerics.md §8–§9): gridding correction,
 * Wiener or heuristic division by the weight, taper with mean subtraction, centre crop, and the
 * centred full layout of the weight volume.
 */
import { irfft3, rfft3 } from './fft.js';

/**
 * griddingCorrect3D_sinc2: (−1)^(x+y+z) phase (real-space origin to the box centre), unitary c2r,
 * then division by sinc²(r/w). Returns the s³ "data" map; `data` is not modified.
 */
export function griddingCorrect(data: Float64Array, s: number): Float64Array {
  const sh = (s >> 1) + 1;
  const phased = new Float64Array(data.length);
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
  const V = irfft3(phased, s, s, s);
  const norm = 1 / Math.pow(s, 1.5);
  const w = 2 * (sh - 1);
  const cx = Math.floor(w / 2);
  const c = Math.floor(s / 2);
  for (let z = 0; z < s; z++) {
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < s; x++) {
        const i = (z * s + y) * s + x;
        const r = Math.sqrt((x - cx) * (x - cx) + (y - c) * (y - c) + (z - c) * (z - c));
        let v = V[i] * norm;
        if (r > 0) {
          const t = r / w;
          const sinc = Math.sin(Math.PI * t) / (Math.PI * t);
          const q = sinc * sinc;
          v = q < 0.01 || t > 1 ? v / 0.01 : v / q;
        }
        V[i] = v;
      }
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
 */
export function divideByWeight(V: Float64Array, W: Float64Array, s: number, snr: number): Float64Array {
  const sh = (s >> 1) + 1;
  const norm = 1 / Math.pow(s, 1.5);
  const F = rfft3(V, s, s, s);
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
  const out = irfft3(F, s, s, s);
  for (let i = 0; i < out.length; i++) out[i] *= norm;
  return out;
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
 * fftwHalfToHumanFull: half-layout weight (sh×s×s) to a full s³ array with the zero frequency at
 * voxel (s/2, s/2, s/2). The write order matters on the Nyquist plane x = s/2 ([Q27]).
 */
export function weightToCentredFull(W: Float64Array, s: number): Float64Array {
  const sh = (s >> 1) + 1;
  const wd = 2 * (sh - 1);
  const full = new Float64Array(wd * s * s);
  for (let z = 0; z < s; z++) {
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < sh; x++) {
        const v = W[(z * s + y) * sh + x];
        full[(z * s + y) * wd + (x % wd)] = v;
        if (x > 0) {
          const xm = wd - x;
          const ym = (s - y) % s;
          const zm = (s - z) % s;
          full[(zm * s + ym) * wd + xm] = v;
        }
      }
    }
  }
  const cw = wd - Math.floor(wd / 2);
  const c = s - Math.floor(s / 2);
  const out = new Float64Array(wd * s * s);
  for (let z = 0; z < s; z++) {
    const fz = (z + c) % s;
    for (let y = 0; y < s; y++) {
      const fy = (y + c) % s;
      for (let x = 0; x < wd; x++) {
        out[(z * s + y) * wd + x] = full[(fz * s + fy) * wd + ((x + cw) % wd)];
      }
    }
  }
  return out;
}
