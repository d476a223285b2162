/**
 * The same data in every input form tomorecon reads: RELION 5 stack (the V1 conformance set),
 * RELION 5 per-tilt image files, a RELION 4 tomogram set with projection matrices and pixel
 * coordinates, and float16 (mode 12) stacks. All must give the same maps.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StarBlock, StarTable, findBlock, formatStar, readStar } from '../src/formats/star.js';
import { encodeMrc, floatToHalf, readMrc, writeMrc } from '../src/formats/mrc.js';
import { readTomogramSet } from '../src/model/tomogramSet.js';
import { CONFORMANCE, runCli } from './helpers/paths.js';
import { pearson } from '../src/analysis/fsc.js';

const V1 = path.join(CONFORMANCE, 'V1');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-inputs-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const ARGS = ['--b', '32', '--bin', '2', '--j', '1'];

function block(name: string, kind: 'loop' | 'list', labels: string[], rows: string[][]): StarBlock {
  return { name, kind, labels, rows, rowLines: rows.map(() => 0), source: '' };
}

/** Copies V1's particles/motion (optionally rewritten) and runs reconstruct in `dir`. */
function reconstructIn(dir: string, tomograms: string, particles = 'particles.star'): string {
  const out = path.join(dir, 'out');
  const res = runCli(['reconstruct', '--p', particles, '--t', tomograms, '--mot', 'motion.star', ...ARGS, '--o', out], dir);
  expect(res.stderr).not.toMatch(/error/);
  expect(res.status).toBe(0);
  return out;
}

function expectSameMaps(a: string, b: string): void {
  for (const f of ['half1.mrc', 'half2.mrc', 'merged.mrc', 'weight_half1.mrc']) {
    const r = pearson(readMrc(path.join(a, f)).data, readMrc(path.join(b, f)).data);
    expect(r, `${f}: r = ${r}`).toBeGreaterThanOrEqual(0.9999);
  }
}

let reference = '';
const names = ['TS_01', 'TS_02'];

beforeAll(() => {
  const dir = path.join(tmp, 'r5stack');
  fs.cpSync(V1, dir, { recursive: true });
  reference = reconstructIn(dir, 'tomograms.star');
});

describe('input forms', () => {
  it('RELION 5 with one image file per tilt', () => {
    const dir = path.join(tmp, 'r5frames');
    fs.mkdirSync(path.join(dir, 'frames'), { recursive: true });
    fs.copyFileSync(path.join(V1, 'particles.star'), path.join(dir, 'particles.star'));
    fs.copyFileSync(path.join(V1, 'motion.star'), path.join(dir, 'motion.star'));
    fs.mkdirSync(path.join(dir, 'tilt_series'));
    for (const name of names) {
      const blocks = readStar(path.join(V1, 'tilt_series', `${name}.star`));
      const b = findBlock(blocks, name)!;
      const col = b.labels.indexOf('rlnMicrographName');
      const { header, data } = readMrc(path.join(V1, 'tilt_series', `${name}.mrcs`));
      const frame = header.nx * header.ny;
      b.rows.forEach((row, f) => {
        const file = `frames/${name}_${String(f).padStart(3, '0')}.mrc`;
        writeMrc(path.join(dir, file), data.subarray(f * frame, (f + 1) * frame), header.nx, header.ny, 1, 2);
        row[col] = file;
      });
      fs.writeFileSync(path.join(dir, 'tilt_series', `${name}.star`), formatStar([b]));
    }
    fs.copyFileSync(path.join(V1, 'tomograms.star'), path.join(dir, 'tomograms.star'));
    expectSameMaps(reference, reconstructIn(dir, 'tomograms.star'));
  });

  it('float16 (mode 12) stacks', () => {
    const dir = path.join(tmp, 'r5half');
    fs.cpSync(V1, dir, { recursive: true });
    for (const name of names) {
      const file = path.join(dir, 'tilt_series', `${name}.mrcs`);
      const { header, data } = readMrc(file);
      // Header from the float32 writer, mode patched to 12, data as IEEE half floats.
      const full = Buffer.from(encodeMrc(data, header.nx, header.ny, header.nz, 2));
      const out = Buffer.alloc(1024 + 2 * data.length);
      full.copy(out, 0, 0, 1024);
      out.writeInt32LE(12, 12);
      for (let i = 0; i < data.length; i++) out.writeUInt16LE(floatToHalf(data[i]), 1024 + 2 * i);
      fs.writeFileSync(file, out);
      expect(readMrc(file).header.mode).toBe(12);
    }
    expectSameMaps(reference, reconstructIn(dir, 'tomograms.star'));
  });

  it('4-bit (mode 101) stacks give the maps of the same values in float32', () => {
    // V1's tilts quantised to 16 levels, written once packed (mode 101) and once as float32.
    const packed = path.join(tmp, 'r5nibble');
    const plain = path.join(tmp, 'r5nibble-f32');
    for (const dir of [packed, plain]) fs.cpSync(V1, dir, { recursive: true });
    for (const name of names) {
      const { header, data } = readMrc(path.join(V1, 'tilt_series', `${name}.mrcs`));
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of data) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
      const q = Float32Array.from(data, (v) => Math.min(15, Math.floor(((v - lo) / (hi - lo)) * 16)));
      writeMrc(path.join(plain, 'tilt_series', `${name}.mrcs`), q, header.nx, header.ny, header.nz, 1);
      const full = Buffer.from(encodeMrc(q, header.nx, header.ny, header.nz, 1));
      const out = Buffer.alloc(1024 + q.length / 2);
      full.copy(out, 0, 0, 1024);
      out.writeInt32LE(101, 12);
      for (let i = 0; i < q.length; i += 2) out[1024 + i / 2] = q[i] | (q[i + 1] << 4);
      fs.writeFileSync(path.join(packed, 'tilt_series', `${name}.mrcs`), out);
      const back = readMrc(path.join(packed, 'tilt_series', `${name}.mrcs`)).data;
      expect(back.length).toBe(q.length);
      expect(back.every((v, i) => v === q[i])).toBe(true);
    }
    const a = reconstructIn(packed, 'tomograms.star');
    const b = reconstructIn(plain, 'tomograms.star');
    for (const f of ['half1.mrc', 'half2.mrc', 'merged.mrc']) {
      const [x, y] = [readMrc(path.join(a, f)).data, readMrc(path.join(b, f)).data];
      expect(pearson(x, y), f).toBeGreaterThanOrEqual(0.999999);
    }
  });

  it('RELION 4 tomogram set (projection matrices, one file) and pixel coordinates', () => {
    const dir = path.join(tmp, 'r4');
    fs.mkdirSync(dir);
    fs.cpSync(path.join(V1, 'tilt_series'), path.join(dir, 'tilt_series'), { recursive: true });
    fs.copyFileSync(path.join(V1, 'motion.star'), path.join(dir, 'motion.star'));
    // STAR paths are relative to the working directory, as in RELION.
    const cwd = process.cwd();
    process.chdir(V1);
    const set = readTomogramSet('tomograms.star');
    const loaded = set.tomograms.map((t) => set.load(t));
    process.chdir(cwd);
    const g = new StarTable(findBlock(readStar(path.join(V1, 'tomograms.star')), 'global')!);
    const global = block(
      'global',
      'loop',
      ['rlnTomoName', 'rlnTomoTiltSeriesName', 'rlnTomoFrameCount', 'rlnTomoSizeX', 'rlnTomoSizeY', 'rlnTomoSizeZ', 'rlnTomoHand',
        'rlnTomoTiltSeriesPixelSize', 'rlnVoltage', 'rlnSphericalAberration', 'rlnAmplitudeContrast'],
      loaded.map((t, i) => [
        t.name, `tilt_series/${t.name}.mrcs:mrcs`, String(t.frameCount), ...t.size.map(String), g.str(i, 'rlnTomoHand'),
        String(t.pixelSize), String(t.voltage), String(t.cs), String(t.q0),
      ]),
    );
    const perTomo = loaded.map((t) =>
      block(
        t.name,
        'loop',
        ['rlnTomoProjX', 'rlnTomoProjY', 'rlnTomoProjZ', 'rlnTomoProjW', 'rlnDefocusU', 'rlnDefocusV', 'rlnDefocusAngle', 'rlnCtfScalefactor', 'rlnMicrographPreExposure'],
        t.projections.map((P, f) => [
          ...[0, 1, 2, 3].map((r) => `[${Array.from(P.subarray(4 * r, 4 * r + 4)).map((v) => v.toPrecision(17)).join(',')}]`),
          String(t.ctf[f].defocusU), String(t.ctf[f].defocusV), String(t.ctf[f].defocusAngle), String(t.ctf[f].scale), String(t.dose[f]),
        ]),
      ),
    );
    fs.writeFileSync(path.join(dir, 'tomograms.star'), formatStar([global, ...perTomo]));
    // Particles with decentred pixel coordinates instead of centred Ångström.
    const pblocks = readStar(path.join(V1, 'particles.star'));
    const pb = findBlock(pblocks, 'particles')!;
    const labels = pb.labels.map((l) => l.replace(/^rlnCenteredCoordinate([XYZ])Angst$/, 'rlnCoordinate$1'));
    const rows = pb.rows.map((row) =>
      row.map((v, j) => {
        const m = /^rlnCenteredCoordinate([XYZ])Angst$/.exec(pb.labels[j]);
        if (!m) return v;
        const axis = 'XYZ'.indexOf(m[1]);
        const tomo = set.byName.get(row[pb.labels.indexOf('rlnTomoName')])!;
        return String(Number(v) / tomo.pixelSize + tomo.size[axis] / 2);
      }),
    );
    fs.writeFileSync(path.join(dir, 'particles.star'), formatStar(pblocks.map((b) => (b === pb ? { ...pb, labels, rows } : b))));
    expectSameMaps(reference, reconstructIn(dir, 'tomograms.star'));
  });
});

describe('tomograms without particles', () => {
  /** V1 in `dir` with only the particles of tomogram `keep` and without the images of `gone`. */
  function subset(dir: string, keep: string, gone: string): void {
    fs.mkdirSync(path.join(dir, 'tilt_series'), { recursive: true });
    for (const f of ['optimisation_set.star', 'motion.star', 'tomograms.star']) fs.symlinkSync(path.join(V1, f), path.join(dir, f));
    for (const name of names) {
      fs.symlinkSync(path.join(V1, 'tilt_series', `${name}.star`), path.join(dir, 'tilt_series', `${name}.star`));
      if (name !== gone) fs.symlinkSync(path.join(V1, 'tilt_series', `${name}.mrcs`), path.join(dir, 'tilt_series', `${name}.mrcs`));
    }
    const blocks = readStar(path.join(V1, 'particles.star'));
    const pb = findBlock(blocks, 'particles')!;
    const col = pb.labels.indexOf('rlnTomoName');
    const rows = pb.rows.filter((r) => r[col] === keep);
    expect(rows.length).toBeGreaterThan(0);
    fs.writeFileSync(path.join(dir, 'particles.star'), formatStar(blocks.map((b) => (b === pb ? { ...pb, rows } : b))));
  }

  it('need no images, as in RELION (a set may list tilt series whose images are gone)', () => {
    const dir = path.join(tmp, 'only-TS_01');
    subset(dir, 'TS_01', 'TS_02');
    const without = path.join(dir, 'out');
    const res = runCli(['reconstruct', '--i', 'optimisation_set.star', ...ARGS, '--o', without], dir);
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout).toContain('back-projected 1 tomogram(s)');
    // The same particles with TS_02's images there: the same maps.
    fs.symlinkSync(path.join(V1, 'tilt_series', 'TS_02.mrcs'), path.join(dir, 'tilt_series', 'TS_02.mrcs'));
    const withAll = path.join(dir, 'out-all');
    expect(runCli(['reconstruct', '--i', 'optimisation_set.star', ...ARGS, '--o', withAll], dir).status).toBe(0);
    expectSameMaps(without, withAll);
  });

  it('except tomogram 0, whose images RELION reads in any case', () => {
    const dir = path.join(tmp, 'only-TS_02');
    subset(dir, 'TS_02', 'TS_01');
    const res = runCli(['reconstruct', '--i', 'optimisation_set.star', ...ARGS, '--o', path.join(dir, 'out')], dir);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(/tilt_series\/TS_01\.mrcs/);
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });
});
