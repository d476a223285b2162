import { describe, it, expect } from 'vitest';
import {
  ComplexFFT, complexPlan, rfft2, irfft2, rfft3, irfft3, cfft2, cfft3,
} from '../src/recon/fft.js';
import { rng as uniform } from './helpers/random.js';

/** Seeded values in [−0.5, 0.5). */
function rng(seed: number): () => number {
  const u = uniform(seed);
  return () => u() - 0.5;
}

// Deterministic PRNG so failures reproduce.

function randomArray(len: number, seed: number): Float64Array {
  const r = rng(seed);
  const a = new Float64Array(len);
  for (let i = 0; i < len; i++) a[i] = r();
  return a;
}

/** Naive complex DFT of a 3-D interleaved array (w fastest); sign -1 forward, +1 backward. */
function naiveDft3(src: Float64Array, w: number, h: number, d: number, sign: number): Float64Array {
  const out = new Float64Array(2 * w * h * d);
  for (let kz = 0; kz < d; kz++) {
    for (let ky = 0; ky < h; ky++) {
      for (let kx = 0; kx < w; kx++) {
        let sr = 0, si = 0;
        for (let z = 0; z < d; z++) {
          for (let y = 0; y < h; y++) {
            for (let x = 0; x < w; x++) {
              // Reduce the phase exactly as a fraction of a turn to keep the reference accurate.
              const turns = ((kx * x) % w) / w + ((ky * y) % h) / h + ((kz * z) % d) / d;
              const a = sign * 2 * Math.PI * turns;
              const c = Math.cos(a), s = Math.sin(a);
              const i = 2 * (x + w * (y + h * z));
              sr += src[i] * c - src[i + 1] * s;
              si += src[i] * s + src[i + 1] * c;
            }
          }
        }
        const o = 2 * (kx + w * (ky + h * kz));
        out[o] = sr;
        out[o + 1] = si;
      }
    }
  }
  return out;
}

function naiveDft1(src: Float64Array, n: number, sign: number): Float64Array {
  return naiveDft3(src, n, 1, 1, sign);
}

function realToComplex(a: Float64Array): Float64Array {
  const c = new Float64Array(2 * a.length);
  for (let i = 0; i < a.length; i++) c[2 * i] = a[i];
  return c;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let m = 0;
  for (let i = 0; i < got.length; i++) m = Math.max(m, Math.abs(got[i] - want[i]));
  return m / Math.max(maxAbs(want), 1e-300);
}

/** Half-complex part (x <= w/2) of a full complex 3-D array. */
function halfOf(full: Float64Array, w: number, h: number, d: number): Float64Array {
  const wh = (w >> 1) + 1;
  const out = new Float64Array(2 * wh * h * d);
  for (let z = 0; z < d; z++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < wh; x++) {
        const s = 2 * (x + w * (y + h * z));
        const o = 2 * (x + wh * (y + h * z));
        out[o] = full[s];
        out[o + 1] = full[s + 1];
      }
    }
  }
  return out;
}

/** The Hermitian extension that defines c2r: x in (w/2, w) gets conj(G(w-x, -y, -z)). */
function hermitianExtension(half: Float64Array, w: number, h: number, d: number): Float64Array {
  const wh = (w >> 1) + 1;
  const full = new Float64Array(2 * w * h * d);
  for (let z = 0; z < d; z++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const o = 2 * (x + w * (y + h * z));
        if (x < wh) {
          const s = 2 * (x + wh * (y + h * z));
          full[o] = half[s];
          full[o + 1] = half[s + 1];
        } else {
          const s = 2 * (w - x + wh * ((h - y) % h + h * ((d - z) % d)));
          full[o] = half[s];
          full[o + 1] = -half[s + 1];
        }
      }
    }
  }
  return full;
}

function realPart(c: Float64Array): Float64Array {
  const r = new Float64Array(c.length / 2);
  for (let i = 0; i < r.length; i++) r[i] = c[2 * i];
  return r;
}

const TOL = 1e-10;

describe('ComplexFFT', () => {
  const sizes: number[] = [];
  for (let n = 1; n <= 64; n++) sizes.push(n);
  sizes.push(96, 100, 101, 128, 160, 202, 243, 320, 625);

  it('matches the naive DFT forward and backward for many lengths', () => {
    for (const n of sizes) {
      const plan = new ComplexFFT(n);
      expect(plan.n).toBe(n);
      for (const sign of [-1, 1] as const) {
        const x = randomArray(2 * n, n * 7 + (sign + 1));
        const want = naiveDft1(x, n, sign);
        const got = x.slice();
        plan.transform(got, 0, 1, sign);
        const e = relErr(got, want);
        if (!(e < TOL)) throw new Error(`n=${n} sign=${sign} relative error ${e}`);
      }
    }
  });

  it('handles offset and stride, leaving other elements untouched', () => {
    for (const n of [1, 7, 12, 16, 30, 67, 101, 128]) {
      for (const stride of [1, 3]) {
        const offset = 5;
        const data = randomArray(offset + 2 * n * stride + 3, 1000 + n + stride);
        const orig = data.slice();
        const line = new Float64Array(2 * n);
        for (let j = 0; j < n; j++) {
          line[2 * j] = data[offset + 2 * j * stride];
          line[2 * j + 1] = data[offset + 2 * j * stride + 1];
        }
        for (const sign of [-1, 1] as const) {
          const want = naiveDft1(line, n, sign);
          const d = orig.slice();
          complexPlan(n).transform(d, offset, stride, sign);
          const got = new Float64Array(2 * n);
          const touched = new Set<number>();
          for (let j = 0; j < n; j++) {
            const p = offset + 2 * j * stride;
            got[2 * j] = d[p];
            got[2 * j + 1] = d[p + 1];
            touched.add(p).add(p + 1);
          }
          expect(relErr(got, want)).toBeLessThan(TOL);
          for (let i = 0; i < d.length; i++) if (!touched.has(i)) expect(d[i]).toBe(orig[i]);
        }
      }
    }
  });

  it('round-trips large lengths with big prime factors', () => {
    for (const n of [1009, 2 * 3 * 5 * 7 * 11, 4 * 59 * 3, 4096, 3 * 1031]) {
      const x = randomArray(2 * n, n);
      const y = x.slice();
      const plan = complexPlan(n);
      plan.transform(y, 0, 1, -1);
      plan.transform(y, 0, 1, 1);
      for (let i = 0; i < y.length; i++) y[i] /= n;
      expect(relErr(y, x)).toBeLessThan(TOL);
    }
    // One direct check of a large Bluestein length against the naive DFT.
    const n = 1009;
    const x = randomArray(2 * n, 42);
    const want = naiveDft1(x, n, -1);
    complexPlan(n).transform(x, 0, 1, -1);
    expect(relErr(x, want)).toBeLessThan(TOL);
  });

  it('caches plans', () => {
    expect(complexPlan(48)).toBe(complexPlan(48));
  });
});

describe('rfft2 / irfft2', () => {
  const sizes: [number, number][] = [[8, 8], [6, 10], [48, 48], [7, 5], [64, 32], [1, 1], [2, 3], [1, 4], [101, 2]];

  it('forward matches the naive 2-D DFT', () => {
    for (const [w, h] of sizes) {
      const x = randomArray(w * h, w * 31 + h);
      const want = halfOf(naiveDft3(realToComplex(x), w, h, 1, -1), w, h, 1);
      expect(relErr(rfft2(x, w, h), want)).toBeLessThan(TOL);
      // Float32 input and caller-provided output.
      const x32 = Float32Array.from(x);
      const out = new Float64Array(want.length);
      const got = rfft2(x32, w, h, out);
      expect(got).toBe(out);
      const want32 = halfOf(naiveDft3(realToComplex(Float64Array.from(x32)), w, h, 1, -1), w, h, 1);
      expect(relErr(got, want32)).toBeLessThan(TOL);
    }
  });

  it('inverse matches the naive 2-D inverse and round-trips', () => {
    for (const [w, h] of sizes) {
      const x = randomArray(w * h, w * 17 + h + 3);
      const spec = rfft2(x, w, h);
      const specCopy = spec.slice();
      const back = irfft2(spec, w, h);
      expect(spec).toEqual(specCopy);
      const scaled = x.map((v) => v * w * h);
      expect(relErr(back, scaled)).toBeLessThan(TOL);
      const want = realPart(naiveDft3(hermitianExtension(spec, w, h, 1), w, h, 1, 1));
      const out = new Float64Array(w * h);
      expect(irfft2(spec, w, h, out)).toBe(out);
      expect(relErr(out, want)).toBeLessThan(TOL);
    }
  });

  it('c2r on non-Hermitian input equals Re of the inverse of the Hermitian extension', () => {
    for (const [w, h] of [[8, 6], [7, 6], [6, 5], [9, 9], [2, 4], [1, 3], [48, 10], [10, 1]] as [number, number][]) {
      const wh = (w >> 1) + 1;
      const g = randomArray(2 * wh * h, 500 + w * 13 + h);
      const copy = g.slice();
      const want = realPart(naiveDft3(hermitianExtension(g, w, h, 1), w, h, 1, 1));
      const got = irfft2(g, w, h);
      expect(g).toEqual(copy);
      expect(relErr(got, want)).toBeLessThan(TOL);
    }
  });
});

describe('rfft3 / irfft3', () => {
  const sizes: [number, number, number][] = [[4, 4, 4], [6, 4, 8], [8, 8, 8], [5, 3, 6], [12, 12, 12], [3, 1, 2]];

  it('forward matches the naive 3-D DFT', () => {
    for (const [w, h, d] of sizes) {
      const x = randomArray(w * h * d, w + 10 * h + 100 * d);
      const want = halfOf(naiveDft3(realToComplex(x), w, h, d, -1), w, h, d);
      expect(relErr(rfft3(x, w, h, d), want)).toBeLessThan(TOL);
    }
  });

  it('inverse matches the naive 3-D inverse and round-trips', () => {
    for (const [w, h, d] of sizes) {
      const x = randomArray(w * h * d, 7 + w + 10 * h + 100 * d);
      const spec = rfft3(x, w, h, d);
      const specCopy = spec.slice();
      const back = irfft3(spec, w, h, d);
      expect(spec).toEqual(specCopy);
      expect(relErr(back, x.map((v) => v * w * h * d))).toBeLessThan(TOL);
      const want = realPart(naiveDft3(hermitianExtension(spec, w, h, d), w, h, d, 1));
      expect(relErr(back, want)).toBeLessThan(TOL);
    }
  });

  it('c2r on non-Hermitian input equals Re of the inverse of the Hermitian extension', () => {
    for (const [w, h, d] of [[6, 4, 5], [5, 4, 6], [8, 6, 6], [7, 5, 3], [4, 1, 4]] as [number, number, number][]) {
      const wh = (w >> 1) + 1;
      const g = randomArray(2 * wh * h * d, 900 + w + 10 * h + 100 * d);
      const copy = g.slice();
      const want = realPart(naiveDft3(hermitianExtension(g, w, h, d), w, h, d, 1));
      const got = irfft3(g, w, h, d);
      expect(g).toEqual(copy);
      expect(relErr(got, want)).toBeLessThan(TOL);
    }
  });

  it('times rfft3 + irfft3 at 128^3 (logged, not asserted)', () => {
    const n = 128;
    const x = randomArray(n * n * n, 1);
    const spec = new Float64Array(2 * (n / 2 + 1) * n * n);
    const back = new Float64Array(n * n * n);
    rfft3(x, n, n, n, spec);
    irfft3(spec, n, n, n, back);
    const reps = 3;
    let tf = Infinity, ti = Infinity;
    for (let r = 0; r < reps; r++) {
      let t0 = performance.now();
      rfft3(x, n, n, n, spec);
      tf = Math.min(tf, performance.now() - t0);
      t0 = performance.now();
      irfft3(spec, n, n, n, back);
      ti = Math.min(ti, performance.now() - t0);
    }
    console.log(`128^3: rfft3 ${tf.toFixed(1)} ms, irfft3 ${ti.toFixed(1)} ms`);
    expect(relErr(back, x.map((v) => v * n * n * n))).toBeLessThan(TOL);
  });
});

describe('cfft2 / cfft3', () => {
  it('match the naive DFT and round-trip', () => {
    for (const [w, h, d] of [[4, 6, 1], [5, 3, 1], [8, 8, 1], [4, 6, 3], [7, 2, 5], [1, 1, 1]] as [number, number, number][]) {
      for (const sign of [-1, 1] as const) {
        const x = randomArray(2 * w * h * d, w + 10 * h + 100 * d + sign);
        const want = naiveDft3(x, w, h, d, sign);
        const got = x.slice();
        if (d === 1) cfft2(got, w, h, sign);
        else cfft3(got, w, h, d, sign);
        expect(relErr(got, want)).toBeLessThan(TOL);
        const inv = sign === -1 ? 1 : -1;
        cfft3(got, w, h, d, inv);
        expect(relErr(got, x.map((v) => v * w * h * d))).toBeLessThan(TOL);
      }
    }
  });
});
