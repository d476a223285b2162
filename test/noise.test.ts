import { describe, expect, it } from 'vitest';
import { noiseWeightStack, paintNoiseWeights, periodogramProfile } from '../src/physics/noise.js';

function gaussian(seed: number): () => number {
  let a = seed >>> 0;
  const u = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

describe('noise whitening weights', () => {
  it('the averaged periodogram of white noise of σ is flat at σ² (Both normalisation)', () => {
    const W = 200;
    const H = 160;
    const g = gaussian(4);
    const stack = new Float32Array(W * H);
    for (let i = 0; i < stack.length; i++) stack[i] = 2 * g();
    const p = periodogramProfile(stack, 0, W, H, 32);
    expect(p).toHaveLength(17);
    for (let i = 2; i < 17; i++) {
      expect(p[i] / 4).toBeGreaterThan(0.85);
      expect(p[i] / 4).toBeLessThan(1.15);
    }
  });

  it('the periodogram of one block equals the direct sum', () => {
    const s0 = 8;
    const g = gaussian(5);
    const stack = new Float32Array(s0 * s0);
    for (let i = 0; i < stack.length; i++) stack[i] = g();
    const p = periodogramProfile(stack, 0, s0, s0, s0);
    // Bin 0 collects the DC term with weight 1 plus fractional parts of |k| < 1: only DC here.
    let dc = 0;
    for (const v of stack) dc += v;
    expect(p[0]).toBeCloseTo((dc * dc) / (s0 * s0), 10);
  });

  it('reads the profile at the same physical frequency with --bin (RELION reads bin·k, [Q6])', () => {
    const prof = Float64Array.from({ length: 17 }, (_, i) => 1 / ((1 + i) * (1 + i)));
    const out = paintNoiseWeights(prof, 16, 32, 2, new Float32Array(9 * 16));
    expect(out[3]).toBeCloseTo(4, 5); // x = 3 → block frequency 3 → g = 1 + 3
    expect(out[2 * 9 + 0]).toBeCloseTo(3, 5);
    const unbinned = paintNoiseWeights(prof, 32, 32, 1, new Float32Array(17 * 32));
    expect(unbinned[5]).toBeCloseTo(6, 5);
  });

  it('white noise gives g ≈ 1/σ at every frequency, per frame', () => {
    const W = 128;
    const H = 128;
    const g = gaussian(6);
    const stack = new Float32Array(W * H * 2);
    for (let i = 0; i < W * H; i++) stack[i] = 2 * g();
    for (let i = W * H; i < 2 * W * H; i++) stack[i] = 0.5 * g();
    const w = noiseWeightStack(stack, W, H, 2, 16, 32, 2);
    const sh = 9;
    expect(w[5]).toBeGreaterThan(0.4);
    expect(w[5]).toBeLessThan(0.6);
    expect(w[sh * 16 + 5]).toBeGreaterThan(1.6);
    expect(w[sh * 16 + 5]).toBeLessThan(2.4);
  });
});
