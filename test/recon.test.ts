/**
 * The reconstruction kernels against independent direct computations (naive DFTs, direct sums).
 */
import { describe, expect, it } from 'vitest';
import { ExtractionWorkspace, extractFrameSpectrum, roundHalfAway } from '../src/recon/extract.js';
import { complexOut, interpolateComplex2D, interpolateReal2D } from '../src/recon/interpolation.js';
import { Accumulator, backprojectSlice, createAccumulator } from '../src/recon/backproject.js';
import { centreCrop, divideByWeight, griddingCorrect, radialAverage3D, taper, weightToCentredFull } from '../src/recon/finalise.js';
import { invert3, mat3, mul3, rotationY, rotationZ, transpose3 } from '../src/geometry/matrix.js';
import { rng } from './helpers/random.js';
import { rfft2 } from '../src/recon/fft.js';
import { warmUpParticleKernel } from '../src/recon/warmUp.js';
import { clearRuns, foldSphere, insertionRuns } from '../src/recon/insertion.js';

const wrap = (i: number, n: number): number => (i < n / 2 ? i : i - n);

describe('extraction', () => {
  it('rounds half away from zero like std::round', () => {
    expect(roundHalfAway(2.5)).toBe(3);
    expect(roundHalfAway(-2.5)).toBe(-3);
    expect(roundHalfAway(-2.4)).toBe(-2);
  });

  it('equals the DFT of the square with its origin at the projected particle centre (bin 1)', () => {
    const W = 40;
    const H = 36;
    const s = 16;
    const sh = 9;
    const r = rng(1);
    const stack = new Float32Array(W * H * 2);
    for (let i = 0; i < stack.length; i++) stack[i] = r() - 0.5;
    const ws = new ExtractionWorkspace(s, s);
    const out = new Float32Array(2 * sh * s);
    const cx = 17.3;
    const cy = 20.8;
    extractFrameSpectrum(ws, stack, W * H, W, H, cx, cy, 1, false, out);
    const ox = Math.round(cx) - s / 2;
    const oy = Math.round(cy) - s / 2;
    // Direct sum: P(k) = (1/s) Σ_x I(x) exp(−2πi k·(x − (c − o))/s).
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < sh; x++) {
        const ky = wrap(y, s);
        let re = 0;
        let im = 0;
        for (let j = 0; j < s; j++) {
          for (let i = 0; i < s; i++) {
            const v = stack[W * H + (j + oy) * W + (i + ox)];
            const ph = (-2 * Math.PI * (x * (i - (cx - ox)) + ky * (j - (cy - oy)))) / s;
            re += v * Math.cos(ph);
            im += v * Math.sin(ph);
          }
        }
        const o = 2 * (y * sh + x);
        expect(out[o]).toBeCloseTo(re / s, 4);
        expect(out[o + 1]).toBeCloseTo(im / s, 4);
      }
    }
  });

  it('replicates edge pixels and applies the soft circular crop with the outer mean removed', () => {
    const W = 20;
    const H = 20;
    const s = 16;
    const stack = new Float32Array(W * H).fill(3);
    const ws = new ExtractionWorkspace(s, s);
    const out = new Float32Array(2 * 9 * s);
    // A constant image: the outer mean equals the value, so the masked square is all zeros.
    extractFrameSpectrum(ws, stack, 0, W, H, 2.2, 18.7, 1, true, out);
    for (const v of out) expect(Math.abs(v)).toBeLessThan(1e-6);
    // Without the crop the DC term of a constant image is s·value (Both normalisation: ÷ s).
    extractFrameSpectrum(ws, stack, 0, W, H, 2.2, 18.7, 1, false, out);
    expect(Math.hypot(out[0], out[1])).toBeCloseTo(3 * s, 4);
  });

  it('Fourier binning keeps the low frequencies of the unbinned box, divided by bin', () => {
    const W = 64;
    const H = 64;
    const r = rng(7);
    const stack = new Float32Array(W * H);
    for (let i = 0; i < stack.length; i++) stack[i] = r();
    const full = new Float32Array(2 * 17 * 32);
    const binned = new Float32Array(2 * 9 * 16);
    // Integer centre: no sub-pixel shift in either case, so the binned spectrum is a truncation.
    extractFrameSpectrum(new ExtractionWorkspace(32, 32), stack, 0, W, H, 32, 30, 1, false, full);
    extractFrameSpectrum(new ExtractionWorkspace(16, 32), stack, 0, W, H, 32, 30, 2, false, binned);
    for (let y = 0; y < 16; y++) {
      const fy = y < 8 ? y : y + 16;
      for (let x = 0; x < 9; x++) {
        // The shift centre is s/2 = 8 in binned pixels, i.e. 16 unbinned: same origin as the full box.
        expect(binned[2 * (y * 9 + x)]).toBeCloseTo(full[2 * (fy * 17 + x)] / 2, 4);
        expect(binned[2 * (y * 9 + x) + 1]).toBeCloseTo(full[2 * (fy * 17 + x) + 1] / 2, 4);
      }
    }
  });
});

/**
 * extractFrameSpectrum before its pixel loops were split into runs: every pixel through the
 * clamped column table, the outside mean by a scan of the whole square, the centred rotation
 * per pixel. The same operations in the same order, so the spectra must match bit for bit.
 */
function extractReference(ws: ExtractionWorkspace, stack: Float32Array, frameOffset: number, imageW: number, imageH: number, cx: number, cy: number, bin: number, circleCrop: boolean, out: Float32Array): void {
  const { s0, s, sh, sh0, square, mask, outside } = ws;
  const clamp = (i: number, max: number): number => (i < 0 ? 0 : i > max ? max : i);
  const ox = roundHalfAway(cx) - Math.floor(s0 / 2);
  const oy = roundHalfAway(cy) - Math.floor(s0 / 2);
  let mu = 0;
  if (circleCrop) {
    let sum = 0;
    let n = 0;
    for (let y = 0; y < s0; y++) {
      for (let x = 0; x < s0; x++) {
        if (outside[y * s0 + x]) {
          sum += stack[frameOffset + clamp(y + oy, imageH - 1) * imageW + clamp(x + ox, imageW - 1)];
          n++;
        }
      }
    }
    mu = n > 0 ? sum / n : 0;
  }
  const h = s0 >> 1;
  for (let y = 0; y < s0; y++) {
    for (let x = 0; x < s0; x++) {
      const v = stack[frameOffset + clamp(y + oy, imageH - 1) * imageW + clamp(x + ox, imageW - 1)];
      square[((y + s0 - h) % s0) * s0 + ((x + s0 - h) % s0)] = circleCrop ? Math.fround(mask[y * s0 + x] * (v - mu)) : v;
    }
  }
  const spec = rfft2(square, s0, s0, ws.spectrum0);
  const scale = bin !== 1 ? 1 / s0 / bin : 1 / s0;
  const w = 2 * (sh - 1);
  const tx = (cx - ox) / bin - Math.floor(w / 2);
  const ty = (cy - oy) / bin - Math.floor(s / 2);
  for (let y = 0; y < s; y++) {
    const srcY = bin !== 1 ? (y < s / 2 ? y : y - s + s0) : y;
    const ay = (2 * Math.PI * ty * (y < s / 2 ? y : y - s)) / s;
    for (let x = 0; x < sh; x++) {
      const ax = (2 * Math.PI * tx * x) / w;
      const [cxr, cxi, cyr, cyi] = [Math.cos(ax), Math.sin(ax), Math.cos(ay), Math.sin(ay)];
      const re = Math.fround(spec[2 * (srcY * sh0 + x)] * scale);
      const im = Math.fround(spec[2 * (srcY * sh0 + x) + 1] * scale);
      const c = cxr * cyr - cxi * cyi;
      const sn = cxr * cyi + cxi * cyr;
      out[2 * (y * sh + x)] = c * re - sn * im;
      out[2 * (y * sh + x) + 1] = c * im + sn * re;
    }
  }
}

describe('extraction against the per-pixel reference', () => {
  it('gives the same spectra bit for bit: inside the image, at every edge and corner, binned, with and without the crop', () => {
    const W = 90;
    const H = 70;
    const r = rng(11);
    const stack = new Float32Array(W * H * 2);
    for (let i = 0; i < stack.length; i++) stack[i] = 3 * r() - 1;
    let compared = 0;
    for (const [s, s0, bin] of [[32, 32, 1], [16, 32, 2], [24, 24, 1]]) {
      const ws = new ExtractionWorkspace(s, s0);
      const sh = (s >> 1) + 1;
      const got = new Float32Array(2 * sh * s);
      const want = new Float32Array(2 * sh * s);
      // Centres across the image: the square sticks out of it on every side somewhere.
      // Every column offset from before the left edge to past the right one (steps of 0.7 px).
      for (let cx = -4.3; cx < W + 4; cx += 0.7) {
        for (const cy of [-1.5, 9.3, 35.2, 54.5, 69.9]) {
          for (const crop of [true, false]) {
            extractFrameSpectrum(ws, stack, W * H, W, H, cx, cy, bin, crop, got);
            extractReference(ws, stack, W * H, W, H, cx, cy, bin, crop, want);
            expect(got).toEqual(want);
            compared++;
          }
        }
      }
    }
    expect(compared).toBeGreaterThan(3 * 130 * 5 * 2);
  });
});

describe('2-D interpolation', () => {
  const s = 16;
  const sh = 9;
  /** A Hermitian-consistent half grid from the naive DFT of a random real image, plus its full grid. */
  function hermitianPair(): { half: Float32Array; full: (kx: number, ky: number) => [number, number] } {
    const r = rng(3);
    const img = Array.from({ length: s * s }, () => r() - 0.5);
    const F = (kx: number, ky: number): [number, number] => {
      let re = 0;
      let im = 0;
      for (let y = 0; y < s; y++) {
        for (let x = 0; x < s; x++) {
          const ph = (-2 * Math.PI * (kx * x + ky * y)) / s;
          re += img[y * s + x] * Math.cos(ph);
          im += img[y * s + x] * Math.sin(ph);
        }
      }
      return [re, im];
    };
    const half = new Float32Array(2 * sh * s);
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < sh; x++) {
        const [re, im] = F(x, wrap(y, s));
        half[2 * (y * sh + x)] = re;
        half[2 * (y * sh + x) + 1] = im;
      }
    }
    return { half, full: F };
  }

  it('equals bilinear interpolation of the full spectrum, including mirrored negative x', () => {
    const { half, full } = hermitianPair();
    const r = rng(5);
    for (let n = 0; n < 60; n++) {
      const px = (r() - 0.5) * 2 * (sh - 1.5);
      const py = (r() - 0.5) * (s - 2);
      interpolateComplex2D(half, sh, s, px, py);
      // Bilinear on the full grid at (px, py), weights from the lower corner.
      const x0 = Math.floor(px);
      const y0 = Math.floor(py);
      const fx = px - x0;
      const fy = py - y0;
      let re = 0;
      let im = 0;
      for (const [dx, dy, w] of [[0, 0, (1 - fx) * (1 - fy)], [1, 0, fx * (1 - fy)], [0, 1, (1 - fx) * fy], [1, 1, fx * fy]]) {
        const v = full(x0 + dx, y0 + dy);
        re += w * v[0];
        im += w * v[1];
      }
      expect(complexOut[0]).toBeCloseTo(re, 3);
      expect(complexOut[1]).toBeCloseTo(im, 3);
    }
  });

  it('reads column sh−2 as the second sample at the Nyquist column ([Q10])', () => {
    const a = new Float32Array(sh * s);
    a[2 * sh + (sh - 1)] = 10;
    a[2 * sh + (sh - 2)] = 4;
    // px = sh − 1 + 0.5: x0 = sh−1, x1 → sh−2, value = 0.5·10 + 0.5·4.
    expect(interpolateReal2D(a, sh, s, sh - 0.5, 2)).toBeCloseTo(7, 6);
    // y wraps periodically: py = s − 0.5 → rows s−1 and 0.
    const b = new Float32Array(sh * s);
    b[0 * sh + 1] = 2;
    b[(s - 1) * sh + 1] = 6;
    expect(interpolateReal2D(b, sh, s, 1, -0.5)).toBeCloseTo(4, 6);
  });
});

describe('backprojection', () => {
  const s = 16;
  const sh = 9;
  function randomSlice(seed: number): { P: Float32Array; Wt: Float32Array } {
    const r = rng(seed);
    const P = new Float32Array(2 * sh * s);
    const Wt = new Float32Array(sh * s);
    for (let i = 0; i < P.length; i++) P[i] = r() - 0.5;
    for (let i = 0; i < Wt.length; i++) Wt[i] = r();
    return { P, Wt };
  }

  it('with the identity matrix fills exactly the central plane inside the frequency sphere', () => {
    const { P, Wt } = randomSlice(11);
    const acc = createAccumulator(s);
    backprojectSlice(acc, s, P, Wt, mat3(1, 0, 0, 0, 1, 0, 0, 0, 1), 6);
    for (let z = 0; z < s; z++) {
      for (let y = 0; y < s; y++) {
        for (let x = 0; x < sh; x++) {
          const i = (z * s + y) * sh + x;
          const yy = wrap(y, s);
          const inside = z === 0 && x * x + yy * yy <= 36 && Math.abs(yy) < s / 2 + 1;
          if (inside) {
            expect(acc.data[2 * i]).toBeCloseTo(P[2 * (y * sh + x)], 6);
            expect(acc.data[2 * i + 1]).toBeCloseTo(P[2 * (y * sh + x) + 1], 6);
            expect(acc.weight[i]).toBeCloseTo(Wt[y * sh + x], 6);
          } else {
            expect(acc.weight[i]).toBe(0);
            expect(acc.data[2 * i]).toBe(0);
          }
        }
      }
    }
  });

  it('with a 90° in-plane rotation reads the slice at rotated coordinates, conjugating mirrored samples', () => {
    const { P, Wt } = randomSlice(12);
    const acc = createAccumulator(s);
    // Exact entries: with cos(90°) = 6e-17, a mirrored py of −6e-17 wraps to 16 − 6e-17 = 16.0 in double and
    // lands on row s−1 by the clamp, exactly as in RELION; that quirk is not what this test is about.
    const M = mat3(0, -1, 0, 1, 0, 0, 0, 0, 1); // Q = (M⁻¹)ᵀ = M: voxel (x, y) reads slice (−y, x)
    backprojectSlice(acc, s, P, Wt, M, 7);
    for (let y = 0; y < s; y++) {
      const yy = wrap(y, s);
      for (let x = 0; x < sh; x++) {
        if (x * x + yy * yy > 49) continue;
        const i = y * sh + x;
        let qx = -yy;
        let qy = x;
        let sign = 1;
        if (qx < 0) {
          qx = -qx;
          qy = -qy;
          sign = -1;
        }
        const j = ((qy + s) % s) * sh + qx;
        expect(acc.data[2 * i]).toBeCloseTo(P[2 * j], 5);
        expect(acc.data[2 * i + 1]).toBeCloseTo(sign * P[2 * j + 1], 5);
        expect(acc.weight[i]).toBeCloseTo(Wt[j], 5);
      }
    }
  });

  it('the fused loop equals a per-voxel reference built on the interpolation functions (random tilts)', () => {
    const { P, Wt } = randomSlice(21);
    const r = rng(22);
    for (let k = 0; k < 12; k++) {
      const a = r() * 360;
      const t = r() * 120 - 60;
      const M = mul3(rotationZ(a), rotationY(t));
      const acc = createAccumulator(s);
      backprojectSlice(acc, s, P, Wt, M, 7);
      // Reference: every voxel, spec §5.7 written plainly.
      const Q = transpose3(invert3(M));
      for (let z = 0; z < s; z++) {
        for (let y = 0; y < s; y++) {
          for (let x = 0; x < sh; x++) {
            const yy = wrap(y, s);
            const zz = wrap(z, s);
            const i = (z * s + y) * sh + x;
            const pz = Q[6] * x + Q[7] * yy + Q[8] * zz;
            const px = Q[0] * x + Q[1] * yy + Q[2] * zz;
            const py = Q[3] * x + Q[4] * yy + Q[5] * zz;
            const inside = yy * yy + zz * zz <= 49 && x <= Math.trunc(Math.sqrt(49 - yy * yy - zz * zz));
            if (inside && pz > -1 && pz < 1 && Math.abs(px) < sh && Math.abs(py) < s / 2 + 1) {
              const c = 1 - Math.abs(pz);
              interpolateComplex2D(P, sh, s, px, py);
              expect(acc.data[2 * i]).toBeCloseTo(c * complexOut[0], 6);
              expect(acc.data[2 * i + 1]).toBeCloseTo(c * complexOut[1], 6);
              expect(acc.weight[i]).toBeCloseTo(c * interpolateReal2D(Wt, sh, s, px, py), 6);
            } else {
              expect(acc.weight[i]).toBe(0);
            }
          }
        }
      }
    }
  });

  it('spreads a tilted slice with the triangular kernel: weights across the slice sum to one', () => {
    const P = new Float32Array(2 * sh * s);
    const Wt = new Float32Array(sh * s).fill(1);
    const acc = createAccumulator(s);
    // Tilt about y by 20°: along z, each (x, y) column of voxels near the plane gets Σ(1 − |d|) = 1.
    const c = Math.cos((20 * Math.PI) / 180);
    const sn = Math.sin((20 * Math.PI) / 180);
    backprojectSlice(acc, s, P, Wt, mat3(c, 0, sn, 0, 1, 0, -sn, 0, c), 8);
    // Column x = 2, y = 1: plane z = x·tan(20°) ≈ 0.73, well inside the sphere.
    let sum = 0;
    for (let z = 0; z < s; z++) sum += acc.weight[(z * s + 1) * sh + 2];
    // The distance to the plane along z is scaled by cos: Σ(1 − |Δz·c|) over the two neighbours.
    const z0 = 2 * Math.tan((20 * Math.PI) / 180);
    const expected = [0, 1].map((k) => 1 - Math.abs((Math.floor(z0) + k - z0) * c)).reduce((a, b) => a + b, 0);
    expect(sum).toBeCloseTo(expected, 6);
  });
});

describe('finalisation', () => {
  const s = 8;
  const sh = 5;
  it('gridding correction of a DC-only spectrum is a constant divided by sinc²(r/s)', () => {
    const D = new Float64Array(2 * sh * s * s);
    D[0] = 64;
    const V = griddingCorrect(D, s);
    const base = 64 / Math.pow(s, 1.5);
    for (const [x, y, z] of [[4, 4, 4], [0, 0, 0], [6, 3, 1]]) {
      const r = Math.hypot(x - 4, y - 4, z - 4);
      const t = r / s;
      const q = r === 0 ? 1 : (Math.sin(Math.PI * t) / (Math.PI * t)) ** 2;
      expect(V[(z * s + y) * s + x]).toBeCloseTo(base / q, 10);
    }
  });

  it('the radial average of a constant is that constant', () => {
    const W = new Float64Array(sh * s * s).fill(2.5);
    for (const v of radialAverage3D(W, s)) expect(v).toBeCloseTo(2.5, 12);
  });

  it('Wiener division by a constant weight scales the map by 1/(W + 1/SNR)', () => {
    const r = rng(9);
    const V = Float64Array.from({ length: s * s * s }, () => r());
    const W = new Float64Array(sh * s * s).fill(3);
    const out = divideByWeight(V, W, s, 2);
    for (let i = 0; i < V.length; i += 37) expect(out[i]).toBeCloseTo(V[i] / 3.5, 10);
  });

  it('heuristic division keeps only |k| < s/2 and divides by the weight there', () => {
    // V = a single cosine at frequency (1, 0, 0) plus one at (4, 0, 0) (|k| = s/2: removed).
    const V = new Float64Array(s * s * s);
    for (let z = 0; z < s; z++) for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
      V[(z * s + y) * s + x] = Math.cos((2 * Math.PI * x) / s) + Math.cos((2 * Math.PI * 4 * x) / s);
    }
    const W = new Float64Array(sh * s * s).fill(2);
    const out = divideByWeight(V, W, s, -1);
    for (let x = 0; x < s; x++) expect(out[x]).toBeCloseTo(Math.cos((2 * Math.PI * x) / s) / 2, 10);
  });

  it('taper subtracts the masked mean and zeroes the outside', () => {
    const n = 16;
    const img = new Float64Array(n * n * n).fill(5);
    taper(img, n, 3);
    expect(img[(8 * n + 8) * n + 8]).toBeCloseTo(0, 12);
    expect(img[0]).toBe(0);
  });

  it('centre crop takes the central cube', () => {
    const img = Float64Array.from({ length: s * s * s }, (_, i) => i);
    const { map, n } = centreCrop(img, s, 4);
    expect(n).toBe(4);
    expect(map[0]).toBe((2 * s + 2) * s + 2);
  });

  it('the weight layout puts frequency (kx, ky, kz) at (s/2 + kx, s/2 + ky, s/2 + kz), Friedel mate for kx < 0', () => {
    const W = new Float64Array(sh * s * s);
    const val = (x: number, y: number, z: number): number => 1000 * x + 10 * ((y + s) % s) + ((z + s) % s) / 10;
    for (let z = 0; z < s; z++) for (let y = 0; y < s; y++) for (let x = 0; x < sh; x++) W[(z * s + y) * sh + x] = val(x, y, z);
    const H = weightToCentredFull(W, s);
    const at = (kx: number, ky: number, kz: number): number => H[((kz + 4) * s + (ky + 4)) * s + (kx + 4)];
    const f = Math.fround;
    expect(at(2, -1, 3)).toBe(f(val(2, -1, 3)));
    expect(at(-2, 1, -3)).toBe(f(val(2, -1, 3)));
    expect(at(0, 0, 0)).toBe(f(val(0, 0, 0)));
    // Nyquist plane kx = −4: later writes win; the mate write from (4, −ky, −kz) lands after (4, ky, kz) when
    // (−ky, −kz) comes later in z-major order.
    expect(at(-4, 1, 1)).toBe(f(val(4, -1, -1)));
  });

  it('the weight layout equals RELION’s two-step construction (full array with later writes winning, then centring)', () => {
    const s2 = 10;
    const sh2 = 6;
    const r = rng(31);
    const W = Float64Array.from({ length: sh2 * s2 * s2 }, () => r());
    const full = new Float64Array(s2 * s2 * s2);
    for (let z = 0; z < s2; z++) for (let y = 0; y < s2; y++) for (let x = 0; x < sh2; x++) {
      const v = W[(z * s2 + y) * sh2 + x];
      full[(z * s2 + y) * s2 + x] = v;
      if (x > 0) full[(((s2 - z) % s2) * s2 + ((s2 - y) % s2)) * s2 + (s2 - x)] = v;
    }
    const H = weightToCentredFull(W, s2);
    const c = s2 - s2 / 2;
    for (let z = 0; z < s2; z++) for (let y = 0; y < s2; y++) for (let x = 0; x < s2; x++) {
      const ref = full[(((z + c) % s2) * s2 + ((y + c) % s2)) * s2 + ((x + c) % s2)];
      expect(H[(z * s2 + y) * s2 + x]).toBe(Math.fround(ref));
    }
  });
});

describe('kernel warm-up', () => {
  it('inserts every tilt image of its synthetic particles (so threads really compile the whole kernel)', () => {
    expect(warmUpParticleKernel(4)).toBe(4 * 3);
  });
});

describe('folding thread sums (foldSphere)', () => {
  it('adds (or copies onto zero sums) every voxel the back-projection can write, and clears the part', () => {
    const s = 24;
    const r = rng(5);
    const sphere = insertionRuns(s, 1);
    // Parts hold values inside the sphere only, as after back-projection.
    const part = (): Accumulator => {
      const a = createAccumulator(s);
      for (let i = 0; i < sphere.count; i++) {
        const arr = sphere.a[i] === 0 ? a.data : a.weight;
        for (let k = sphere.from[i]; k < sphere.from[i] + sphere.len[i]; k++) arr[k] = r() - 0.5;
      }
      return a;
    };
    const p1 = part();
    const p2 = part();
    const want = { data: p1.data.map((v, i) => v + p2.data[i]), weight: p1.weight.map((v, i) => v + p2.weight[i]) };
    const sums = createAccumulator(s);
    foldSphere(sums, p1, sphere, true, true);
    foldSphere(sums, p2, sphere, false, false);
    expect(sums.data).toEqual(want.data);
    expect(sums.weight).toEqual(want.weight);
    expect(p1.data.every((v) => v === 0) && p1.weight.every((v) => v === 0)).toBe(true);
    expect(p2.data.some((v) => v !== 0)).toBe(true); // not cleared when asked not to
  });

  it('clearRuns zeroes every piece of a volume set the back-projection can write, and only those', () => {
    const s = 16;
    const runs = insertionRuns(s, 2);
    const set = [0, 1].flatMap(() => {
      const a = createAccumulator(s);
      return [a.data.fill(3), a.weight.fill(3)];
    });
    clearRuns(set, runs);
    const inRun = set.map((a) => new Uint8Array(a.length));
    for (let i = 0; i < runs.count; i++) inRun[runs.a[i]].fill(1, runs.from[i], runs.from[i] + runs.len[i]);
    set.forEach((a, k) => expect(a.every((v, i) => v === (inRun[k][i] ? 0 : 3))).toBe(true));
    expect(inRun.every((m) => m.some((v) => v === 0) && m.some((v) => v === 1))).toBe(true);
  });
});
