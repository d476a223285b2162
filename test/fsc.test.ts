import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crossingShell, fsc, pearson, resolutionAt } from '../src/analysis/fsc.js';
import { readMrc } from '../src/formats/mrc.js';
import { Rng } from '../src/simulate/random.js';

const SHARED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared');
const CONFORMANCE = path.join(SHARED, 'conformance');

function noise(n: number, seed: number): Float64Array {
  const v = new Float64Array(n * n * n);
  new Rng(seed).addNormal(v, 1);
  return v;
}

/** FSC from a direct (O(N²)) DFT over the full complex spectrum: the definition, no tricks. */
function naiveFsc(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const shells = Math.floor(n / 2) + 1;
  const num = new Float64Array(shells);
  const da = new Float64Array(shells);
  const db = new Float64Array(shells);
  const freq = (i: number): number => (i < n / 2 ? i : i - n);
  for (let kz = 0; kz < n; kz++) {
    for (let ky = 0; ky < n; ky++) {
      for (let kx = 0; kx < n; kx++) {
        const shell = Math.round(Math.hypot(freq(kx), freq(ky), freq(kz)));
        if (shell >= shells) continue;
        let ar = 0, ai = 0, br = 0, bi = 0;
        for (let z = 0; z < n; z++) {
          for (let y = 0; y < n; y++) {
            for (let x = 0; x < n; x++) {
              const ph = (-2 * Math.PI * (kx * x + ky * y + kz * z)) / n;
              const c = Math.cos(ph), s = Math.sin(ph);
              const i = (z * n + y) * n + x;
              ar += a[i] * c;
              ai += a[i] * s;
              br += b[i] * c;
              bi += b[i] * s;
            }
          }
        }
        num[shell] += ar * br + ai * bi;
        da[shell] += ar * ar + ai * ai;
        db[shell] += br * br + bi * bi;
      }
    }
  }
  return num.map((v, s) => v / Math.sqrt(da[s] * db[s]));
}

describe('fsc', () => {
  it('is 1 in every shell for a map with itself (and with a scaled copy)', () => {
    const v = noise(16, 1);
    const c = fsc(v, v, 16);
    expect(c.length).toBe(9);
    for (const x of c) expect(x).toBeCloseTo(1, 12);
    const scaled = v.map((x) => 3 * x);
    for (const x of fsc(v, scaled, 16)) expect(x).toBeCloseTo(1, 12);
  });

  it('is about 0 for independent noise', () => {
    const n = 32;
    const c = fsc(noise(n, 2), noise(n, 3), n);
    let sum = 0;
    for (let s = 3; s < c.length; s++) {
      // a shell of radius s holds ~4πs² voxels, half of them independent: σ ≈ 1/√(2πs²)
      expect(Math.abs(c[s])).toBeLessThan(4 / Math.sqrt(2 * Math.PI * s * s));
      sum += Math.abs(c[s]);
    }
    expect(sum / (c.length - 3)).toBeLessThan(0.05);
  });

  it('is −1 for a negated map', () => {
    const v = noise(12, 4);
    for (const x of fsc(v, v.map((x) => -x), 12)) expect(x).toBeCloseTo(-1, 12);
  });

  for (const n of [8, 9]) {
    it(`equals a naive full-spectrum DFT implementation (n = ${n})`, () => {
      const a = noise(n, 10 + n);
      const b = a.map((x, i) => x + 0.8 * noise(n, 20 + n)[i]);
      const fast = fsc(a, b, n);
      const slow = naiveFsc(a, b, n);
      expect(fast.length).toBe(slow.length);
      for (let s = 0; s < fast.length; s++) expect(fast[s]).toBeCloseTo(slow[s], 10);
    });
  }

  it('accepts float32 maps and rejects wrong sizes', () => {
    const v = Float32Array.from(noise(8, 5));
    expect(fsc(v, v, 8)[2]).toBeCloseTo(1, 6);
    expect(() => fsc(v, v, 9)).toThrow(RangeError);
  });
});

describe('resolutionAt', () => {
  it('interpolates linearly between the last shell above and the first below', () => {
    const curve = [1, 0.9, 0.6, 0.4, 0.1];
    expect(crossingShell(curve, 0.5)).toBeCloseTo(2.5, 12);
    expect(resolutionAt(curve, 0.5, 8, 2)).toBeCloseTo((8 * 2) / 2.5, 12);
    // 0.143 between shells 3 (0.4) and 4 (0.1): 3 + 0.257/0.3
    expect(resolutionAt(curve, 0.143, 8, 2)).toBeCloseTo(16 / (3 + 0.257 / 0.3), 12);
  });

  it('takes the first crossing, not the last', () => {
    const curve = [1, 0.9, 0.3, 0.8, 0.1];
    expect(crossingShell(curve, 0.5)).toBeCloseTo(1 + 0.4 / 0.6, 12);
  });

  it('ignores shell 0 and handles the no-crossing cases', () => {
    expect(crossingShell([-1, 0.9, 0.8, 0.7], 0.5)).toBeNull(); // shell 0 (the mean) is not looked at
    expect(resolutionAt([-1, 0.9, 0.8, 0.7], 0.5, 6, 1.5)).toBe(3); // stays above: Nyquist, 2·px
    expect(resolutionAt([0.2, 0.1, 0.0], 0.5, 4, 1)).toBe(Infinity); // below from the start
    // Below at shell 1: no resolution, whatever the sign of shell 0 (the maps' means' product).
    expect(crossingShell([1, 0.1, 0.0], 0.5)).toBe(0);
    expect(resolutionAt([1, 0.1, 0.0], 0.5, 4, 1)).toBe(Infinity);
    expect(resolutionAt([-1, 0.1, 0.0], 0.5, 4, 1)).toBe(Infinity);
  });
});

describe('pearson', () => {
  it('is invariant to scale and offset, and signed', () => {
    const a = noise(6, 7);
    expect(pearson(a, a.map((x) => 2 * x + 3))).toBeCloseTo(1, 12);
    expect(pearson(a, a.map((x) => -x))).toBeCloseTo(-1, 12);
    expect(Math.abs(pearson(noise(16, 8), noise(16, 9)))).toBeLessThan(0.1);
    expect(pearson(new Float64Array(8), a.subarray(0, 8))).toBe(0);
  });
});

// RELION's merged maps against the ground truth, as recorded in runs.json: our FSC convention
// must reproduce those numbers (measured: all within 0.005 Å and r within 5e-5).
const runsFile = path.join(CONFORMANCE, 'runs.json');
describe.skipIf(!fs.existsSync(runsFile))('agreement with the conformance numbers (runs.json relion_vs_truth)', () => {
  const runs = fs.existsSync(runsFile)
    ? (JSON.parse(fs.readFileSync(runsFile, 'utf8')) as Record<string, Record<string, { relion_vs_truth?: Record<string, number | string> }>>)
    : {};
  const cases: [string, string, Record<string, number | string>][] = [];
  for (const [ds, byRun] of Object.entries(runs)) {
    for (const [run, r] of Object.entries(byRun)) if (r.relion_vs_truth) cases.push([ds, run, r.relion_vs_truth]);
  }
  it('has the six reference runs', () => {
    expect(cases.map(([d, r]) => `${d}/${r}`).sort()).toEqual(['V1/c1', 'V1/noctf', 'V1/nomot', 'V1/snr', 'V2/c1', 'V2/sym']);
  });
  for (const [ds, run, ref] of cases) {
    it(`${ds}/${run}`, () => {
      const m = readMrc(path.join(CONFORMANCE, 'relion', ds, run, String(ref.map)));
      const t = readMrc(path.join(CONFORMANCE, ds, 'ground_truth.mrc'));
      const n = m.header.nx;
      const px = m.header.pixelSize[0];
      const c = fsc(m.data, t.data, n);
      expect(pearson(m.data, t.data)).toBeCloseTo(Number(ref.pearson), 3);
      expect(Math.abs(resolutionAt(c, 0.5, n, px) - Number(ref['fsc_0.5_A']))).toBeLessThan(0.02);
      expect(Math.abs(resolutionAt(c, 0.143, n, px) - Number(ref['fsc_0.143_A']))).toBeLessThan(0.02);
    });
  }
});

describe('FSC from separately computed spectra (the report’s half maps, one per pool thread)', () => {
  it('gives exactly the curve and resolutions of compareMapFiles, and the same errors', async () => {
    const { compareSpectra, readMapSpectrum } = await import('../src/analysis/fsc.js');
    const { compareMapFiles } = await import('../src/cli/fscCommand.js');
    const { writeMrc } = await import('../src/formats/mrc.js');
    const os = await import('node:os');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-fsc-'));
    try {
      const n = 12;
      const a = noise(n, 1);
      const b = noise(n, 2);
      for (let i = 0; i < a.length; i++) b[i] += a[i];
      const fa = path.join(dir, 'a.mrc');
      const fb = path.join(dir, 'b.mrc');
      writeMrc(fa, a, n, n, n, 1.5);
      writeMrc(fb, b, n, n, n, 1.5);
      const whole = compareMapFiles(fa, fb);
      const split = compareSpectra(readMapSpectrum(fa), readMapSpectrum(fb));
      const { pearson: _r, noPixelSize, ...withoutPearson } = whole;
      expect(noPixelSize).toBe(false);
      expect(split).toEqual(withoutPearson);
      expect(Array.from(split.curve)).toEqual(Array.from(fsc(readMrc(fa).data, readMrc(fb).data, n)));
      const fc = path.join(dir, 'c.mrc');
      writeMrc(fc, new Float64Array(8 * 8 * 8), 8, 8, 8, 1.5);
      expect(() => compareSpectra(readMapSpectrum(fa), readMapSpectrum(fc))).toThrow(/maps differ in size: .*a\.mrc is 12³, .*c\.mrc is 8³/);
      const fd = path.join(dir, 'd.mrc');
      writeMrc(fd, new Float64Array(8 * 8 * 4), 8, 8, 4, 1.5);
      expect(() => readMapSpectrum(fd)).toThrow(/the FSC needs a cubic map/);
      // A map with a NaN voxel is an error naming it (its FSC was silently 0 before).
      const fn = path.join(dir, 'nan.mrc');
      const withNan = Float64Array.from(b);
      withNan[77] = NaN;
      writeMrc(fn, withNan, n, n, n, 1.5);
      expect(() => compareSpectra(readMapSpectrum(fa), readMapSpectrum(fn))).toThrow(/FSC of .*a\.mrc and .*nan\.mrc: .*nan\.mrc has non-finite values/);
      expect(() => compareMapFiles(fa, fn)).toThrow(/nan\.mrc has non-finite values/);
      // Headers without a pixel size: said so (resolutions in pixels).
      const [pa, pb] = [path.join(dir, 'p0a.mrc'), path.join(dir, 'p0b.mrc')];
      writeMrc(pa, a, n, n, n, 0);
      writeMrc(pb, b, n, n, n, 0);
      expect(compareMapFiles(pa, pb).noPixelSize).toBe(true);
      // Transformed in a lent work array, plain or in a WebAssembly arena whose FFT rfft3 uses
      // (as a finalisation thread does): the same spectrum, bit for bit.
      const { WasmArena } = await import('../src/recon/wasmArena.js');
      const { WasmRfft, wasmRfftBytes } = await import('../src/recon/wasmFft.js');
      const { useFft3 } = await import('../src/recon/fft.js');
      const m = 16;
      const fe = path.join(dir, 'e.mrc');
      writeMrc(fe, noise(m, 3), m, m, m, 1.5);
      const len = 2 * (m / 2 + 1) * m * m;
      const ref = readMapSpectrum(fe).spectrum;
      const bytes = (x: Float64Array): Buffer => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
      expect(bytes(readMapSpectrum(fe, undefined, () => new Float64Array(len)).spectrum).equals(bytes(ref))).toBe(true);
      const arena = WasmArena.create(wasmRfftBytes(m, m, m) + 8 * len + 1024)!;
      const engine = WasmRfft.create(arena, m, m, m)!;
      const work = arena.f64(len);
      let used = 0;
      useFft3({ w: m, h: m, d: m, holds: (...a) => engine.holds(...a), forward: (i, o) => (used++, engine.forward(i, o)), inverseDestroying: (i, o) => engine.inverseDestroying(i, o) });
      try {
        const viaWasm = readMapSpectrum(fe, undefined, () => work).spectrum;
        expect(used).toBe(1);
        // The spectrum is the start of the work array (given up to it), not a copy.
        expect(viaWasm.buffer).toBe(arena.buffer);
        expect(viaWasm.byteOffset).toBe(work.byteOffset);
        expect(bytes(viaWasm).equals(bytes(ref))).toBe(true);
      } finally {
        useFft3(null);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
