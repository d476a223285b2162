/** firstNonFinite (src/formats/finite.ts) against Number.isFinite pixel by pixel. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FrameReader } from '../src/distributed/frames.js';
import { firstNonFinite } from '../src/formats/finite.js';
import { writeMrc } from '../src/formats/mrc.js';
import { rng } from './helpers/random.js';

const naive = (a: Float32Array | Float64Array): number => a.findIndex((x) => !Number.isFinite(x));

describe('firstNonFinite', () => {
  it('finds the first NaN or ±∞ wherever it is, in images of any length, float32 and float64', () => {
    const r = rng(7);
    const odd = [0, Number.MAX_VALUE, -Number.MAX_VALUE, 3.4e38, -0, 5e-324, 1e-45];
    for (let t = 0; t < 400; t++) {
      const n = 1 + Math.floor(r() * 70);
      const a = t % 2 ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) a[i] = r() < 0.2 ? odd[Math.floor(r() * odd.length)] : (r() - 0.5) * 1e6;
      const bad = Math.floor(r() * 4); // 0–3 non-finite values
      for (let k = 0; k < bad; k++) a[Math.floor(r() * n)] = [Number.NaN, Infinity, -Infinity][k % 3];
      expect(firstNonFinite(a), `case ${t}`).toBe(naive(a));
    }
  });
});

describe('tilt frames read by a worker (FrameReader)', () => {
  it('names the file, section, tilt and pixel of a non-finite value', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-finite-'));
    try {
      const W = 9;
      const H = 5;
      const data = new Float32Array(W * H * 3).map((_, i) => Math.sin(i));
      data[2 * W * H + 3 * W + 7] = -Infinity; // section 2, x = 7, y = 3
      const file = path.join(dir, 'ts.mrcs');
      writeMrc(file, data, W, H, 3, 1);
      const reader = new FrameReader();
      const out = new Float32Array(W * H);
      reader.readInto({ path: file, section: 1 }, out, W, H, 'TS_9', 1);
      expect(Array.from(out)).toEqual(Array.from(data.subarray(W * H, 2 * W * H)));
      expect(() => reader.readInto({ path: file, section: 2 }, out, W, H, 'TS_9', 4)).toThrow(
        `${file}: section 3 (tilt 5 of TS_9) has a non-finite pixel (-Infinity) at x=7, y=3`,
      );
      reader.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
