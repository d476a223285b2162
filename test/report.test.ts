import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { fsc, resolutionAt } from '../src/analysis/fsc.js';
import { readMrc } from '../src/formats/mrc.js';
import { findBlock, readStar } from '../src/formats/star.js';
import { TomoError } from '../src/errors.js';
import { crc32, encodePng } from '../src/report/png.js';
import { Canvas, niceTicks, textWidth } from '../src/report/plot.js';
import { CURVE_COLOR, reportLayout, toGray8, writeRunReport, type Rect } from '../src/report/runReport.js';
import { runCli } from './helpers/paths.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const C1 = path.resolve(HERE, '../../shared/conformance/relion/V1/c1');

// ---------------------------------------------------------------- independent PNG decoder

/** Bitwise CRC-32 (no table), independent of the encoder's. */
function refCrc(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

interface Decoded {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
  chunkTypes: string[];
}

/** Decodes 8-bit non-interlaced greyscale / RGB PNGs, checking signature, chunk CRCs and layout. */
function decodePng(file: Uint8Array): Decoded {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  expect(Array.from(file.subarray(0, 8))).toEqual(sig);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let p = 8;
  const types: string[] = [];
  const idat: Uint8Array[] = [];
  let width = 0, height = 0, channels = 0;
  while (p < file.length) {
    const len = view.getUint32(p);
    const type = String.fromCharCode(...file.subarray(p + 4, p + 8));
    const payload = file.subarray(p + 8, p + 8 + len);
    const crc = view.getUint32(p + 8 + len);
    expect(crc, `CRC of ${type}`).toBe(refCrc(file.subarray(p + 4, p + 8 + len)));
    types.push(type);
    if (type === 'IHDR') {
      expect(len).toBe(13);
      const v = new DataView(payload.buffer, payload.byteOffset, 13);
      width = v.getUint32(0);
      height = v.getUint32(4);
      expect(payload[8]).toBe(8); // bit depth
      expect([0, 2]).toContain(payload[9]);
      channels = payload[9] === 2 ? 3 : 1;
      expect([payload[10], payload[11], payload[12]]).toEqual([0, 0, 0]);
    } else if (type === 'IDAT') {
      idat.push(payload);
    }
    p += 12 + len;
    if (type === 'IEND') break;
  }
  expect(p).toBe(file.length);
  expect(types[0]).toBe('IHDR');
  expect(types[types.length - 1]).toBe('IEND');
  const raw = new Uint8Array(zlib.inflateSync(Buffer.concat(idat)));
  const stride = width * channels;
  expect(raw.length).toBe(height * (stride + 1));
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    expect(f).toBeLessThanOrEqual(4);
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? out[y * stride + i - channels] : 0;
      const b = y > 0 ? out[(y - 1) * stride + i] : 0;
      const c = i >= channels && y > 0 ? out[(y - 1) * stride + i - channels] : 0;
      let pred = 0;
      if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) {
        const pp = a + b - c, pa = Math.abs(pp - a), pb = Math.abs(pp - b), pc = Math.abs(pp - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[y * stride + i] = (src[i] + pred) & 0xff;
    }
  }
  return { width, height, channels, data: out, chunkTypes: types };
}

function pixel(img: Decoded, x: number, y: number): [number, number, number] {
  const i = (y * img.width + x) * img.channels;
  return img.channels === 3 ? [img.data[i], img.data[i + 1], img.data[i + 2]] : [img.data[i], img.data[i], img.data[i]];
}

function regionStats(img: Decoded, r: Rect): { mean: number; variance: number; allGray: boolean } {
  let s = 0, s2 = 0, n = 0, allGray = true;
  for (let y = r.y; y < r.y + r.h; y++) {
    for (let x = r.x; x < r.x + r.w; x++) {
      const [R, G, B] = pixel(img, x, y);
      if (R !== G || G !== B) allGray = false;
      s += R;
      s2 += R * R;
      n++;
    }
  }
  const mean = s / n;
  return { mean, variance: s2 / n - mean * mean, allGray };
}

function countColor(img: Decoded, r: Rect, c: readonly number[]): number {
  let k = 0;
  for (let y = r.y; y < r.y + r.h; y++) {
    for (let x = r.x; x < r.x + r.w; x++) {
      const p = pixel(img, x, y);
      if (p[0] === c[0] && p[1] === c[1] && p[2] === c[2]) k++;
    }
  }
  return k;
}

function tempDirWith(files: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-report-'));
  for (const f of files) {
    fs.copyFileSync(path.join(C1, f), path.join(dir, f));
    fs.chmodSync(path.join(dir, f), 0o644);
  }
  return dir;
}

// ---------------------------------------------------------------- PNG encoder

describe('png encoder', () => {
  it('CRC-32 matches the standard check value and continues across buffers', () => {
    const text = new TextEncoder().encode('123456789');
    expect(crc32(text)).toBe(0xcbf43926);
    expect(crc32(text.subarray(4), crc32(text.subarray(0, 4)))).toBe(0xcbf43926);
    const rnd = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7919 + 13) & 0xff);
    expect(crc32(rnd)).toBe(refCrc(rnd));
  });

  it('round-trips random RGB and grayscale images of odd sizes', () => {
    let seed = 12345;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 24;
    };
    for (const [w, h, ch] of [[1, 1, 3], [1, 1, 1], [37, 23, 3], [64, 5, 1], [5, 64, 3], [200, 150, 3]] as const) {
      // Mix of noise and smooth ramps so every filter type gets used somewhere.
      const data = Uint8Array.from({ length: w * h * ch }, (_, i) => ((i >> 6) & 1 ? rand() : (i * 3) & 0xff));
      const png = encodePng({ width: w, height: h, channels: ch, data });
      const d = decodePng(png);
      expect([d.width, d.height, d.channels]).toEqual([w, h, ch]);
      expect(d.chunkTypes).toEqual(['IHDR', 'IDAT', 'IEND']);
      expect(Buffer.from(d.data).equals(Buffer.from(data))).toBe(true);
    }
  });

  it('rejects inconsistent input', () => {
    expect(() => encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(11) })).toThrow(RangeError);
    expect(() => encodePng({ width: 0, height: 2, channels: 1, data: new Uint8Array(0) })).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------- drawing helpers

describe('plot helpers', () => {
  it('draws text, rects and lines on a white canvas', () => {
    const cv = new Canvas(80, 20);
    expect(cv.getPixel(0, 0)).toEqual([255, 255, 255]);
    const w = cv.text(2, 2, 'FSC 0.143: 8.65 Å', [0, 0, 0]);
    expect(w).toBe(textWidth('FSC 0.143: 8.65 Å'));
    expect(w).toBe(17 * 6 - 1);
    let ink = 0;
    for (let i = 0; i < cv.data.length; i += 3) if (cv.data[i] === 0) ink++;
    expect(ink).toBeGreaterThan(50);
    cv.fillRect(-5, -5, 10, 10, [1, 2, 3]); // clipped, no throw
    expect(cv.getPixel(4, 4)).toEqual([1, 2, 3]);
    cv.line(0, 19, 79, 0, [9, 9, 9], 2, [3, 2]);
    cv.line(0, 0, 0, 0, [7, 7, 7]);
    expect(cv.getPixel(0, 0)).toEqual([7, 7, 7]);
  });

  it('picks readable tick steps', () => {
    expect(niceTicks(0, 0.25, 6)).toEqual({ step: 0.05, ticks: [0, 0.05, 0.1, 0.15, 0.2, 0.25], decimals: 2 });
    expect(niceTicks(-0.2, 1, 7).ticks).toEqual([-0.2, 0, 0.2, 0.4, 0.6, 0.8, 1]);
    const t = niceTicks(0, 0.1, 5);
    expect(t.step).toBe(0.025);
    expect(t.decimals).toBe(3);
  });

  it('scales slices between robust limits', () => {
    expect(Array.from(toGray8(new Float32Array([3, 3, 3])))).toEqual([128, 128, 128]);
    const ramp = Float32Array.from({ length: 101 }, (_, i) => i);
    ramp[100] = 1e9; // an outlier must not wash out the rest
    const g = toGray8(ramp);
    expect(g[1]).toBe(0);
    expect(g[50]).toBeGreaterThan(100);
    expect(g[50]).toBeLessThan(160);
    expect(g[99]).toBe(255);
  });

  it('scales exactly as sorting the finite values as an array does (NaN, ±Infinity, ±0 included)', () => {
    const reference = (values: Float32Array): Uint8Array => {
      const finite = Array.from(values).filter(Number.isFinite).sort((a, b) => a - b);
      const out = new Uint8Array(values.length);
      if (finite.length === 0) return out;
      const m = finite.length - 1;
      let lo = finite[Math.floor(0.01 * m)];
      let hi = finite[Math.ceil(0.99 * m)];
      if (!(hi > lo)) {
        lo = finite[0];
        hi = finite[m];
      }
      if (!(hi > lo)) return out.fill(128);
      const k = 255 / (hi - lo);
      for (let i = 0; i < values.length; i++) out[i] = Number.isFinite(values[i]) ? Math.max(0, Math.min(255, Math.round((values[i] - lo) * k))) : 0;
      return out;
    };
    let a = 7;
    const r = (): number => (a = (a * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5;
    const cases = [
      Float32Array.from({ length: 4096 }, r),
      Float32Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? -0 : i % 3 === 1 ? 0 : r())),
      Float32Array.from({ length: 200 }, (_, i) => [NaN, Infinity, -Infinity, -0, 0, r()][i % 6]),
      new Float32Array([NaN, NaN]),
      new Float32Array([-0, 0, -0]),
    ];
    for (const v of cases) expect(Array.from(toGray8(v))).toEqual(Array.from(reference(v)));
  });
});

// ---------------------------------------------------------------- run report

describe('run report on RELION V1/c1 maps', () => {
  let dir = '';
  let result: ReturnType<typeof writeRunReport>;

  beforeAll(() => {
    dir = tempDirWith(['half1.mrc', 'half2.mrc', 'merged.mrc']);
    result = writeRunReport(dir);
  });
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes fsc.json with the gold-standard FSC and resolutions', () => {
    expect(result.fscJson).toBe(path.join(dir, 'fsc.json'));
    const h1 = readMrc(path.join(C1, 'half1.mrc'));
    const h2 = readMrc(path.join(C1, 'half2.mrc'));
    const n = h1.header.nx;
    const px = h1.header.pixelSize[0];
    const curve = fsc(h1.data, h2.data, n);
    const j = JSON.parse(fs.readFileSync(result.fscJson!, 'utf8'));
    expect(j.box).toBe(n);
    expect(j.pixelSize).toBeCloseTo(px, 6);
    expect(j.halfMaps).toEqual(['half1.mrc', 'half2.mrc']);
    expect(j.createdBy).toMatch(/^tomorecon \d+\.\d+\.\d+/);
    expect(j.shells).toHaveLength(n / 2 + 1);
    expect(j.shells[0].resolution).toBeNull();
    expect(j.shells[1].resolution).toBeCloseTo(n * px, 9);
    j.shells.forEach((s: { shell: number; fsc: number }, i: number) => {
      expect(s.shell).toBe(i);
      expect(s.fsc).toBeCloseTo(curve[i], 12);
    });
    const r0143 = resolutionAt(curve, 0.143, n, px);
    expect(j.resolution0143).toBeCloseTo(r0143, 9);
    expect(result.resolution0143).toBeCloseTo(r0143, 9);
    expect(j.resolution05).toBeCloseTo(resolutionAt(curve, 0.5, n, px), 9);
    expect(j.resolution0143).toBeGreaterThan(2 * px);
    expect(j.resolution0143).toBeLessThan(j.resolution05);
  });

  it('agrees with `tomorecon fsc` on the half maps', () => {
    const r = runCli(['fsc', path.join(dir, 'half1.mrc'), path.join(dir, 'half2.mrc'), '--json'], dir);
    expect(r.status, r.stderr).toBe(0);
    const cli = JSON.parse(r.stdout);
    const j = JSON.parse(fs.readFileSync(result.fscJson!, 'utf8'));
    expect(j.resolution0143).toBeCloseTo(cli['fsc_0.143_A'], 3);
    expect(j.resolution05).toBeCloseTo(cli['fsc_0.5_A'], 3);
  });

  it('writes a RELION-style fsc.star', () => {
    expect(result.fscStar).toBe(path.join(dir, 'fsc.star'));
    const blocks = readStar(result.fscStar!);
    const loop = findBlock(blocks, 'fsc')!;
    expect(loop.kind).toBe('loop');
    expect(loop.labels).toEqual(['rlnSpectralIndex', 'rlnResolution', 'rlnAngstromResolution', 'rlnFourierShellCorrelation']);
    expect(loop.rows).toHaveLength(25);
    expect(loop.rows[0].slice(0, 3).map(Number)).toEqual([0, Number((1 / 999).toFixed(6)), 999]);
    expect(Number(loop.rows[2][2])).toBeCloseTo(48, 5); // 48·2 Å / 2
    expect(Number(loop.rows[2][1])).toBeCloseTo(1 / 48, 6);
    const general = findBlock(blocks, 'general')!;
    expect(general.kind).toBe('list');
    const k = general.labels.indexOf('rlnFinalResolution');
    expect(k).toBeGreaterThanOrEqual(0);
    expect(Number(general.rows[0][k])).toBeCloseTo(result.resolution0143!, 5);
  });

  it('writes report.png with three non-blank slices and the FSC curve', () => {
    const img = decodePng(new Uint8Array(fs.readFileSync(result.png)));
    const layout = reportLayout(48, 48, 48, true);
    expect([img.width, img.height]).toEqual([layout.width, layout.height]);
    expect([img.width, img.height]).toEqual([648, 730]);
    expect(img.channels).toBe(3);
    expect(pixel(img, 0, 0)).toEqual([255, 255, 255]);
    expect(pixel(img, img.width - 1, img.height - 1)).toEqual([255, 255, 255]);
    expect(layout.slices.map((s) => s.name)).toEqual(['XY', 'XZ', 'YZ']);
    for (const s of layout.slices) {
      expect(s.rect.w).toBeGreaterThanOrEqual(192);
      expect(s.rect.h).toBeGreaterThanOrEqual(192);
      const st = regionStats(img, s.rect);
      expect(st.allGray, s.name).toBe(true);
      expect(st.variance, s.name).toBeGreaterThan(500);
      expect(countColor(img, s.rect, CURVE_COLOR)).toBe(0);
    }
    // slices side by side, plot below them
    const [a, b, c] = layout.slices.map((s) => s.rect);
    expect(a.x + a.w).toBeLessThan(b.x);
    expect(b.x + b.w).toBeLessThan(c.x);
    const plot = layout.plot!;
    expect(plot.y).toBeGreaterThan(a.y + a.h);
    expect(countColor(img, plot, CURVE_COLOR)).toBeGreaterThan(200);
    // the curve spans the plot's width (the curve runs from shell 1 to Nyquist)
    const left = { x: plot.x, y: plot.y, w: Math.floor(plot.w / 4), h: plot.h };
    const right = { x: plot.x + plot.w - Math.floor(plot.w / 4), y: plot.y, w: Math.floor(plot.w / 4), h: plot.h };
    expect(countColor(img, left, CURVE_COLOR)).toBeGreaterThan(20);
    expect(countColor(img, right, CURVE_COLOR)).toBeGreaterThan(20);
  });

  it('overwrites an earlier report in place', () => {
    const again = writeRunReport(dir);
    expect(again).toEqual(result);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]); // no temporary files left
  });
});

describe('run report without half maps', () => {
  it('writes only report.png (slices and a note) and removes stale FSC files', () => {
    const dir = tempDirWith(['merged.mrc']);
    try {
      fs.writeFileSync(path.join(dir, 'fsc.json'), '{"stale":true}');
      fs.writeFileSync(path.join(dir, 'fsc.star'), 'data_fsc\n');
      const r = writeRunReport(dir);
      expect(r).toEqual({ fscJson: null, fscStar: null, png: path.join(dir, 'report.png'), resolution0143: null });
      expect(fs.existsSync(path.join(dir, 'fsc.json'))).toBe(false);
      expect(fs.existsSync(path.join(dir, 'fsc.star'))).toBe(false);
      const img = decodePng(new Uint8Array(fs.readFileSync(r.png)));
      const layout = reportLayout(48, 48, 48, false);
      expect(layout.plot).toBeNull();
      expect([img.width, img.height]).toEqual([layout.width, layout.height]);
      expect([img.width, img.height]).toEqual([648, 332]);
      for (const s of layout.slices) expect(regionStats(img, s.rect).variance).toBeGreaterThan(500);
      expect(countColor(img, { x: 0, y: 0, w: img.width, h: img.height }, CURVE_COLOR)).toBe(0);
      // the note under the slices has ink
      const note = { x: 0, y: layout.textY, w: img.width, h: 14 };
      expect(regionStats(img, note).variance).toBeGreaterThan(100);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails with a TomoError naming merged.mrc when it is missing', () => {
    const dir = tempDirWith(['half1.mrc', 'half2.mrc']);
    try {
      expect(() => writeRunReport(dir)).toThrow(TomoError);
      expect(() => writeRunReport(dir)).toThrow(/merged\.mrc/);
      expect(fs.existsSync(path.join(dir, 'report.png'))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ignores half maps of an earlier run when this run wrote none (no half sets)', () => {
    for (const present of [['half1.mrc', 'half2.mrc', 'merged.mrc'], ['half1.mrc', 'merged.mrc']]) {
      const dir = tempDirWith(present);
      try {
        fs.writeFileSync(path.join(dir, 'fsc.json'), '{"stale":true}');
        const r = writeRunReport(dir, undefined, { halfMaps: false });
        expect(r).toEqual({ fscJson: null, fscStar: null, png: path.join(dir, 'report.png'), resolution0143: null });
        expect(fs.existsSync(path.join(dir, 'fsc.json'))).toBe(false);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it('fails with a TomoError when only one half map exists', () => {
    const dir = tempDirWith(['half1.mrc', 'merged.mrc']);
    try {
      expect(() => writeRunReport(dir)).toThrow(/half2\.mrc/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
