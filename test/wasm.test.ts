/**
 * The WebAssembly kernels (assembly/backproject.ts and assembly/fft.ts → src/recon/backprojectWasm.ts)
 * against their JavaScript references: the back-projection against backprojectSlice, the
 * extraction's FFT against rfft2, the CTF·dose premultiplication against drawCtf and
 * processParticleFrame's loop; the same sums, spectra and slices bit for bit.
 */
import { describe, expect, it } from 'vitest';
import { Accumulator, backprojectSlice, createAccumulator } from '../src/recon/backproject.js';
import { BACKPROJECT_WASM_BASE64 } from '../src/recon/backprojectWasm.js';
import { WasmArena, insertSlice } from '../src/recon/wasmArena.js';
import { eulerToMatrix, Mat3 } from '../src/geometry/matrix.js';
import { rng } from './helpers/random.js';
import { irfft3, rfft2, rfft3 } from '../src/recon/fft.js';
import { WasmRfft, wasmRfftBytes } from '../src/recon/wasmFft.js';
import { ExtractionWorkspace, extractFrameSpectrum, extractionArenaBytes } from '../src/recon/extract.js';
import { CtfParams, ctfConstants, drawCtf } from '../src/physics/ctf.js';
import { SINE_LIMIT, sine } from '../src/physics/sine.js';
import { doseExponents, doseXRanges, drawDoseWeightsFrom } from '../src/physics/dose.js';
import { aberrationTables } from '../src/physics/aberrations.js';
import { KernelOptions, KernelWorkspace, TomogramGeometry, buildTomogramTables, packParticle, particleRecordLength, processParticle } from '../src/recon/particleKernel.js';
// @ts-expect-error: a plain ESM script without types
import { compileBackproject } from '../scripts/build-wasm.mjs';

describe('WebAssembly back-projection', () => {
  it('is built from assembly/backproject.ts as checked in (npm run build:wasm)', () => {
    expect(compileBackproject()).toBe(BACKPROJECT_WASM_BASE64);
  }, 60_000);

  it('gives backprojectSlice’s sums bit for bit, at any orientation (axis-aligned ones too) and radius, even boxes and odd', () => {
    const r = rng(3);
    for (const s of [16, 32, 48, 64, 15, 33]) {
      const sh = (s >> 1) + 1;
      const arena = WasmArena.create(3 * 8 * sh * s * s + 12 * sh * s + 4096)!;
      expect(arena).not.toBeNull();
      const inArena: Accumulator = { data: arena.f64(2 * sh * s * s), weight: arena.f64(sh * s * s) };
      const P = arena.f32(2 * sh * s);
      const Wt = arena.f32(sh * s);
      const ref = createAccumulator(s);
      const turns: Mat3[] = [eulerToMatrix(0, 0, 0), eulerToMatrix(90, 0, 0), eulerToMatrix(0, 90, 0), eulerToMatrix(0, 90, 90), eulerToMatrix(90, 90, 90)];
      for (let k = 0; k < 60; k++) turns.push(eulerToMatrix(360 * r(), 180 * r(), 360 * r()).map((v) => v * (0.8 + 0.4 * r())) as Mat3);
      for (const M of turns) {
        for (let i = 0; i < P.length; i++) P[i] = r() - 0.5;
        for (let i = 0; i < Wt.length; i++) Wt[i] = r();
        const maxFreq = Math.floor(1 + r() * (s / 2 + 1));
        expect(arena.insert(inArena, s, P, Wt, M, maxFreq)).toBe(true);
        backprojectSlice(ref, s, P, Wt, M, maxFreq);
      }
      expect(inArena.data).toEqual(ref.data);
      expect(inArena.weight).toEqual(ref.weight);
      expect(ref.weight.some((v) => v !== 0)).toBe(true);
    }
  });

  it('leaves arrays outside the arena to backprojectSlice; no arena past 4 GiB', () => {
    const s = 16;
    const sh = 9;
    const arena = WasmArena.create(1 << 20)!;
    const acc = createAccumulator(s);
    const ref = createAccumulator(s);
    const P = Float32Array.from({ length: 2 * sh * s }, (_, i) => Math.sin(i));
    const Wt = new Float32Array(sh * s).fill(1);
    const M = eulerToMatrix(10, 20, 30);
    expect(arena.insert(acc, s, P, Wt, M, 8)).toBe(false);
    insertSlice(arena, acc, s, P, Wt, M, 8);
    backprojectSlice(ref, s, P, Wt, M, 8);
    expect(acc.data).toEqual(ref.data);
    expect(WasmArena.create(2 ** 32)).toBeNull();
    expect(() => arena.f64(1 << 20)).toThrow(/arena .* is full/);
  });

  it('hands out pieces past 2 GiB (box ≥ ~476 locally, ~356 in a worker) that the kernel reads and writes', async () => {
    const { tailOf } = await import('../src/recon/wasmVolume.js');
    // 3 GiB reserved, only the pages written are used.
    const arena = WasmArena.create(3 * 2 ** 30)!;
    const first = arena.f64(2 ** 28 + 7); // 2 GiB + 56 bytes
    expect(tailOf(first)).toBe(2 ** 31 + 128);
    const s = 16;
    const sh = 9;
    const acc = arena.accumulator(s);
    expect(acc.data.byteOffset).toBe(2 ** 31 + 128);
    expect(acc.weight.byteOffset).toBeGreaterThan(acc.data.byteOffset);
    expect(acc.weight.byteOffset % 64).toBe(0);
    const P = arena.f32(2 * sh * s);
    const Wt = arena.f32(sh * s);
    P.set(Float32Array.from({ length: 2 * sh * s }, (_, i) => Math.sin(i)));
    Wt.fill(1);
    const ref = createAccumulator(s);
    const M = eulerToMatrix(10, 20, 30);
    expect(arena.insert(acc, s, P, Wt, M, 8)).toBe(true);
    backprojectSlice(ref, s, P, Wt, M, 8);
    expect(bytes(acc.data).equals(bytes(ref.data))).toBe(true);
    expect(bytes(acc.weight).equals(bytes(ref.weight))).toBe(true);
  });
});

/** The bytes of a typed array: equal bytes, equal values (−0 and NaN payloads included). */
const bytes = (a: Float64Array | Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('WebAssembly FFT of the extraction', () => {
  it('gives rfft2’s spectra bit for bit at sizes with factors 2, 3 and 5 only, square or not', () => {
    const r = rng(5);
    let sizes = 0;
    for (const [w, h] of [[4, 4], [8, 8], [16, 16], [32, 32], [64, 64], [128, 128], [256, 256], [8, 32], [64, 16], [128, 2], [4, 64], [64, 1024], [6, 6], [12, 10], [96, 96], [160, 160], [30, 45], [200, 192]]) {
      const wh = (w >> 1) + 1;
      const arena = WasmArena.create(wasmRfftBytes(w, h) + 8 * w * h + 16 * wh * h + 1024)!;
      const fft = WasmRfft.create(arena, w, h);
      expect(fft, `${w}×${h}`).not.toBeNull();
      const input = arena.f64(w * h);
      const out = arena.f64(2 * wh * h);
      for (let rep = 0; rep < 3; rep++) {
        for (let i = 0; i < input.length; i++) input[i] = rep === 2 && i % 5 === 0 ? 0 : r() - 0.5;
        const want = rfft2(Float64Array.from(input), w, h);
        expect(fft!.forward(input, out)).toBe(out);
        expect(bytes(out).equals(bytes(want)), `${w}×${h}`).toBe(true);
      }
      sizes++;
    }
    expect(sizes).toBe(18);
  });

  it('is not made for other sizes (the JavaScript FFT does them): odd widths, prime factors above 5', () => {
    const arena = WasmArena.create(1 << 22)!;
    for (const [w, h] of [[7, 8], [9, 9], [14, 8], [8, 14], [2, 8], [22, 22], [98, 64]]) expect(WasmRfft.create(arena, w, h), `${w}×${h}`).toBeNull();
  });

  it('gives the extraction the spectra of the JavaScript FFT, bit for bit (and is used for a power-of-two box)', () => {
    const W = 200;
    const H = 150;
    const r = rng(8);
    const stack = Float32Array.from({ length: W * H }, () => r() - 0.5);
    for (const [s, s0, bin] of [[64, 64, 1], [32, 64, 2], [48, 48, 1], [28, 28, 1]]) {
      const arena = WasmArena.create(extractionArenaBytes(s0) + 1024)!;
      const inArena = new ExtractionWorkspace(s, s0, arena);
      const plain = new ExtractionWorkspace(s, s0);
      expect(inArena.fft !== null).toBe(s0 !== 28);
      const sh = (s >> 1) + 1;
      const a = new Float32Array(2 * sh * s);
      const b = new Float32Array(2 * sh * s);
      for (const [cx, cy] of [[100.3, 70.6], [3.2, 140.9], [190.5, 2.5]]) {
        extractFrameSpectrum(inArena, stack, 0, W, H, cx, cy, bin, true, a);
        extractFrameSpectrum(plain, stack, 0, W, H, cx, cy, bin, true, b);
        expect(bytes(a).equals(bytes(b))).toBe(true);
      }
    }
  });
});

/** Random CTF parameters over what tilt series have (and beyond: defocus to 8 µm, phase plates). */
function randomCtf(r: () => number, bfactor = 0): CtfParams {
  const defocusU = 3000 + 77000 * r();
  return {
    defocusU,
    defocusV: defocusU - 3000 + 6000 * r(),
    defocusAngle: 360 * r() - 180,
    voltage: [200, 300][Math.floor(2 * r())],
    cs: 0.01 + 4 * r(),
    q0: 0.2 * r(),
    bfactor,
    scale: 0.2 + r(),
    phaseShift: r() < 0.5 ? 0 : 180 * r(),
  };
}

describe('WebAssembly CTF·dose premultiplication', () => {
  it('computes sine() bit for bit (its sin, in float64)', () => {
    const r = rng(30);
    const n = 200_000;
    const arena = WasmArena.create(16 * n + 4096)!;
    const x = arena.f64(n);
    const out = arena.f64(n);
    for (let i = 0; i < n; i++) x[i] = (2 * r() - 1) * [SINE_LIMIT, 1e4, 300, 3, 1e-6][i % 5];
    x.set([0, -0, Math.PI, -Math.PI / 2, 1e-300, 5e-324, SINE_LIMIT, -SINE_LIMIT]);
    arena.sines(x, out);
    const ref = Float64Array.from(x, sine);
    expect(bytes(out).equals(bytes(ref))).toBe(true);
  });

  it('gives drawCtf’s CTF times the dose weights, on slice and weight, bit for bit, for any row limits, with even aberrations or not', () => {
    const r = rng(21);
    for (const [s, px] of [[16, 1.1], [33, 2], [64, 1.35], [96, 0.8], [128, 2]]) {
      const sh = (s >> 1) + 1;
      const arena = WasmArena.create(32 * sh * s + 4096)!;
      const P = arena.f32(2 * sh * s);
      const Wt = arena.f32(sh * s);
      const dose = arena.f32(sh * s);
      const ranges = arena.i32(s);
      const gamma0 = arena.f64(sh * s);
      const refP = new Float32Array(2 * sh * s);
      const refWt = new Float32Array(sh * s);
      const ctf = new Float32Array(sh * s);
      for (let trial = 0; trial < 12; trial++) {
        const k = ctfConstants(randomCtf(r));
        drawDoseWeightsFrom(doseExponents(s, px, 4 * r()), 100 * r(), dose);
        if (trial % 3 === 0) doseXRanges(s, dose, 0.01, ranges);
        // Limits past the row, zero, negative, odd and even.
        else for (let y = 0; y < s; y++) ranges[y] = Math.floor((sh + 4) * r()) - 2;
        for (let i = 0; i < P.length; i++) P[i] = refP[i] = r() - 0.5;
        Wt.fill(7);
        refWt.fill(7);
        const even = trial % 2 === 1 ? gamma0 : null;
        for (let i = 0; i < gamma0.length; i++) gamma0[i] = 6 * (r() - 0.5);
        expect(arena.ctfDose(P, Wt, dose, ranges, even, s, 1 / (s * px), k)).toBe(true);
        // processParticleFrame's JavaScript: drawCtf, then cw = f32(f32(−ctf)·dose), P *= cw, Wt = cw².
        drawCtf(k, s, px, ctf, even, ranges);
        for (let y = 0; y < s; y++) {
          for (let x = 0; x < sh; x++) {
            const i = y * sh + x;
            const cw = x < ranges[y] ? Math.fround(Math.fround(-ctf[i]) * dose[i]) : 0;
            refP[2 * i] = x < ranges[y] ? refP[2 * i] * cw : 0;
            refP[2 * i + 1] = x < ranges[y] ? refP[2 * i + 1] * cw : 0;
            refWt[i] = cw * cw;
          }
        }
        expect(bytes(P).equals(bytes(refP))).toBe(true);
        expect(bytes(Wt).equals(bytes(refWt))).toBe(true);
      }
    }
  });

  it('gives the particle kernel the JavaScript one’s sums bit for bit, with even aberrations too, and leaves B-factors to it', () => {
    const r = rng(4);
    const W = 120;
    const F = 5;
    const projections = [-50, -25, 0, 25, 50].map((tilt) => {
      const c = Math.cos((tilt * Math.PI) / 180);
      const si = Math.sin((tilt * Math.PI) / 180);
      return Float64Array.of(c, 0, si, W / 2 - (c * W) / 2 - si * 20, 0, 1, 0, 0, -si, 0, c, 0, 0, 0, 0, 1);
    });
    const stack = Float32Array.from({ length: W * W * F }, () => r() - 0.5);
    for (const [s, bfactor, even] of [[32, 0, false], [33, 0, false], [48, 0, false], [32, 25, false], [32, 0, true]] as const) {
      const opts: KernelOptions = {
        s,
        s0: s,
        bin: 1,
        doCtf: true,
        circleCrop: true,
        cutoffFraction: 0.01,
        outputPixelSize: 1.7,
        whiten: false,
        aberrations: even ? [aberrationTables([0.3, -0.2, 0.1, 0.05, -0.4, 0.2], null, s, 1.7)] : [],
      };
      const geometry: TomogramGeometry = {
        name: 'ts',
        imageW: W,
        imageH: W,
        frameCount: F,
        pixelSize: 1.7,
        hand: 1,
        defocusSlope: 1,
        bPerDose: 4,
        centre: [W / 2, W / 2, 20],
        projections,
        ctf: projections.map(() => randomCtf(r, bfactor)),
        dose: [0, 3, 6, 9, 12],
        deformation: null,
      };
      const tables = buildTomogramTables(opts, geometry, stack, null);
      const sh = (s >> 1) + 1;
      const arena = WasmArena.create(2 * 3 * 8 * sh * s * s + KernelWorkspace.arenaBytes(s, s, even ? 1 : 0) + 4096)!;
      const inArena = new KernelWorkspace(opts, arena);
      const plain = new KernelWorkspace(opts);
      const halvesW = [arena.accumulator(s), arena.accumulator(s)];
      const halvesJ = [createAccumulator(s), createAccumulator(s)];
      const len = particleRecordLength(F);
      const records = new Float64Array(6 * len);
      for (let p = 0; p < 6; p++) {
        packParticle(records, p * len, p % 2, 0, [W / 2 + 30 * (r() - 0.5), W / 2 + 30 * (r() - 0.5), 20 + 20 * (r() - 0.5)], eulerToMatrix(360 * r(), 180 * r(), 360 * r()), null, F);
      }
      for (let p = 0; p < 6; p++) {
        expect(processParticle(inArena, tables, records, p * len, halvesW)).toBe(processParticle(plain, tables, records, p * len, halvesJ));
      }
      for (const h of [0, 1]) {
        expect(bytes(halvesW[h].data).equals(bytes(halvesJ[h].data))).toBe(true);
        expect(bytes(halvesW[h].weight).equals(bytes(halvesJ[h].weight))).toBe(true);
      }
      expect(halvesJ[0].weight.some((v) => v !== 0)).toBe(true);
      // The WebAssembly path took the tilts' dose weights only when it could draw the CTF.
      expect(inArena.doseRow!.some((v) => v !== 0)).toBe(bfactor === 0);
    }
  });
});

describe('WebAssembly 3-D FFT of the finalisation', () => {
  it('gives rfft3’s and irfft3’s results bit for bit, in place and not, at sizes with factors 2, 3 and 5 only', () => {
    const r = rng(13);
    let cases = 0;
    for (const [w, h, d] of [[4, 4, 4], [8, 8, 8], [16, 16, 16], [32, 32, 32], [64, 64, 64], [8, 16, 32], [32, 8, 4], [16, 64, 2], [128, 128, 16], [12, 12, 12], [48, 48, 48], [20, 30, 18], [60, 15, 25]]) {
      const wh = (w >> 1) + 1;
      const n = w * h * d;
      const spectrum = 2 * wh * h * d;
      const arena = WasmArena.create(wasmRfftBytes(w, h, d) + 8 * (2 * spectrum + n) + 4096)!;
      const fft = WasmRfft.create(arena, w, h, d)!;
      expect(fft, `${w}×${h}×${d}`).not.toBeNull();
      const vol = arena.f64(spectrum); // a map in its first n doubles, or its spectrum
      const other = arena.f64(spectrum);
      const map = Float64Array.from({ length: n }, () => r() - 0.5);
      // Forward into another array.
      vol.set(map);
      const want = rfft3(map, w, h, d);
      expect(bytes(fft.forward(vol.subarray(0, n), other)).equals(bytes(want)), `forward ${w}×${h}×${d}`).toBe(true);
      // Forward in place (the spectrum over the map's own buffer, as divideByWeight does).
      vol.set(map);
      expect(bytes(fft.forward(vol.subarray(0, n), vol)).equals(bytes(want)), `forward in place ${w}×${h}×${d}`).toBe(true);
      // Inverse consuming its input: into another array, and in place (as griddingCorrect does).
      const spec = Float64Array.from({ length: spectrum }, () => r() - 0.5);
      const back = irfft3(spec, w, h, d);
      vol.set(spec);
      expect(bytes(fft.inverseDestroying(vol, other.subarray(0, n))).equals(bytes(back)), `inverse ${w}×${h}×${d}`).toBe(true);
      vol.set(spec);
      expect(bytes(fft.inverseDestroying(vol, vol.subarray(0, n))).equals(bytes(back)), `inverse in place ${w}×${h}×${d}`).toBe(true);
      cases++;
    }
    expect(cases).toBe(13);
  });
});
