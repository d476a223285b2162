/**
 * From accumulated Fourier sums to real-space maps (numerics.md §8–§9): gridding correction,
 * Wiener or heuristic division by the weight, taper with mean subtraction, centre crop, and the
 * centred full layout of the weight volume.
 */
import { irfft3, rfft3 } from './fft.js';

/**
 * griddingCorrect3D_sinc2: (−1)^(x+y+z) phase (real-space origin to the box centre), unitary c2r,
 * then division by sinc²(r/w). Returns the s³ "data" map; `data` is not modified unless
 * `consumeInput`: then the transform runs in place and the map is returned in `data`'s own buffer
 * (its first s³ doubles: 2·(s/2+1)·s² ≥ s³), so finalising needs no second volume.
 */
export function griddingCorrect(data: Float64Array, s: number, consumeInput = false): Float64Array {
  const sh = (s >> 1) + 1;
  const phased = consumeInput ? data : new Float64Array(data.length);
  for (let z = 0; z < s; z++) {
    for (let y = 0; y < s; y++) {
      // The sign alternates along x: no parity test per voxel (±1 products are exact).
      let sign = (y + z) & 1 ? -1 : 1;
      const row = 2 * (z * s + y) * sh;
      for (let i = row; i < row + 2 * sh; i += 2) {
        phased[i] = sign * data[i];
        phased[i + 1] = sign * data[i + 1];
        sign = -sign;
      }
    }
  }
  const out = consumeInput ? new Float64Array(data.buffer, data.byteOffset, s * s * s) : undefined;
  const V = irfft3(phased, s, s, s, out, true);
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

/**
 * Radius r = √(x² + ky² + kz²) of a half-layout voxel as floor and fraction, tabulated by the
 * integer r² (exact in double, so √ gives the same r as computing it per voxel): one table of
 * (3/4)s² + 1 entries instead of a square root per voxel.
 */
function radiusTable(s: number): { r0: Int32Array; f: Float64Array } {
  const h = s >> 1;
  const n = 3 * h * h + 1;
  const r0 = new Int32Array(n);
  const f = new Float64Array(n);
  for (let q = 0; q < n; q++) {
    const r = Math.sqrt(q);
    r0[q] = Math.floor(r);
    f[q] = r - r0[q];
  }
  return { r0, f };
}

/** Signed frequency of index i along an axis of length s (numerics.md §0.1), squared. */
function freq2(i: number, s: number): number {
  const k = i < s / 2 ? i : i - s;
  return k * k;
}

/** Radial average of a half-layout weight with linear binning (RadialAvg::fftwHalf_3D_lin), sh bins. */
export function radialAverage3D(W: Float64Array, s: number): Float64Array {
  const sh = (s >> 1) + 1;
  const sum = new Float64Array(sh);
  const wsum = new Float64Array(sh);
  const { r0: R0, f: F } = radiusTable(s);
  for (let z = 0; z < s; z++) {
    const zz2 = freq2(z, s);
    for (let y = 0; y < s; y++) {
      const yz2 = freq2(y, s) + zz2;
      const row = (z * s + y) * sh;
      for (let x = 0; x < sh; x++) {
        const q = x * x + yz2;
        const r0 = R0[q];
        const f = F[q];
        const v = W[row + x];
        // Same terms, added in the same order as RELION's loop: the result is bit for bit the same.
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
 * `spectrum` (2·sh·s² doubles) and `out` (s³, may be V itself) avoid allocating the two volumes;
 * `spectrum` may also share V's buffer from its start (rfft3 and irfft3 then work in place).
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
    // The threshold depends on r² only: tabulated with the expression of the per-voxel form
    // (NaN: |k| ≥ s/2, zeroed).
    const { r0: R0, f: Fr } = radiusTable(s);
    const thrTab = new Float64Array(R0.length);
    for (let q = 0; q < thrTab.length; q++) {
      const r0 = R0[q];
      const r1 = r0 + 1;
      const f = Fr[q];
      thrTab[q] = r1 >= sh ? NaN : 0.001 * (f * avg[r1] + (1 - f) * avg[r0]);
    }
    for (let z = 0; z < s; z++) {
      const zz2 = freq2(z, s);
      for (let y = 0; y < s; y++) {
        const yz2 = freq2(y, s) + zz2;
        const row = (z * s + y) * sh;
        for (let x = 0; x < sh; x++) {
          const i = row + x;
          const thr = thrTab[x * x + yz2];
          if (thr !== thr) {
            F[2 * i] = 0;
            F[2 * i + 1] = 0;
            continue;
          }
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
 *
 * With m = n/2, every (x − m)² + (y − m)² + (z − m)² is a multiple of 1/4 held exactly in double,
 * so the mask is tabulated by q = 4r² (an integer ≤ 3n²): r = √(q/4) is the same double as the
 * per-voxel √, hence the same mask values, sums and map (taperReference in the tests).
 */
export function taper(img: Float64Array, n: number, dist: number): void {
  const m = n / 2;
  const maskAt = (r: number): number => (r < m - dist ? 1 : 0.5 - 0.5 * Math.cos((Math.PI * (m - r)) / dist));
  // mask[q] for r < m, −1 outside (mask values are ≥ 0).
  const mask = new Float64Array(3 * n * n + 1);
  for (let q = 0; q < mask.length; q++) {
    const r = Math.sqrt(q / 4);
    mask[q] = r < m ? maskAt(r) : -1;
  }
  const q1 = new Int32Array(n); // (2x − n)² = 4(x − m)²
  for (let x = 0; x < n; x++) q1[x] = (2 * x - n) * (2 * x - n);
  let sum = 0;
  let wsum = 0;
  for (let z = 0; z < n; z++) {
    for (let y = 0; y < n; y++) {
      const qyz = q1[y] + q1[z];
      const row = (z * n + y) * n;
      for (let x = 0; x < n; x++) {
        const c = mask[q1[x] + qyz];
        if (c >= 0) {
          sum += c * img[row + x];
          wsum += c;
        }
      }
    }
  }
  const mu = wsum > 0 ? sum / wsum : 0;
  for (let z = 0; z < n; z++) {
    for (let y = 0; y < n; y++) {
      const qyz = q1[y] + q1[z];
      const row = (z * n + y) * n;
      for (let x = 0; x < n; x++) {
        const c = mask[q1[x] + qyz];
        img[row + x] = c >= 0 ? c * (img[row + x] - mu) : 0;
      }
    }
  }
}

/**
 * Central crop to size s − 2⌊(s − crop)/2⌋ (callers reject odd s − crop). `out` (≥ n³ doubles) may
 * share img's buffer from its start: every row moves to a lower index than any row still to be
 * read, and TypedArray.set copies overlapping ranges correctly.
 */
export function centreCrop(img: Float64Array, s: number, crop: number, out?: Float64Array): { map: Float64Array; n: number } {
  const b = Math.floor((s - crop) / 2);
  const n = s - 2 * b;
  const map = out ? out.subarray(0, n * n * n) : new Float64Array(n * n * n);
  for (let z = 0; z < n; z++) {
    for (let y = 0; y < n; y++) {
      const src = ((z + b) * s + (y + b)) * s + b;
      map.set(img.subarray(src, src + n), (z * n + y) * n);
    }
  }
  return { map, n };
}

/**
 * fftwHalfToHumanFull: half-layout weight (sh×s×s) to a full s³ array (float32, as written) with
 * the zero frequency at voxel (s/2, s/2, s/2). Each output voxel reads its source directly: x < s/2
 * from the direct write, x > s/2 from the Friedel mate, and on the Nyquist plane x = s/2, where
 * RELION writes both, whichever write comes later in its z, y, x loop ([Q27]).
 *
 * For even s an output row is three runs: x ≥ s/2 copies the direct row (kx = x − s/2 ≥ 0),
 * 0 < x < s/2 the mate row backwards, x = 0 the Nyquist voxel; no index arithmetic per voxel.
 */
export function weightToCentredFull(W: Float64Array, s: number, out: Float32Array = new Float32Array(s * s * s)): Float32Array {
  const sh = (s >> 1) + 1;
  const half = s >> 1;
  const odd = s & 1;
  for (let z = 0; z < s; z++) {
    const fz = (z + s - half) % s;
    const mz = (s - fz) % s;
    for (let y = 0; y < s; y++) {
      const fy = (y + s - half) % s;
      const my = (s - fy) % s;
      const row = (z * s + y) * s;
      const direct = (fz * s + fy) * sh;
      const mate = (mz * s + my) * sh;
      if (odd) {
        for (let x = 0; x < s; x++) {
          const fx = (x + s - half) % s;
          let v: number;
          if (fx < half) v = W[direct + fx];
          else if (fx > half) v = W[mate + (s - fx)];
          else v = W[(mz * s + my > fz * s + fy ? mate : direct) + half];
          out[row + x] = v;
        }
        continue;
      }
      out[row] = W[(mz * s + my > fz * s + fy ? mate : direct) + half];
      for (let x = 1; x < half; x++) out[row + x] = W[mate + half - x];
      for (let k = 0; k < half; k++) out[row + half + k] = W[direct + k];
    }
  }
  return out;
}
