import { describe, it, expect, vi, beforeAll, afterAll, afterEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TomoError } from '../src/errors.js';
import {
  readMrcHeader,
  readMrc,
  readMrcSections,
  writeMrc,
  encodeMrc,
  halfToFloat,
  floatToHalf,
} from '../src/formats/mrc.js';
import { writeFileAtomic } from '../src/formats/atomicWrite.js';
import { tomoError } from './helpers/errors.js';

const TS01 = '/work/shared/conformance/V1/tilt_series/TS_01.mrcs';
const MERGED = '/work/shared/conformance/relion/V1/c1/merged.mrc';

let dir = '';
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mrc-test-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});


const SIZE: Record<number, number> = { 0: 1, 1: 2, 2: 4, 6: 2, 12: 2, 101: 0.5 };

interface Spec {
  nx: number;
  ny: number;
  nz: number;
  mode: number;
  le?: boolean;
  nsymbt?: number;
  cella?: [number, number, number];
}

/** Builds an MRC file by hand: header + extended header filled with 0xEE + values in the given mode/byte order. */
function buildMrc(name: string, s: Spec, values: ArrayLike<number>, truncateTo?: number): string {
  const le = s.le ?? true;
  const ext = s.nsymbt ?? 0;
  const bpv = SIZE[s.mode] ?? 4;
  const buf = new Uint8Array(1024 + ext + Math.ceil(values.length * bpv));
  const dv = new DataView(buf.buffer);
  [s.nx, s.ny, s.nz, s.mode].forEach((v, k) => dv.setInt32(4 * k, v, le));
  [s.nx, s.ny, s.nz].forEach((v, k) => dv.setInt32(28 + 4 * k, v, le));
  (s.cella ?? [s.nx, s.ny, s.nz]).forEach((v, k) => dv.setFloat32(40 + 4 * k, v, le));
  dv.setInt32(92, ext, le);
  buf.fill(0xee, 1024, 1024 + ext);
  const o = 1024 + ext;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (s.mode === 101) buf[o + (i >> 1)] |= (v & 15) << (4 * (i & 1)); // low nibble first
    else if (s.mode === 0) dv.setInt8(o + i, v);
    else if (s.mode === 1) dv.setInt16(o + 2 * i, v, le);
    else if (s.mode === 6 || s.mode === 12) dv.setUint16(o + 2 * i, v, le);
    else dv.setFloat32(o + 4 * i, v, le);
  }
  const file = path.join(dir, name);
  fs.writeFileSync(file, truncateTo === undefined ? buf : buf.subarray(0, truncateTo));
  return file;
}

describe('MRC write/read', () => {
  it('round trips float32 data with RELION header fields', () => {
    const [nx, ny, nz] = [5, 4, 3];
    const src = Float64Array.from({ length: nx * ny * nz }, (_, i) => Math.sin(i * 0.7) * 10 + 0.1234567891);
    const file = path.join(dir, 'rt.mrc');
    writeMrc(file, src, nx, ny, nz, 1.5);

    const { header, data } = readMrc(file);
    expect(header).toEqual({
      path: file, nx, ny, nz, mode: 2, pixelSize: [1.5, 1.5, 1.5], dataOffset: 1024, littleEndian: true, fileSize: 1024 + 4 * 60,
    });
    expect(data).toEqual(Float32Array.from(src));

    const raw = fs.readFileSync(file);
    const f = (o: number): number => raw.readFloatLE(o);
    const i = (o: number): number => raw.readInt32LE(o);
    expect([i(28), i(32), i(36)]).toEqual([5, 4, 3]);
    expect([f(40), f(44), f(48)]).toEqual([7.5, 6, 4.5]);
    expect([f(52), f(56), f(60)]).toEqual([90, 90, 90]);
    expect([i(64), i(68), i(72)]).toEqual([1, 2, 3]);
    expect([i(16), i(20), i(24), i(88), i(92)]).toEqual([0, 0, 0, 0, 0]);
    expect([f(196), f(200), f(204)]).toEqual([0, 0, 0]);
    expect(raw.subarray(208, 216)).toEqual(Buffer.from([0x4d, 0x41, 0x50, 0x20, 0x44, 0x41, 0, 0]));
    expect(i(220)).toBe(1);
    expect(raw.subarray(224, 304).toString('latin1')).toMatch(/^tomorecon\s+\d\d-\w{3}-\d\d\s+\d\d:\d\d:\d\d\0+$/);

    // statistics of the float32 values actually written
    const vals = Array.from(data);
    const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
    const std = Math.sqrt(vals.reduce((a, b) => a + (b - mean) ** 2, 0) / (vals.length - 1));
    expect(f(76)).toBe(Math.fround(Math.min(...vals)));
    expect(f(80)).toBe(Math.fround(Math.max(...vals)));
    expect(f(84)).toBeCloseTo(mean, 5);
    expect(f(216)).toBeCloseTo(std, 5);
  });

  it('header statistics stay exact to float32 for a large mean over a small spread', () => {
    const n = 10_007; // not a multiple of 4
    const data = Float64Array.from({ length: n }, (_, i) => 1000 + 1e-3 * Math.sin(i * 0.37));
    const dv = new DataView(encodeMrc(data, n, 1, 1, 1).buffer);
    const v32 = Array.from(data, (x) => Math.fround(x));
    const mean = v32.reduce((a, b) => a + b, 0) / n;
    const std = Math.sqrt(v32.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
    expect(Math.abs(dv.getFloat32(84, true) - mean)).toBeLessThanOrEqual(mean * 2 ** -23);
    expect(Math.abs(dv.getFloat32(216, true) - std)).toBeLessThanOrEqual(std * 2 ** -20);
  });

  it('single voxel: rms 0; size mismatch is a programming error', () => {
    const bytes = encodeMrc(new Float32Array([3]), 1, 1, 1, 2);
    expect(bytes.length).toBe(1028);
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    expect(dv.getFloat32(216, true)).toBe(0);
    expect(dv.getFloat32(84, true)).toBe(3);
    expect(() => encodeMrc(new Float32Array(5), 2, 2, 1, 1)).toThrow(RangeError);
  });

  it('writeMrc writes encodeMrc’s bytes without copying: float64 through a scratch buffer, float32 (also a view) as it is', () => {
    const [nx, ny, nz] = [7, 5, 3];
    const n = nx * ny * nz;
    const f64 = Float64Array.from({ length: n }, (_, i) => Math.cos(i * 1.3) * 100 + 1e-3 * i);
    const backing = new Float32Array(n + 10);
    const f32 = backing.subarray(4, 4 + n);
    f32.set(f64);
    // The straightforward statistics of the float32 values, in order: mean, then the sum of
    // squared deviations (the header has them as float32: equal to one float32 step).
    const v32 = Array.from(f64, (x) => Math.fround(x));
    const mean = v32.reduce((a, b) => a + b, 0) / n;
    const m2 = v32.reduce((a, b) => a + (b - mean) ** 2, 0);
    const close = (got: number, want: number): boolean => Math.abs(got - want) <= Math.abs(want) * 2 ** -23;
    const scratch = new Float32Array(n + 3).fill(7);
    for (const [name, data, extra] of [['a', f64, scratch], ['b', f64, undefined], ['c', f32, undefined]] as const) {
      const file = path.join(dir, `nocopy-${name}.mrc`);
      writeMrc(file, data, nx, ny, nz, 1.25, extra);
      const raw = fs.readFileSync(file);
      const ref = Buffer.from(encodeMrc(data, nx, ny, nz, 1.25));
      expect(raw.length, name).toBe(ref.length);
      expect(Buffer.compare(raw.subarray(0, 224), ref.subarray(0, 224)), name).toBe(0);
      expect(Buffer.compare(raw.subarray(304), ref.subarray(304)), name).toBe(0);
      expect(close(raw.readFloatLE(84), mean), `${name}: mean ${raw.readFloatLE(84)} vs ${mean}`).toBe(true);
      expect(close(raw.readFloatLE(216), Math.sqrt(m2 / (n - 1))), `${name}: rms`).toBe(true);
      expect(raw.readFloatLE(76), name).toBe(Math.min(...v32));
      expect(raw.readFloatLE(80), name).toBe(Math.max(...v32));
    }
    expect(scratch[n]).toBe(7); // only the first n values of the scratch are used
    expect(() => writeMrc(path.join(dir, 'x.mrc'), f64, nx, ny, nz, 1, new Float32Array(n - 1))).toThrow(RangeError);
  });

  it('overwrites an existing file and leaves no temp files', () => {
    const file = path.join(dir, 'over.mrc');
    fs.writeFileSync(file, 'old');
    writeMrc(file, new Float32Array(8).fill(1), 2, 2, 2, 1);
    expect(readMrc(file).data).toEqual(new Float32Array(8).fill(1));
    expect(fs.readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });
});

describe('MRC: real files', () => {
  it('TS_01.mrcs header and section reads', () => {
    const h = readMrcHeader(TS01);
    expect([h.nx, h.ny, h.nz, h.mode]).toEqual([320, 320, 31, 2]);
    expect(h.pixelSize).toEqual([2, 2, 2]);
    expect(h.littleEndian).toBe(true);
    expect(h.dataOffset).toBe(1024);
    const all = readMrc(TS01).data;
    expect(all.length).toBe(320 * 320 * 31);
    const sec = readMrcSections(TS01, 5, 2);
    expect(sec).toEqual(all.subarray(5 * 320 * 320, 7 * 320 * 320));
    expect(readMrcSections(TS01, 30, 1, h)).toEqual(all.subarray(30 * 320 * 320));
    expect(readMrcSections(TS01, 3, 0).length).toBe(0);
    expect(tomoError(() => readMrcSections(TS01, 30, 2, h))).toMatch(/TS_01\.mrcs: sections 30 to 31 requested.*0 to 30/);
    expect(tomoError(() => readMrcSections(TS01, -1, 1, h))).toMatch(/sections -1 to -1/);
  });

  it('section reads use positioned reads, not a whole-file read', () => {
    const readSpy = vi.spyOn(fs, 'readSync');
    const wholeSpy = vi.spyOn(fs, 'readFileSync');
    readMrcSections(TS01, 5, 2);
    expect(wholeSpy).not.toHaveBeenCalled();
    const requested = readSpy.mock.calls.reduce((s, c) => s + ((c as unknown[])[3] as number), 0);
    expect(requested).toBe(1024 + 2 * 320 * 320 * 4);
  });

  it('a RELION-written volume', () => {
    const { header, data } = readMrc(MERGED);
    expect([header.nx, header.ny, header.nz, header.mode]).toEqual([48, 48, 48, 2]);
    expect(header.pixelSize).toEqual([2, 2, 2]);
    const raw = fs.readFileSync(MERGED);
    expect(Math.max(...data)).toBe(raw.readFloatLE(80));
  });
});

describe('float16', () => {
  it('decodes known bit patterns', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x03ff)).toBe(1023 * 2 ** -24);
    expect(halfToFloat(0x0400)).toBe(2 ** -14);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0xfc00)).toBe(-Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true);
    expect(halfToFloat(0x3555)).toBeCloseTo(1 / 3, 3);
  });

  it('encodes with round-to-nearest-even, overflow and subnormals', () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(-2)).toBe(0xc000);
    expect(floatToHalf(65504)).toBe(0x7bff);
    expect(floatToHalf(65519)).toBe(0x7bff);
    expect(floatToHalf(65520)).toBe(0x7c00); // rounds up to inf
    expect(floatToHalf(1e10)).toBe(0x7c00);
    expect(floatToHalf(-Infinity)).toBe(0xfc00);
    expect(floatToHalf(2 ** -24)).toBe(0x0001);
    expect(floatToHalf(2 ** -25)).toBe(0x0000); // tie -> even (0)
    expect(floatToHalf(1.5 * 2 ** -25)).toBe(0x0001);
    expect(floatToHalf(3 * 2 ** -25)).toBe(0x0002); // tie 1.5 ulp -> even (2)
    expect(floatToHalf(1e-10)).toBe(0);
    expect(floatToHalf(-0)).toBe(0x8000);
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even
    expect(floatToHalf(1023.9 * 2 ** -24)).toBe(0x03ff + 1); // subnormal rounds up into the normals
    const nan = floatToHalf(NaN);
    expect((nan & 0x7c00) === 0x7c00 && (nan & 0x3ff) !== 0).toBe(true);
  });

  it('every non-NaN half round trips', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff)) continue;
      if (floatToHalf(halfToFloat(h)) !== h) throw new Error(`half 0x${h.toString(16)} does not round trip`);
    }
  });

  it('reads a mode-12 file', () => {
    const bits = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x0000];
    const file = buildMrc('half.mrc', { nx: 3, ny: 2, nz: 1, mode: 12 }, bits);
    const { header, data } = readMrc(file);
    expect(header.mode).toBe(12);
    expect(Array.from(data)).toEqual([1, -2, 65504, 2 ** -24, Infinity, 0]);
  });
});

describe('MRC integer modes, byte order, extended header', () => {
  it('mode 0 is signed int8', () => {
    const v = [-128, -1, 0, 1, 127, 5];
    expect(Array.from(readMrc(buildMrc('m0.mrc', { nx: 2, ny: 3, nz: 1, mode: 0 }, v)).data)).toEqual(v);
  });

  it('mode 1 is int16', () => {
    const v = [-32768, -2, 0, 3, 32767, 1000, -1000, 7];
    expect(Array.from(readMrc(buildMrc('m1.mrc', { nx: 2, ny: 2, nz: 2, mode: 1 }, v)).data)).toEqual(v);
  });

  it('mode 101 is 4-bit, two voxels per byte, the low nibble first', () => {
    const v = Array.from({ length: 24 }, (_, i) => (i * 7) % 16);
    const f = buildMrc('m101.mrc', { nx: 4, ny: 3, nz: 2, mode: 101 }, v);
    const h = readMrcHeader(f);
    expect([h.mode, h.fileSize]).toEqual([101, 1024 + 12]);
    expect(Array.from(readMrc(f).data)).toEqual(v);
    expect(Array.from(readMrcSections(f, 1, 1, h))).toEqual(v.slice(12));
    // A byte 0x21 is the voxels 1, 2 in that order.
    fs.writeFileSync(f, Buffer.concat([fs.readFileSync(f).subarray(0, 1024), Buffer.from([0x21, 0xf0]), Buffer.alloc(10)]));
    expect(Array.from(readMrc(f).data).slice(0, 4)).toEqual([1, 2, 0, 15]);
    const odd = buildMrc('m101odd.mrc', { nx: 3, ny: 3, nz: 1, mode: 101 }, new Array(9).fill(0));
    expect(tomoError(() => readMrcHeader(odd))).toMatch(/mode 101 \(4-bit\) needs an even number of pixels per section, not 3 x 3/);
  });

  it('mode 6 is uint16', () => {
    const v = [0, 1, 32768, 65535];
    expect(Array.from(readMrc(buildMrc('m6.mrc', { nx: 4, ny: 1, nz: 1, mode: 6 }, v)).data)).toEqual(v);
  });

  it('big-endian files are detected and swapped', () => {
    const v = [1.5, -2.25, 3e5, -7e-3, 0, 42];
    const f = buildMrc('be2.mrc', { nx: 3, ny: 1, nz: 2, mode: 2, le: false, cella: [6, 3, 8] }, v);
    const { header, data } = readMrc(f);
    expect(header.littleEndian).toBe(false);
    expect([header.nx, header.ny, header.nz, header.mode]).toEqual([3, 1, 2, 2]);
    expect(header.pixelSize).toEqual([2, 3, 4]);
    expect(data).toEqual(Float32Array.from(v));
    expect(readMrcSections(f, 1, 1)).toEqual(Float32Array.from(v.slice(3)));

    const i16 = [-300, 2, 32767, -32768];
    const g = buildMrc('be1.mrc', { nx: 2, ny: 2, nz: 1, mode: 1, le: false }, i16);
    expect(Array.from(readMrc(g).data)).toEqual(i16);
  });

  it('skips the extended header (nsymbt)', () => {
    const v = Array.from({ length: 12 }, (_, i) => i - 5.5);
    const f = buildMrc('ext.mrc', { nx: 2, ny: 2, nz: 3, mode: 2, nsymbt: 3072 }, v);
    const h = readMrcHeader(f);
    expect(h.dataOffset).toBe(4096);
    expect(readMrc(f).data).toEqual(Float32Array.from(v));
    expect(readMrcSections(f, 2, 1, h)).toEqual(Float32Array.from(v.slice(8)));
  });

  it('pixel size is 0 when mx or cella is 0', () => {
    const f = buildMrc('px0.mrc', { nx: 2, ny: 1, nz: 1, mode: 2, cella: [0, 5, 1] }, [1, 2]);
    expect(readMrcHeader(f).pixelSize).toEqual([0, 5, 1]);
  });
});

describe('MRC errors', () => {
  it('truncated data names expected and actual sizes', () => {
    const f = buildMrc('trunc.mrc', { nx: 4, ny: 4, nz: 2, mode: 2 }, new Array(32).fill(0), 1124);
    expect(tomoError(() => readMrc(f))).toBe(`${f}: truncated MRC file: 4 x 4 x 2 voxels of mode 2 need 1152 bytes, file has 1124`);
    expect(tomoError(() => readMrcSections(f, 0, 1))).toMatch(/truncated/);
  });

  it('complex and unknown modes', () => {
    const f4 = buildMrc('m4.mrc', { nx: 2, ny: 2, nz: 1, mode: 4 }, []);
    expect(tomoError(() => readMrcHeader(f4))).toBe(`${f4}: complex MRC mode 4 not supported (only real-space images)`);
    const f3 = buildMrc('m3.mrc', { nx: 2, ny: 2, nz: 1, mode: 3 }, []);
    expect(tomoError(() => readMrc(f3))).toMatch(/complex MRC mode 3/);
    const f7 = buildMrc('m7.mrc', { nx: 2, ny: 2, nz: 1, mode: 7 }, []);
    expect(tomoError(() => readMrc(f7))).toMatch(/unsupported MRC mode 7/);
  });

  it('tiny, missing, bad dimensions, oversized extended header', () => {
    const tiny = path.join(dir, 'tiny.mrc');
    fs.writeFileSync(tiny, Buffer.alloc(100));
    expect(tomoError(() => readMrcHeader(tiny))).toBe(`${tiny}: not an MRC file: 100 bytes, shorter than the 1024-byte header`);
    expect(tomoError(() => readMrc(path.join(dir, 'nope.mrc')))).toMatch(/^cannot read MRC file .*nope\.mrc: no such file or directory/);
    expect(tomoError(() => readMrc(dir))).toMatch(/not a regular file/);
    const zero = buildMrc('zero.mrc', { nx: 2, ny: 0, nz: 1, mode: 2 }, []);
    expect(tomoError(() => readMrc(zero))).toMatch(/dimensions 2 x 0 x 1/);
    const ext = buildMrc('bigext.mrc', { nx: 1, ny: 1, nz: 1, mode: 2, nsymbt: 16 }, [1], 1030);
    expect(tomoError(() => readMrc(ext))).toMatch(/extended header of 16 bytes.*1030-byte file/);
  });
});

describe('atomic write', () => {
  const sysErr = (code: string, text: string): Error => Object.assign(new Error(`${code}: ${text}, write`), { code });

  it('missing target directory', () => {
    const target = path.join(dir, 'no-such-dir', 'x.mrc');
    expect(tomoError(() => writeFileAtomic(target, 'data'))).toBe(`cannot write ${target}: no such file or directory (ENOENT)`);
  });

  it('write failure (e.g. disk full) leaves the existing file untouched and no temp file', () => {
    const sub = fs.mkdtempSync(path.join(dir, 'full-'));
    const target = path.join(sub, 'out.mrc');
    fs.writeFileSync(target, 'precious');
    vi.spyOn(fs, 'writeSync').mockImplementation(() => {
      throw sysErr('ENOSPC', 'no space left on device');
    });
    expect(tomoError(() => writeMrc(target, new Float32Array(8), 2, 2, 2, 1))).toBe(
      `cannot write ${target}: no space left on device (ENOSPC)`,
    );
    vi.restoreAllMocks();
    expect(fs.readFileSync(target, 'utf8')).toBe('precious');
    expect(fs.readdirSync(sub)).toEqual(['out.mrc']);
  });

  it('rename failure (target is a directory) removes the temp file', () => {
    const sub = fs.mkdtempSync(path.join(dir, 'ren-'));
    const target = path.join(sub, 'out.mrc');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'inside'), 'x');
    expect(tomoError(() => writeFileAtomic(target, 'data'))).toMatch(new RegExp(`^cannot write ${target}: `));
    expect(fs.readdirSync(sub)).toEqual(['out.mrc']);
  });

  it('deferred: the target keeps its content until the fsync and rename are done; failures remove the temp file', async () => {
    const { writeFileAtomicDeferred } = await import('../src/formats/atomicWrite.js');
    const sub = fs.mkdtempSync(path.join(dir, 'deferred-'));
    const target = path.join(sub, 'out.mrc');
    fs.writeFileSync(target, 'precious');
    const done = writeFileAtomicDeferred(target, [Buffer.from('new '), Buffer.from('bytes')]);
    // Written already (the buffers are free again), not yet in place.
    expect(fs.readFileSync(target, 'utf8')).toBe('precious');
    expect(fs.readdirSync(sub)).toHaveLength(2);
    await done;
    expect(fs.readFileSync(target, 'utf8')).toBe('new bytes');
    expect(fs.readdirSync(sub)).toEqual(['out.mrc']);
    // A failure to create the file is thrown at once; one of the rename comes with the promise.
    const missing = path.join(sub, 'no-such-dir', 'x.mrc');
    expect(tomoError(() => writeFileAtomicDeferred(missing, [Buffer.from('x')]))).toBe(`cannot write ${missing}: no such file or directory (ENOENT)`);
    const dirTarget = path.join(sub, 'd');
    fs.mkdirSync(dirTarget);
    fs.writeFileSync(path.join(dirTarget, 'inside'), 'x');
    await expect(writeFileAtomicDeferred(dirTarget, [Buffer.from('x')])).rejects.toThrow(new RegExp(`^cannot write ${dirTarget}: `));
    expect(fs.readdirSync(sub).sort()).toEqual(['d', 'out.mrc']);
  });

  it.skipIf(process.getuid?.() === 0)('unwritable directory', () => {
    const sub = fs.mkdtempSync(path.join(dir, 'ro-'));
    const target = path.join(sub, 'out.star');
    fs.writeFileSync(target, 'precious');
    fs.chmodSync(sub, 0o555);
    try {
      expect(tomoError(() => writeFileAtomic(target, 'new'))).toMatch(/permission denied \(EACCES\)/);
      expect(fs.readFileSync(target, 'utf8')).toBe('precious');
      expect(fs.readdirSync(sub)).toEqual(['out.star']);
    } finally {
      fs.chmodSync(sub, 0o755);
    }
  });
});
