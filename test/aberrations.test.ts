import { describe, expect, it } from 'vitest';
import { evenIndexToMN, oddIndexToMN, zernikeCartesian, zernikeRadial } from '../src/physics/zernike.js';
import { aberrationTables, applyOddAberration } from '../src/physics/aberrations.js';

describe('Zernike polynomials', () => {
  it('index maps follow numerics.md §5.4', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8].map(evenIndexToMN)).toEqual([
      [0, 0], [-2, 2], [0, 2], [2, 2], [-4, 4], [-2, 4], [0, 4], [2, 4], [4, 4],
    ]);
    expect([0, 1, 2, 3, 4, 5].map(oddIndexToMN)).toEqual([[-1, 1], [1, 1], [-3, 3], [-1, 3], [1, 3], [3, 3]]);
  });
  it('match the closed forms', () => {
    for (let k = 0; k < 50; k++) {
      const X = Math.random() - 0.5;
      const Y = Math.random() - 0.5;
      const r2 = X * X + Y * Y;
      const phi = Math.atan2(Y, X);
      expect(zernikeCartesian(1, 1, X, Y)).toBeCloseTo(X, 12);
      expect(zernikeCartesian(-1, 1, X, Y)).toBeCloseTo(Y, 12);
      expect(zernikeCartesian(0, 2, X, Y)).toBeCloseTo(2 * r2 - 1, 12);
      expect(zernikeCartesian(2, 2, X, Y)).toBeCloseTo(X * X - Y * Y, 12);
      expect(zernikeCartesian(-2, 2, X, Y)).toBeCloseTo(2 * X * Y, 12);
      expect(zernikeCartesian(0, 4, X, Y)).toBeCloseTo(6 * r2 * r2 - 6 * r2 + 1, 12);
      expect(zernikeCartesian(-1, 3, X, Y)).toBeCloseTo((3 * r2 - 2) * Math.sqrt(r2) * Math.sin(phi), 12);
      expect(zernikeCartesian(3, 3, X, Y)).toBeCloseTo(r2 * Math.sqrt(r2) * Math.cos(3 * phi), 12);
    }
    expect(zernikeRadial(3, 2, 0.5)).toBe(0); // n − m odd
    expect(zernikeCartesian(0, 0, 0, 0)).toBe(1); // pow(0, 0) = 1, φ = 0 at the origin
  });
});

describe('aberration tables', () => {
  it('evaluate on frequencies in 1/Å of the output box and apply the conjugate odd phase', () => {
    const s = 16;
    const px = 2;
    const t = aberrationTables([0, 0.5, 2], [3, -1], s, px);
    const sh = 9;
    // pixel (2, 14) = frequency (2, −2)/(s·px)
    const X = 2 / 32;
    const Y = -2 / 32;
    const i = 14 * sh + 2;
    expect(t.even![i]).toBeCloseTo(0.5 * 2 * X * Y + 2 * (2 * (X * X + Y * Y) - 1), 12);
    const phi = 3 * Y - X;
    expect(t.odd![2 * i]).toBeCloseTo(Math.cos(phi), 6);
    expect(t.odd![2 * i + 1]).toBeCloseTo(Math.sin(phi), 6);
    const P = new Float32Array([1, 2]);
    applyOddAberration(P, new Float32Array([Math.cos(0.3), Math.sin(0.3)]));
    // (1 + 2i)·exp(−0.3i)
    expect(P[0]).toBeCloseTo(Math.cos(0.3) + 2 * Math.sin(0.3), 6);
    expect(P[1]).toBeCloseTo(2 * Math.cos(0.3) - Math.sin(0.3), 6);
  });
  it('leave tables out when the optics table has no coefficients', () => {
    const t = aberrationTables(null, null, 16, 2);
    expect(t.even).toBeNull();
    expect(t.odd).toBeNull();
  });
});
