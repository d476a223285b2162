/**
 * sine() (src/physics/sine.ts), the CTF's sin, against Math.sin: the same values to within
 * 4.5·10⁻¹⁶ where the CTF uses it, Math.sin itself beyond its range.
 */
import { describe, expect, it } from 'vitest';
import { PI_1, PI_2, PI_3, SINE_LIMIT, sine } from '../src/physics/sine.js';
import { rng } from './helpers/random.js';

/** Significant bits of a finite double's mantissa (trailing zeros dropped). */
function significantBits(x: number): number {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x);
  let m = (v.getBigUint64(0) & ((1n << 52n) - 1n)) | (1n << 52n);
  let bits = 53;
  while ((m & 1n) === 0n) {
    m >>= 1n;
    bits--;
  }
  return bits;
}

describe('sine', () => {
  it('is Math.sin to within 4.5e-16 for |x| ≤ 1e4, and rounds to the same float32 almost everywhere', () => {
    const r = rng(11);
    let worst = 0;
    let float32Differences = 0;
    const n = 400_000;
    for (let i = 0; i < n; i++) {
      const scale = [1e4, 1e3, 300, 10, 1, 1e-3, 1e-9][i % 7];
      const x = (2 * r() - 1) * scale;
      const d = Math.abs(sine(x) - Math.sin(x));
      worst = Math.max(worst, d);
      if (Math.fround(sine(x)) !== Math.fround(Math.sin(x))) float32Differences++;
    }
    expect(worst).toBeLessThanOrEqual(4.5e-16);
    // A float32 can differ only where sin x lies within ~1e-16 of a float32 rounding boundary.
    expect(float32Differences).toBeLessThanOrEqual(2);
  });

  it('is exact where sin is: 0 at 0, and odd symmetry holds', () => {
    // (sine(−0) is +0, where Math.sin gives −0: the CTF, −sin γ clamped to ±1e-8 by its sign
    // test ≥ 0, is +1e-8 either way.)
    expect(sine(0)).toBe(0);
    expect(sine(-0)).toBe(0);
    const r = rng(5);
    for (let i = 0; i < 10_000; i++) {
      const x = (2 * r() - 1) * 2000;
      expect(sine(-x)).toBe(-sine(x));
    }
  });

  it('is near zero at multiples of π and ±1 half-way, within 4.5e-16 of Math.sin there', () => {
    for (let k = -3000; k <= 3000; k += 7) {
      for (const x of [k * Math.PI, (k + 0.5) * Math.PI]) {
        expect(Math.abs(sine(x) - Math.sin(x))).toBeLessThanOrEqual(4.5e-16);
      }
    }
  });

  it('is Math.sin beyond its range and for non-finite values', () => {
    for (const x of [SINE_LIMIT * 1.0000001, -5e6, 1e12, 1e300, Infinity, -Infinity, NaN]) {
      expect(Object.is(sine(x), Math.sin(x))).toBe(true);
    }
  });

  it('splits π into pieces that make n·π₁ and n·π₂ exact (33 significant bits or fewer) and sum to π', () => {
    expect(significantBits(PI_1)).toBeLessThanOrEqual(33);
    expect(significantBits(PI_2)).toBeLessThanOrEqual(33);
    expect(PI_1 + PI_2).toBe(Math.PI);
    // The third piece is what remains of π beyond the first two, to float64 precision: from
    // π to 60 digits in exact rational arithmetic (bigint, scaled by 10⁶⁰).
    const SCALE = 10n ** 60n;
    const pi = 3141592653589793238462643383279502884197169399375105820974944n;
    const exact = (x: number): bigint => {
      // x = m·2^e exactly; scaled by 10⁶⁰ and rounded.
      const v = new DataView(new ArrayBuffer(8));
      v.setFloat64(0, x);
      const bits = v.getBigUint64(0);
      const e = Number((bits >> 52n) & 0x7ffn) - 1075;
      const m = (bits & ((1n << 52n) - 1n)) | (1n << 52n);
      return e >= 0 ? m * SCALE * (1n << BigInt(e)) : (m * SCALE) / (1n << BigInt(-e));
    };
    const rest = pi - exact(PI_1) - exact(PI_2);
    const relative = Number(rest - exact(PI_3)) / Number(rest);
    expect(Math.abs(relative)).toBeLessThan(2 ** -52);
  });
});
