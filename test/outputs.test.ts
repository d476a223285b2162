/**
 * Finalisation on the threads of a finalisation pool writes the same files, byte for byte, as in
 * the calling thread; the checkpoint hook sees the sums before they are consumed; errors of a job
 * come back as they were thrown, after every other job has finished.
 * Imports the compiled engine from dist/ (built by the global setup) so that the threads can start.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/paths.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-outputs-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const { writeOutputs, mergedSums } = (await import(path.join(REPO, 'dist/src/engine/outputs.js'))) as typeof import('../src/engine/outputs.js');
const { insertionRuns } = (await import(path.join(REPO, 'dist/src/recon/insertion.js'))) as typeof import('../src/recon/insertion.js');
const { FinalisationPool } = (await import(path.join(REPO, 'dist/src/engine/finalisePool.js'))) as typeof import('../src/engine/finalisePool.js');
const { TomoError } = (await import(path.join(REPO, 'dist/src/errors.js'))) as typeof import('../src/errors.js');

type Halves = [{ data: Float64Array; weight: Float64Array }, { data: Float64Array; weight: Float64Array }];
const s = 16;
const n = (s / 2 + 1) * s * s;
function make(seed: number, shared = false): Halves {
  let a = seed;
  const r = (): number => (a = (a * 1103515245 + 12345) % 2147483648) / 2147483648;
  const array = (len: number, add: number): Float64Array => {
    const out = new Float64Array(shared ? new SharedArrayBuffer(8 * len) : new ArrayBuffer(8 * len));
    for (let i = 0; i < len; i++) out[i] = r() + add;
    return out;
  };
  return [0, 1].map(() => ({ data: array(2 * n, -0.5), weight: array(n, 0.1) })) as Halves;
}
const opts = (outDir: string, crop = 12) => ({ s, crop, taper: 3, snr: -1, pixelSize: 2, outDir });
const sum = (h: Halves): number => h.reduce((t, a) => t + a.data.reduce((x, y) => x + y, 0) + a.weight.reduce((x, y) => x + y, 0), 0);

/** Every file of `a` has the bytes of the same file in `b`, but for the date in the MRC label. */
function expectSameFiles(a: string, b: string): void {
  const files = fs.readdirSync(a).sort();
  expect(files).toEqual(fs.readdirSync(b).sort());
  for (const f of files) {
    const x = fs.readFileSync(path.join(a, f));
    const y = fs.readFileSync(path.join(b, f));
    expect(x.length, f).toBe(y.length);
    expect(Buffer.compare(x.subarray(0, 224), y.subarray(0, 224)), f).toBe(0);
    expect(Buffer.compare(x.subarray(304), y.subarray(304)), f).toBe(0);
  }
}

function dir(name: string): string {
  const d = path.join(tmp, name);
  fs.mkdirSync(d);
  return d;
}

describe('finalisation pool', () => {
  it('writes the same bytes as the calling thread, with 1 to 3 threads, ordinary or shared sums, cropped or not', async () => {
    const base = dir('main');
    const written: string[] = [];
    await writeOutputs(make(5), true, opts(base), null, { onWritten: (t) => written.push(t) });
    expect(written).toEqual(['merged', 'half1', 'half2']);
    expect(fs.readdirSync(base)).toHaveLength(12);
    for (const threads of [1, 2, 3]) {
      const pool = new FinalisationPool(threads);
      try {
        for (const shared of [false, true]) {
          const out = dir(`pool${threads}${shared ? 's' : ''}`);
          const tags: string[] = [];
          await writeOutputs(make(5, shared), true, opts(out), pool, { onWritten: (t) => tags.push(t) });
          expect(tags.sort()).toEqual(['half1', 'half2', 'merged']);
          expectSameFiles(base, out);
        }
        const uncropped = dir(`uncropped${threads}`);
        const ref = dir(`uncroppedRef${threads}`);
        await writeOutputs(make(6), false, opts(ref, -1), null);
        await writeOutputs(make(6), false, opts(uncropped, -1), pool);
        expect(fs.readdirSync(uncropped).sort()).toEqual(['data_merged.mrc', 'merged.mrc', 'weight_merged.mrc']);
        expectSameFiles(ref, uncropped);
      } finally {
        await pool.close();
      }
    }
  });

  it('saves the sums before they are consumed, while the merged map is finalised', async () => {
    const pool = new FinalisationPool(2);
    try {
      const halves = make(7);
      const expected = sum(make(7));
      let seen = NaN;
      await writeOutputs(halves, true, opts(dir('save')), pool, { saveSums: () => (seen = sum(halves)) });
      expect(seen).toBe(expected);
      // The ordinary buffers were handed over to the threads, not copied.
      expect(halves[0].data.length).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('a failing job fails the run with its TomoError; the pool stays usable', async () => {
    const pool = new FinalisationPool(2);
    try {
      const missing = path.join(tmp, 'no', 'such', 'dir');
      const err = await writeOutputs(make(8), true, opts(missing), pool).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TomoError);
      expect((err as Error).message).toMatch(/cannot write .*no\/such\/dir\/weight_(half1|half2|merged)\.mrc/);
      const out = dir('after');
      await writeOutputs(make(8), true, opts(out), pool);
      expect(fs.readdirSync(out)).toHaveLength(12);
      // Half-map spectra for the FSC, from the written files.
      const sp = await pool.spectrum(path.join(out, 'half1.mrc'));
      expect(sp.header.nx).toBe(12);
      expect(sp.spectrum.length).toBe(2 * 7 * 12 * 12);
      await expect(pool.spectrum(path.join(out, 'nope.mrc'))).rejects.toThrow(/cannot read MRC file/);
    } finally {
      await pool.close();
    }
    await expect(pool.spectrum('x')).rejects.toThrow(/closed/);
  });
});

describe('finalisation threads’ FFT', () => {
  it('runs in WebAssembly for sums in a WebAssembly memory of their own (box with factors 2, 3 and 5 only), in JavaScript otherwise, with the same files', async () => {
    const pool = new FinalisationPool(1);
    try {
      const [h] = make(7);
      const fft16 = dir('fft16');
      // Ordinary arrays: not copied anywhere, transformed in JavaScript.
      expect(await pool.maps('a', h, opts(fft16))).toBe('JavaScript');
      // Sums in a WebAssembly memory of their own (as the run makes them for a pool): transformed
      // where they are (consumed in place, no copy), with the files of the calling thread.
      const { wasmVolume } = (await import(path.join(REPO, 'dist/src/recon/wasmVolume.js'))) as typeof import('../src/recon/wasmVolume.js');
      const { writeTag } = (await import(path.join(REPO, 'dist/src/engine/outputs.js'))) as typeof import('../src/engine/outputs.js');
      const [g] = make(8);
      const vol = wasmVolume(s)!;
      expect(vol).not.toBeNull();
      vol.set(g.data);
      const mine = dir('volRef');
      writeTag('c', { data: Float64Array.from(g.data), weight: Float64Array.from(g.weight) }, opts(mine));
      const theirs = dir('vol');
      await pool.weight('c', Float64Array.from(g.weight), opts(theirs));
      expect(await pool.maps('c', { data: vol, weight: Float64Array.from(g.weight) }, opts(theirs))).toBe('WebAssembly');
      expect(vol.some((v, i) => v !== g.data[i])).toBe(true);
      expectSameFiles(mine, theirs);
      // The half maps' spectra on the thread, each transformed in a WebAssembly memory of its own
      // and handed over in it (shared, not copied): the numbers of the FSC computed here from
      // spectra made in JavaScript, exactly.
      const { compareSpectra, readMapSpectrum } = (await import(path.join(REPO, 'dist/src/analysis/fsc.js'))) as typeof import('../src/analysis/fsc.js');
      const fa = path.join(theirs, 'c.mrc');
      const fb = path.join(fft16, 'a.mrc');
      const [sa, sb] = await Promise.all([pool.spectrum(fa), pool.spectrum(fb)]);
      expect(sa.spectrum.buffer).toBeInstanceOf(SharedArrayBuffer);
      const n = sa.header.nx;
      expect(sa.spectrum.length).toBe(2 * ((n >> 1) + 1) * n * n);
      const onThread = compareSpectra(sa, sb);
      const here = compareSpectra(readMapSpectrum(fa), readMapSpectrum(fb));
      expect(Array.from(onThread.curve)).toEqual(Array.from(here.curve));
      expect(onThread.fsc0143).toBe(here.fsc0143);
      expect(here.curve.some((v) => Math.abs(v) < 0.9)).toBe(true); // two different maps
      const s2 = 14;
      const n2 = (s2 / 2 + 1) * s2 * s2;
      const odd = { data: new Float64Array(2 * n2).fill(0.5), weight: new Float64Array(n2).fill(1) };
      expect(await pool.maps('b', odd, { s: s2, crop: -1, taper: 2, snr: -1, pixelSize: 2, outDir: dir('fft12') })).toBe('JavaScript');
    } finally {
      await pool.close();
    }
  });
});

describe('merged sums', () => {
  it('over the insertion sphere only equal the whole-array sums, bit for bit, when the halves are zero outside it', () => {
    const sphere = insertionRuns(s, 1);
    // Halves with the random values of make() inside the sphere and zeros outside, as accumulated.
    const halves = make(9).map((h) => {
      const out = { data: new Float64Array(h.data.length), weight: new Float64Array(h.weight.length) };
      for (let r = 0; r < sphere.count; r++) {
        const [src, dst] = sphere.a[r] === 0 ? [h.data, out.data] : [h.weight, out.weight];
        dst.set(src.subarray(sphere.from[r], sphere.from[r] + sphere.len[r]), sphere.from[r]);
      }
      return out;
    }) as Halves;
    const whole = mergedSums(halves, false);
    const pieces = mergedSums(halves, true, sphere);
    expect(pieces.weight.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(pieces.data).toEqual(whole.data);
    expect(Array.from(pieces.weight)).toEqual(Array.from(whole.weight));
    // The sphere is a strict part of the arrays: values outside it would be missed.
    let inside = 0;
    for (let r = 0; r < sphere.count; r++) inside += sphere.len[r];
    expect(inside).toBeLessThan(0.7 * (halves[0].data.length + halves[0].weight.length));
  });
});
