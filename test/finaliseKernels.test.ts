/**
 * The finalisation kernels (tables instead of per-voxel roots and cosines, row runs instead of
 * per-voxel index arithmetic, in-place transforms) against their straightforward forms, bit for
 * bit: the output maps must not change by a single bit.
 */
import { describe, expect, it } from 'vitest';
import { centreCrop, divideByWeight, griddingCorrect, radialAverage3D, taper, weightToCentredFull } from '../src/recon/finalise.js';
import { irfft3, rfft3 } from '../src/recon/fft.js';
import { rng } from './helpers/random.js';

function random(len: number, seed: number, offset = -0.5): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: len }, () => r() + offset);
}

/** Exact equality, element by element (same doubles, −0 and 0 alike). */
function expectSame(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  expect(a.length, what).toBe(b.length);
  let bad = -1;
  for (let i = 0; i < a.length && bad < 0; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) bad = i;
  expect(bad, `${what}: first difference at ${bad}: ${a[bad]} vs ${b[bad]}`).toBe(-1);
}

// ---------------------------------------------------------------- straightforward forms

function taperReference(img: Float64Array, n: number, dist: number): void {
  const m = n / 2;
  let sum = 0;
  let wsum = 0;
  const maskAt = (r: number): number => (r < m - dist ? 1 : 0.5 - 0.5 * Math.cos((Math.PI * (m - r)) / dist));
  for (let z = 0; z < n; z++) for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    const r = Math.sqrt((x - m) * (x - m) + (y - m) * (y - m) + (z - m) * (z - m));
    if (r < m) {
      const c = maskAt(r);
      sum += c * img[(z * n + y) * n + x];
      wsum += c;
    }
  }
  const mu = wsum > 0 ? sum / wsum : 0;
  for (let z = 0; z < n; z++) for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
    const i = (z * n + y) * n + x;
    const r = Math.sqrt((x - m) * (x - m) + (y - m) * (y - m) + (z - m) * (z - m));
    img[i] = r < m ? maskAt(r) * (img[i] - mu) : 0;
  }
}

function weightReference(W: Float64Array, s: number): Float32Array {
  const sh = (s >> 1) + 1;
  const half = s >> 1;
  const out = new Float32Array(s * s * s);
  for (let z = 0; z < s; z++) {
    const fz = (z + s - half) % s;
    const mz = (s - fz) % s;
    for (let y = 0; y < s; y++) {
      const fy = (y + s - half) % s;
      const my = (s - fy) % s;
      for (let x = 0; x < s; x++) {
        const fx = (x + s - half) % s;
        let v: number;
        if (fx < half) v = W[(fz * s + fy) * sh + fx];
        else if (fx > half) v = W[(mz * s + my) * sh + (s - fx)];
        else v = W[(mz * s + my > fz * s + fy ? mz * s + my : fz * s + fy) * sh + half];
        out[(z * s + y) * s + x] = v;
      }
    }
  }
  return out;
}

function radialReference(W: Float64Array, s: number): Float64Array {
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

function heuristicDivideReference(V: Float64Array, W: Float64Array, s: number): Float64Array {
  const sh = (s >> 1) + 1;
  const norm = 1 / Math.pow(s, 1.5);
  const F = rfft3(V, s, s, s);
  const avg = radialReference(W, s);
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
  const res = irfft3(F, s, s, s);
  for (let i = 0; i < res.length; i++) res[i] *= norm;
  return res;
}

// ---------------------------------------------------------------- tests

describe('finalisation kernels equal their straightforward forms bit for bit', () => {
  it('taper (even and odd sizes, soft edge wider than the map, none)', () => {
    for (const [n, dist] of [[16, 3], [17, 4], [12, 10], [10, 0], [33, 5]]) {
      const a = random(n * n * n, n + dist);
      const b = a.slice();
      taper(a, n, dist);
      taperReference(b, n, dist);
      expectSame(a, b, `taper n=${n} dist=${dist}`);
    }
  });

  it('weightToCentredFull (even and odd sizes)', () => {
    for (const s of [2, 8, 16, 9, 7]) {
      const W = random(((s >> 1) + 1) * s * s, s, 0.1);
      expectSame(weightToCentredFull(W, s), weightReference(W, s), `weight s=${s}`);
    }
  });

  it('radialAverage3D and the heuristic division', () => {
    for (const s of [8, 16, 9]) {
      const sh = (s >> 1) + 1;
      const W = random(sh * s * s, 3 * s, 0.1);
      W[5] = 0; // a zero weight below the threshold
      expectSame(radialAverage3D(W, s), radialReference(W, s), `radial s=${s}`);
      const V = random(s * s * s, 7 * s);
      expectSame(divideByWeight(V, W, s, -1), heuristicDivideReference(V, W, s), `divide s=${s}`);
    }
  });

  it('in place: gridding correction in the data array, division with spectrum and map sharing it, crop over itself', () => {
    const s = 16;
    const sh = s / 2 + 1;
    const data = random(2 * sh * s * s, 41);
    const W = random(sh * s * s, 42, 0.2);
    // Out of place (allocating), as before.
    const V1 = griddingCorrect(data, s);
    const D1 = divideByWeight(V1.slice(), W, s, -1);
    const C1 = centreCrop(D1, s, 10);
    // In place, as writeTag does it.
    const work = data.slice();
    const V2 = griddingCorrect(work, s, true);
    expect(V2.buffer).toBe(work.buffer);
    expectSame(V2, V1, 'gridding');
    const D2 = divideByWeight(V2, W, s, -1, work, V2);
    expect(D2.buffer).toBe(work.buffer);
    expectSame(D2, D1, 'division');
    const C2 = centreCrop(D2, s, 10, D2);
    expect(C2.n).toBe(C1.n);
    expectSame(C2.map, C1.map, 'crop');
    // Wiener division too.
    const work3 = data.slice();
    const V3 = griddingCorrect(work3, s, true);
    expectSame(divideByWeight(V3, W, s, 2, work3, V3), divideByWeight(V1, W, s, 2), 'Wiener');
  });

  it('rfft3 into its own input buffer and irfft3 into its own input buffer, even and odd widths', () => {
    for (const [w, h, d] of [[8, 6, 4], [9, 5, 3], [16, 16, 16]]) {
      const wh = (w >> 1) + 1;
      const x = random(w * h * d, w * h + d);
      const buf = new Float64Array(2 * wh * h * d);
      buf.set(x);
      const inPlace = rfft3(buf.subarray(0, w * h * d), w, h, d, buf);
      expectSame(inPlace, rfft3(x, w, h, d), `rfft3 ${w}×${h}×${d}`);
      const spec = inPlace.slice();
      const back = irfft3(inPlace, w, h, d, inPlace.subarray(0, w * h * d), true);
      expectSame(back, irfft3(spec, w, h, d), `irfft3 ${w}×${h}×${d}`);
    }
  });
});
