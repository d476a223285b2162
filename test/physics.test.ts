import { describe, expect, it } from 'vitest';
import { ctfConstants, ctfValue, drawCtf, electronWavelength } from '../src/physics/ctf.js';
import { doseExponents, doseXRanges, drawDoseWeights, drawDoseWeightsFrom } from '../src/physics/dose.js';
import { TomoError } from '../src/errors.js';

const base = { defocusU: 21000, defocusV: 19500, defocusAngle: 30, voltage: 300, cs: 2.7, q0: 0.1, bfactor: 0, scale: 1, phaseShift: 0 };

/** formats.md §3.9 form: Δ(k) = −[ΔfU (k·u)² + ΔfV (k·v)²], written independently of ctf.ts. */
function referenceCtf(p: typeof base, kx: number, ky: number): number {
  const V = p.voltage * 1000;
  const lambda = 12.2643247 / Math.sqrt(V * (1 + 0.978466e-6 * V));
  const a = (p.defocusAngle * Math.PI) / 180;
  const ku = kx * Math.cos(a) + ky * Math.sin(a);
  const kv = -kx * Math.sin(a) + ky * Math.cos(a);
  const delta = -(p.defocusU * ku * ku + p.defocusV * kv * kv);
  const k2 = kx * kx + ky * ky;
  const gamma =
    Math.PI * lambda * delta + (Math.PI / 2) * p.cs * 1e7 * lambda ** 3 * k2 * k2 - (p.phaseShift * Math.PI) / 180 - Math.asin(p.q0);
  let c = -Math.sin(gamma) * Math.exp((-p.bfactor * k2) / 4) * p.scale;
  if (Math.abs(c) < 1e-8) c = c >= 0 ? 1e-8 : -1e-8;
  return c;
}

describe('CTF', () => {
  it('electron wavelength at 300 kV is 0.019687 Å', () => {
    expect(electronWavelength(300)).toBeCloseTo(0.0196875, 6);
  });
  it('is +Q0 at k = 0 and matches the rotated-axes formula everywhere', () => {
    const k = ctfConstants(base);
    expect(ctfValue(k, 0, 0)).toBeCloseTo(0.1, 12);
    for (const p of [base, { ...base, bfactor: 50, scale: 0.8, phaseShift: 30, defocusAngle: -70 }]) {
      const kk = ctfConstants(p);
      for (let i = 0; i < 200; i++) {
        const kx = (Math.random() - 0.5) * 0.5;
        const ky = (Math.random() - 0.5) * 0.5;
        expect(ctfValue(kk, kx, ky)).toBeCloseTo(referenceCtf(p, kx, ky), 10);
      }
    }
  });
  it('draws on the FFTW half grid with wrapped y', () => {
    const s = 16;
    const px = 2;
    const img = drawCtf(ctfConstants(base), s, px, new Float32Array(9 * s));
    // pixel (3, 13) is frequency (3, −3)/(s·px)
    expect(img[13 * 9 + 3]).toBeCloseTo(referenceCtf(base, 3 / (s * px), -3 / (s * px)), 6);
    expect(img[5 * 9 + 8]).toBeCloseTo(referenceCtf(base, 8 / (s * px), 5 / (s * px)), 6);
  });
  it('floors tiny values at ±1e-8 and rejects impossible amplitude contrast', () => {
    const k = ctfConstants({ ...base, q0: 0, defocusU: 0, defocusV: 0, cs: 1e-3 });
    expect(ctfValue(k, 0, 0)).toBe(1e-8);
    expect(() => ctfConstants({ ...base, q0: 1.5 })).toThrow(TomoError);
  });
});

describe('dose weights', () => {
  it('follow the critical-exposure model and are 1 at k = 0', () => {
    const s = 32;
    const px = 2;
    const dw = drawDoseWeights(s, px, 30, 0, new Float32Array(17 * s));
    expect(dw[0]).toBe(1);
    for (const [x, y] of [[5, 0], [16, 3], [2, 30]]) {
      const yy = y < s / 2 ? y : y - s;
      const k = Math.hypot(x, yy) / (s * px);
      const expected = Math.exp((-0.5 * 30) / (0.245 * Math.pow(k, -1.665) + 2.81));
      expect(dw[y * 17 + x]).toBeCloseTo(expected, 6);
    }
  });
  it('use exp(−B·D·k²/4) when a B-factor per dose is given', () => {
    const s = 32;
    const dw = drawDoseWeights(s, 2, 10, 4, new Float32Array(17 * s));
    const k = Math.hypot(7, 4) / 64;
    expect(dw[4 * 17 + 7]).toBeCloseTo(Math.exp((-4 * 10 * k * k) / 4), 6);
  });
  it('from a per-tomogram table of exponents equal drawDoseWeights within one float32 step', () => {
    for (const [s, px, b] of [[32, 2, 0], [64, 1.35, 0], [48, 3.1, 4], [31, 2, 0]]) {
      const sh = (s >> 1) + 1;
      const q = doseExponents(s, px, b);
      for (const dose of [0, 0.5, 3, 30, 121.7]) {
        const want = drawDoseWeights(s, px, dose, b, new Float32Array(sh * s));
        const got = drawDoseWeightsFrom(q, dose, new Float32Array(sh * s));
        expect(got[0]).toBe(1);
        for (let i = 0; i < want.length; i++) {
          // One float32 step at the value (2⁻²³ relative), or the smallest normal near 0.
          const step = Math.max(Math.abs(want[i]) * 2 ** -23, 2 ** -126);
          expect(Math.abs(got[i] - want[i]), `s ${s} dose ${dose} i ${i}`).toBeLessThanOrEqual(step);
        }
      }
    }
  });
  it('x-ranges stop at the disc of radius s/2 and at the dose cut-off', () => {
    const s = 32;
    const sh = 17;
    const ones = new Float32Array(sh * s).fill(1);
    const r = doseXRanges(s, ones, 0.01, new Int32Array(s));
    expect(r[0]).toBe(17); // x ≤ sqrt(256) = 16
    expect(r[16]).toBe(1); // Nyquist row σ = −16: only x = 0
    expect(r[5]).toBe(Math.floor(Math.sqrt(256 - 25)) + 1);
    const dw = drawDoseWeights(s, 2, 200, 0, new Float32Array(sh * s));
    const limited = doseXRanges(s, dw, 0.01, new Int32Array(s));
    let last = 0;
    for (let x = 0; x < sh; x++) if (dw[x] > 0.01) last = x + 1;
    expect(limited[0]).toBe(last);
    expect(limited[0]).toBeLessThan(17);
  });
});
