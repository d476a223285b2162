/**
 * Bad input never crashes tomorecon or loses output: every case below gives one clear message
 * naming the file / label / value, exit status 1, no stack trace, and leaves an existing map in
 * the output directory untouched. README.md lists each case with the message (checked below).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONFORMANCE, REPO, runCli } from './helpers/paths.js';

const V1 = path.join(CONFORMANCE, 'V1');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-robust-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const OLD = 'a map from last week';
let n = 0;

/** A private copy of V1: STAR files copied (to be edited), stacks linked unless `copyStacks`. */
function dataset(copyStacks = false): string {
  const dir = path.join(tmp, `ds${n++}`);
  fs.mkdirSync(path.join(dir, 'tilt_series'), { recursive: true });
  for (const f of ['optimisation_set.star', 'particles.star', 'tomograms.star', 'motion.star']) {
    fs.copyFileSync(path.join(V1, f), path.join(dir, f));
  }
  for (const ts of ['TS_01', 'TS_02']) {
    fs.copyFileSync(path.join(V1, 'tilt_series', `${ts}.star`), path.join(dir, 'tilt_series', `${ts}.star`));
    const stack = path.join(V1, 'tilt_series', `${ts}.mrcs`);
    if (copyStacks) fs.copyFileSync(stack, path.join(dir, 'tilt_series', `${ts}.mrcs`));
    else fs.symlinkSync(stack, path.join(dir, 'tilt_series', `${ts}.mrcs`));
  }
  fs.mkdirSync(path.join(dir, 'out'));
  fs.writeFileSync(path.join(dir, 'out', 'merged.mrc'), OLD);
  return dir;
}

function edit(file: string, f: (text: string) => string): void {
  fs.writeFileSync(file, f(fs.readFileSync(file, 'utf8')));
}

/** Replaces the value of `label` in data row `row` (0-based) of the loop that has it (after `data_<block>`). */
function setValue(file: string, label: string, row: number, value: string, block = ''): void {
  edit(file, (t) => {
    const lines = t.split('\n');
    const from = block ? lines.findIndex((l) => l.trim() === `data_${block}`) : 0;
    const li = lines.findIndex((l, i) => i > from && (l.trim().startsWith(`_${label} `) || l.trim() === `_${label}`));
    expect(li, `${label} in ${file}`).toBeGreaterThan(0);
    const col = Number(/#(\d+)/.exec(lines[li])![1]) - 1;
    let first = li;
    while (lines[first + 1].trim().startsWith('_')) first++;
    const target = first + 1 + row;
    const tokens = lines[target].trim().split(/\s+/);
    tokens[col] = value;
    lines[target] = tokens.join(' ');
    return lines.join('\n');
  });
}

/** Drops column `label` from the loop that has it (header and every row). */
function dropColumn(file: string, label: string): void {
  edit(file, (t) => {
    const lines = t.split('\n');
    const li = lines.findIndex((l) => l.trim().startsWith(`_${label} `));
    const col = Number(/#(\d+)/.exec(lines[li])![1]) - 1;
    lines.splice(li, 1);
    let i = li;
    while (lines[i].trim().startsWith('_')) i++;
    for (; i < lines.length && lines[i].trim() !== ''; i++) {
      const tokens = lines[i].trim().split(/\s+/);
      tokens.splice(col, 1);
      lines[i] = tokens.join(' ');
    }
    return lines.join('\n');
  });
}

function patchInt32(file: string, offset: number, value: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(4);
  b.writeInt32LE(value);
  fs.writeSync(fd, b, 0, 4, offset);
  fs.closeSync(fd);
}

interface Case {
  title: string;
  setup: (dir: string) => void;
  args?: string[];
  message: RegExp;
}

const BASE = ['--i', 'optimisation_set.star', '--b', '32', '--bin', '2'];
const ts1 = (d: string): string => path.join(d, 'tilt_series', 'TS_01.star');
const stack2 = (d: string): string => path.join(d, 'tilt_series', 'TS_02.mrcs');

export const CASES: Case[] = [
  { title: 'optimisation set missing', setup: () => {}, args: ['--i', 'nope.star', '--b', '32'], message: /cannot read STAR file nope\.star: no such file/ },
  {
    title: 'optimisation set names no particles',
    setup: (d) => edit(path.join(d, 'optimisation_set.star'), (t) => t.replace(/_rlnTomoParticlesFile.*\n/, '')),
    message: /no particles file in the optimisation set optimisation_set\.star/,
  },
  { title: 'tomogram set missing', setup: (d) => fs.rmSync(path.join(d, 'tomograms.star')), message: /cannot read STAR file tomograms\.star/ },
  { title: 'tilt-series STAR file missing', setup: (d) => fs.rmSync(ts1(d)), message: /cannot read STAR file tilt_series\/TS_01\.star/ },
  { title: 'tilt-series stack missing', setup: (d) => fs.rmSync(stack2(d)), message: /tilt_series\/TS_02\.mrcs/ },
  { title: 'motion file missing', setup: () => {}, args: [...BASE, '--mot', 'no_motion.star'], message: /cannot read STAR file no_motion\.star/ },
  {
    title: 'STAR row with too many values',
    setup: (d) => edit(path.join(d, 'particles.star'), (t) => t.replace(/(TS_01\/3 .*)\n/, '$1 99\n')),
    message: /particles\.star.*line \d+.*/,
  },
  {
    title: 'STAR value with an unterminated quote',
    setup: (d) => setValue(path.join(d, 'particles.star'), 'rlnTomoParticleName', 4, '"TS_01/5'),
    message: /particles\.star.*line \d+.*quot/i,
  },
  { title: 'required label missing (rlnDefocusU)', setup: (d) => dropColumn(ts1(d), 'rlnDefocusU'), message: /TS_01\.star.*_rlnDefocusU/ },
  {
    title: 'required label missing (rlnMicrographPreExposure)',
    setup: (d) => dropColumn(ts1(d), 'rlnMicrographPreExposure'),
    message: /TS_01\.star.*_rlnMicrographPreExposure/,
  },
  { title: 'particle coordinates missing', setup: (d) => dropColumn(path.join(d, 'particles.star'), 'rlnCenteredCoordinateZAngst'), message: /particles\.star.*no coordinates/ },
  {
    title: 'non-numeric value',
    setup: (d) => setValue(path.join(d, 'particles.star'), 'rlnCenteredCoordinateXAngst', 2, 'twelve'),
    message: /particles\.star.*line \d+.*rlnCenteredCoordinateXAngst.*'twelve'/,
  },
  { title: 'rlnRandomSubset outside {1, 2}', setup: (d) => setValue(path.join(d, 'particles.star'), 'rlnRandomSubset', 5, '3'), message: /particle TS_01\/6 .*rlnRandomSubset 3; expected 1 or 2/ },
  { title: 'optics group missing', setup: (d) => setValue(path.join(d, 'particles.star'), 'rlnOpticsGroup', 0, '7', 'particles'), message: /rlnOpticsGroup 7, but data_optics has 2 group/ },
  {
    title: 'optics inconsistent with the tomogram',
    setup: (d) => setValue(path.join(d, 'particles.star'), 'rlnVoltage', 0, '200'),
    message: /optics group 1 has rlnVoltage 200 but tomogram TS_01 has 300/,
  },
  {
    title: 'particle in an unknown tomogram (all of them)',
    setup: (d) => edit(path.join(d, 'particles.star'), (t) => t.replace(/^(\s*)TS_0[12](\s)/gm, '$1TS_99$2')),
    message: /no particle in particles\.star belongs to a tomogram of tomograms\.star/,
  },
  { title: 'tomogram size missing', setup: (d) => dropColumn(path.join(d, 'tomograms.star'), 'rlnTomoSizeZ'), message: /tomogram TS_01 has no rlnTomoSizeZ/ },
  {
    title: 'no projection matrices nor angles',
    setup: (d) => dropColumn(ts1(d), 'rlnTomoZRot'),
    message: /TS_01\.star.*neither projection matrices .* nor angles/,
  },
  {
    title: 'amplitude contrast outside [0, 1]',
    setup: (d) => {
      setValue(path.join(d, 'tomograms.star'), 'rlnAmplitudeContrast', 1, '1.5');
      setValue(path.join(d, 'particles.star'), 'rlnAmplitudeContrast', 1, '1.5');
    },
    message: /tomograms\.star: tomogram TS_02 has rlnAmplitudeContrast 1\.5; expected a fraction in \[0, 1\]/ },
  {
    title: 'trajectory with the wrong number of frames',
    setup: (d) => edit(path.join(d, 'motion.star'), (t) => t.replace(/(data_TS_01\/2\n\nloop_ \n_rlnOriginXAngst #1 \n_rlnOriginYAngst #2 \n_rlnOriginZAngst #3 \n)[^\n]*\n/, '$1')),
    message: /motion\.star: particle TS_01\/2 has 30 trajectory rows; expected 31/,
  },
  {
    title: 'trajectory missing for a particle',
    setup: (d) => edit(path.join(d, 'motion.star'), (t) => t.replace('data_TS_02/7\n', 'data_TS_02/x7\n')),
    message: /motion\.star: no trajectory found for particle 'TS_02\/7'/,
  },
  {
    title: 'tilt table longer than the stack',
    setup: (d) => edit(ts1(d), (t) => t.replace(/(000031@tilt_series\/TS_01\.mrcs[^\n]*)\n/, '$1\n$1\n'.replace('$1\n$1', '$1\n$1')).replace(/\n(000031@[^\n]*)\n(000031@)/, '\n$1\n000032@')),
    message: /TS_01\.mrcs: tomogram TS_01 needs section 32 but the file has 31/,
  },
  {
    title: 'MRC truncated',
    setup: (d) => {
      const f = path.join(d, 'tilt_series', 'TS_02.mrcs');
      fs.rmSync(f);
      fs.writeFileSync(f, fs.readFileSync(path.join(V1, 'tilt_series', 'TS_02.mrcs')).subarray(0, 5_000_000));
    },
    message: /TS_02\.mrcs.*truncated/,
  },
  { title: 'MRC of an unsupported (complex) mode', setup: (d) => patchInt32(stack2(d), 12, 4), message: /TS_02\.mrcs.*complex MRC mode 4/ },
  { title: 'MRC header larger than the file', setup: (d) => patchInt32(stack2(d), 8, 40), message: /TS_02\.mrcs.*truncated/ },
  { title: 'MRC extended header size lying', setup: (d) => patchInt32(stack2(d), 92, 2_000_000_000), message: /TS_02\.mrcs.*extended header/ },
  {
    title: 'tilt image with a NaN pixel',
    setup: (d) => {
      const fd = fs.openSync(stack2(d), 'r+');
      const b = Buffer.alloc(4);
      b.writeFloatLE(NaN);
      fs.writeSync(fd, b, 0, 4, 1024 + 4 * (320 * 320 * 4 + 320 * 10 + 7));
      fs.closeSync(fd);
    },
    message: /TS_02\.mrcs: section 5 \(tilt 5 of TS_02\) has a non-finite pixel \(NaN\) at x=7, y=10/,
  },
  { title: 'odd --b', setup: () => {}, args: ['--i', 'optimisation_set.star', '--b', '33'], message: /--b 33: the box size must be even/ },
  { title: 'odd --b − --crop', setup: () => {}, args: [...BASE, '--crop', '21'], message: /--b − --crop must be even/ },
  { title: '--bin ≤ 0', setup: () => {}, args: ['--i', 'optimisation_set.star', '--b', '32', '--bin', '-2'], message: /--bin -2: the binning factor must be a number ≥ 1/ },
  { title: '--bin giving an odd extraction box', setup: () => {}, args: ['--i', 'optimisation_set.star', '--b', '34', '--bin', '1.5'], message: /odd extraction box of 51 pixels/ },
  { title: '--cutoff_fract 1', setup: () => {}, args: [...BASE, '--cutoff_fract', '1'], message: /--cutoff_fract 1: dose weights are at most 1, so nothing would be reconstructed/ },
  { title: '--mem too small', setup: () => {}, args: [...BASE, '--mem', '0.0001'], message: /--mem 0\.0001 GB cannot hold one accumulator set for --b 32.*at least/ },
  { title: 'unknown --sym', setup: () => {}, args: [...BASE, '--sym', 'Q7'], message: /Q7/ },
  { title: 'a number flag that is not a number', setup: () => {}, args: ['--i', 'optimisation_set.star', '--b', '4x'], message: /--b: expected a number, got '4x'/ },
];

describe('bad input: one clear message, exit 1, existing output untouched', () => {
  it.each(CASES.map((c) => [c.title, c] as const))('%s', (_title, c) => {
    const dir = dataset(/MRC|NaN/.test(c.title));
    c.setup(dir);
    const res = runCli(['reconstruct', ...(c.args ?? BASE), '--o', 'out'], dir);
    expect(res.status, res.stderr).toBe(1);
    const errors = res.stderr.split('\n').filter((l) => l.startsWith('tomorecon: error:'));
    expect(errors, res.stderr).toHaveLength(1);
    expect(errors[0]).toMatch(c.message);
    expect(res.stderr).not.toMatch(/^\s+at /m);
    expect(res.stderr).not.toMatch(/internal error/);
    expect(fs.readFileSync(path.join(dir, 'out', 'merged.mrc'), 'utf8')).toBe(OLD);
    expect(fs.readdirSync(path.join(dir, 'out')).filter((f) => f !== 'temp')).toEqual(['merged.mrc']);
  });

  it('the README lists every case', () => {
    const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
    for (const c of CASES) expect(readme, c.title).toContain(`| ${c.title} |`);
  });
});

describe('warnings that are not errors', () => {
  it('particles in tomograms that are not in the tomogram set are dropped with a warning', () => {
    const dir = dataset();
    edit(path.join(dir, 'particles.star'), (t) => t.replace(/^(\s*)TS_02(\s)/gm, '$1TS_77$2'));
    const res = runCli(['reconstruct', ...BASE, '--o', 'out2'], dir);
    expect(res.status).toBe(0);
    expect(res.stderr).toMatch(/warning: particles in particles\.star belong to tomograms not in tomograms\.star, and are ignored: TS_77/);
    expect(res.stdout).toMatch(/24 particles in 1 tomograms/);
  });
});

describe('output problems', () => {
  it('an output directory that cannot be created is named', () => {
    const dir = dataset();
    fs.writeFileSync(path.join(dir, 'afile'), 'x');
    const res = runCli(['reconstruct', ...BASE, '--o', 'afile/out'], dir);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/tomorecon: error: cannot create or write the output directory afile\/out/);
  });

  const canMount = process.getuid?.() === 0;
  it.skipIf(!canMount)('a full disk while writing fails with one message, keeps the old map, leaves no temporary file (needs root for a tmpfs)', () => {
    const dir = dataset();
    const out = path.join(dir, 'full');
    fs.mkdirSync(out);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', out]);
    } catch (e) {
      console.warn(`skipping the disk-full case: cannot mount a tmpfs (${(e as Error).message})`);
      return;
    }
    try {
      fs.writeFileSync(path.join(out, 'merged.mrc'), OLD);
      const res = runCli(['reconstruct', '--i', 'optimisation_set.star', '--b', '48', '--j', '1', '--no_backup', '--o', out], dir);
      expect(res.status).toBe(1);
      const errors = res.stderr.split('\n').filter((l) => l.startsWith('tomorecon: error:'));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/cannot write .*full\/.*\.mrc: no space left on device \(ENOSPC\)/);
      expect(fs.readFileSync(path.join(out, 'merged.mrc'), 'utf8')).toBe(OLD);
      expect(fs.readdirSync(out, { recursive: true }).filter((f) => String(f).includes('.tmp'))).toEqual([]);
    } finally {
      execFileSync('umount', [out]);
    }
  });
});
