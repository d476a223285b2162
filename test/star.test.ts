import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TomoError } from '../src/errors.js';
import { parseStar, readStar, findBlock, formatStar, writeStarFile, StarTable, type StarBlock } from '../src/formats/star.js';
import { parseImageRef } from '../src/formats/imagePath.js';
import { tomoError } from './helpers/errors.js';

const V1 = '/work/shared/conformance/V1';


function table(text: string, name = ''): StarTable {
  const b = findBlock(parseStar(text, 'mem.star'), name);
  if (!b) throw new Error(`no block ${name}`);
  return new StarTable(b);
}

describe('STAR: real RELION files', () => {
  it('particles.star: list + two loops', () => {
    const blocks = readStar(`${V1}/particles.star`);
    expect(blocks.map((b) => b.name)).toEqual(['general', 'optics', 'particles']);

    const general = new StarTable(findBlock(blocks, 'general')!);
    expect(general.block.kind).toBe('list');
    expect(general.rowCount).toBe(1);
    expect(general.int(0, 'rlnTomoSubTomosAre2DStacks')).toBe(0);

    const optics = new StarTable(findBlock(blocks, 'optics')!);
    expect(optics.block.kind).toBe('loop');
    expect(optics.block.labels).toHaveLength(11);
    expect(optics.block.labels[0]).toBe('rlnOpticsGroup');
    expect(optics.rowCount).toBe(2);
    expect(optics.str(1, 'rlnOpticsGroupName')).toBe('TS_02');
    expect(optics.num(0, 'rlnTomoTiltSeriesPixelSize')).toBe(2);
    expect(optics.int(1, 'rlnImageSize')).toBe(48);

    const p = new StarTable(findBlock(blocks, 'particles')!);
    expect(p.block.labels).toHaveLength(17);
    expect(p.rowCount).toBe(48);
    expect(p.str(0, 'rlnTomoName')).toBe('TS_01');
    expect(p.str(0, 'rlnTomoParticleName')).toBe('TS_01/1');
    expect(p.num(0, 'rlnCenteredCoordinateXAngst')).toBeCloseTo(-104.147168, 9);
    expect(p.int(0, 'rlnRandomSubset')).toBe(1);
    expect(p.int(1, 'rlnRandomSubset')).toBe(2);
    expect(p.block.rowLines[0]).toBe(51);
    expect(p.has('rlnTomoName')).toBe(true);
    expect(p.has('rlnNope')).toBe(false);
    expect(p.num(0, 'rlnNope', -7)).toBe(-7);
    // '' means the first block
    expect(findBlock(blocks, '')!.name).toBe('general');
    expect(findBlock(blocks, 'nope')).toBeUndefined();
  });

  it('motion.star: block names containing "/"', () => {
    const blocks = readStar(`${V1}/motion.star`);
    expect(blocks[0].name).toBe('general');
    expect(new StarTable(blocks[0]).int(0, 'rlnParticleNumber')).toBe(48);
    const t = new StarTable(findBlock(blocks, 'TS_01/1')!);
    expect(t.block.labels).toEqual(['rlnOriginXAngst', 'rlnOriginYAngst', 'rlnOriginZAngst']);
    expect(t.rowCount).toBe(31);
    expect(t.num(0, 'rlnOriginXAngst')).toBeCloseTo(0.203524, 9);
    expect(t.num(15, 'rlnOriginZAngst')).toBe(0);
    expect(findBlock(blocks, 'TS_02/24')).toBeDefined();
  });

  it('tomograms.star and a tilt-series star', () => {
    const tomo = new StarTable(findBlock(readStar(`${V1}/tomograms.star`), 'global')!);
    expect(tomo.rowCount).toBe(2);
    expect(tomo.str(1, 'rlnTomoTiltSeriesStarFile')).toBe('tilt_series/TS_02.star');
    expect(tomo.int(0, 'rlnTomoFrameCount')).toBe(31);
    expect(tomo.num(0, 'rlnTomoHand')).toBe(-1);
    const ts = new StarTable(findBlock(readStar(`${V1}/tilt_series/TS_01.star`), 'TS_01')!);
    expect(ts.rowCount).toBe(31);
    expect(ts.str(2, 'rlnMicrographName')).toBe('000003@tilt_series/TS_01.mrcs');
    expect(ts.num(0, 'rlnTomoNominalStageTiltAngle')).toBe(-60);
  });

  it('optimisation set: list values are file names', () => {
    const t = new StarTable(readStar(`${V1}/optimisation_set.star`)[0]);
    expect(t.block.name).toBe('optimisation_set');
    expect(t.str(0, 'rlnTomoTrajectoriesFile')).toBe('motion.star');
  });
});

describe('STAR: dialect details', () => {
  it('quoted values, comments and CR+LF', () => {
    const text = [
      'data_q',
      'loop_',
      '_a #1',
      '# a comment between labels',
      '_b #2',
      '_c',
      '',
      `"two words" 'it"s' ""   # trailing comment`,
      `"say "hi"there" x 'y'`,
      '# whole-line comment between rows',
      "plain 'a'b' not#comment\"",
      '',
    ].join('\r\n');
    const t = table(text);
    expect(t.block.labels).toEqual(['a', 'b', 'c']);
    expect(t.block.rows).toEqual([
      ['two words', 'it"s', ''],
      ['say "hi"there', 'x', 'y'],
      ['plain', "a'b", 'not#comment"'],
    ]);
    expect(t.block.rowLines).toEqual([8, 9, 11]);
  });

  it('list table with quoted value and trailing comment; loop ended by data_ without blank line', () => {
    const blocks = parseStar(
      ['# version 50001', 'data_', '_x "a b"  # c', '_y 3', 'data_L', 'loop_', '_v', '1', '2', 'data_next', '_z 1.000'].join('\n'),
      'mem.star',
    );
    expect(blocks.map((b) => b.name)).toEqual(['', 'L', 'next']);
    expect(blocks[0].rows).toEqual([['a b', '3']]);
    expect(blocks[1].rows).toEqual([['1'], ['2']]);
    expect(new StarTable(blocks[2]).int(0, 'z')).toBe(1);
  });

  it('rows whose first value starts with data_ or loop_ (movies in data_raw/) are rows; a bare header still ends a loop', () => {
    const text = [
      'data_TS_01',
      'loop_',
      '_rlnMicrographMovieName #1',
      '_rlnTomoNominalStageTiltAngle #2',
      'frames/TS_01_001.eer 0.0',
      'data_raw/TS_01_002.eer 3.0',
      'loop_x/TS_01_003.eer -3.0',
      'data_raw/TS_01_004.eer 6.0',
      'data_next',
      'loop_',
      '_a #1',
      '_b #2',
      '1 2',
      'loop_',
      '_c #1',
      '_d #2',
      '3 4',
    ].join('\n');
    const blocks = parseStar(text, 'mem.star');
    expect(blocks.map((b) => b.name)).toEqual(['TS_01', 'next']);
    expect(blocks[0].rows.map((r) => r[0])).toEqual(['frames/TS_01_001.eer', 'data_raw/TS_01_002.eer', 'loop_x/TS_01_003.eer', 'data_raw/TS_01_004.eer']);
    expect(blocks[0].rowLines).toEqual([5, 6, 7, 8]);
    expect(blocks[1].rows).toEqual([['1', '2']]);
  });

  it('empty loop and empty block', () => {
    const blocks = parseStar('data_a\nloop_\n_x #1\n_y #2\n\ndata_b\n\ndata_c\n_k v\n', 'mem.star');
    expect(blocks.map((b) => [b.name, b.kind, b.labels.length, b.rows.length])).toEqual([
      ['a', 'loop', 2, 0],
      ['b', 'loop', 0, 0],
      ['c', 'list', 1, 1],
    ]);
  });

  it('vectors', () => {
    const t = table('data_\nloop_\n_v #1\n_w #2\n[0.08,-0.99,0.01,3618.3] 1,2.5,-3e2\n[] "[1, 2]"\n');
    expect(t.vec(0, 'v')).toEqual([0.08, -0.99, 0.01, 3618.3]);
    expect(t.vec(0, 'w')).toEqual([1, 2.5, -300]);
    expect(t.vec(1, 'v')).toEqual([]);
    expect(t.vec(1, 'w')).toEqual([1, 2]);
    const bad = table('data_\nloop_\n_v #1\n[1,x,3]\n');
    expect(tomoError(() => bad.vec(0, 'v'))).toMatch(/mem\.star line 4.*_v.*\[1,x,3\].*'x'/);
  });

  it('numbers: strict parsing and RELION int rule', () => {
    const t = table('data_\n_a 1.000\n_b 1.5\n_c 1e-3\n_d 0x10\n_e -4.\n_f 12abc\n');
    expect(t.int(0, 'a')).toBe(1);
    expect(t.num(0, 'c')).toBe(0.001);
    expect(t.num(0, 'e')).toBe(-4);
    expect(tomoError(() => t.int(0, 'b'))).toBe("mem.star line 3: block data_, _b: expected an integer, found '1.5'");
    expect(tomoError(() => t.num(0, 'd'))).toMatch(/line 5.*_d.*'0x10'/);
    expect(tomoError(() => t.num(0, 'f'))).toMatch(/line 7.*_f.*'12abc'/);
    // a fallback never hides a bad value of a present column
    expect(tomoError(() => t.num(0, 'f', 0))).toMatch(/'12abc'/);
  });
});

describe('STAR: round trip', () => {
  // Small deterministic PRNG so failures are reproducible.
  let seed = 12345;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const pick = <T,>(a: T[]): T => a[Math.floor(rnd() * a.length)];
  const pieces = ['a', 'TS_01/3', '', ' ', 'two words', '#hash', '_under', "it's", 'say "hi"', 'data_x', 'loop_y', ';semi', '1.5', '-3e-4', '[1,2]', '\t', "x' y", 'q"'];
  const value = (): string => (rnd() < 0.3 ? pick(pieces) : pick(pieces) + pick(pieces));

  it('parseStar(formatStar(x)) == x for random tables', () => {
    for (let trial = 0; trial < 50; trial++) {
      const blocks: StarBlock[] = [];
      const nb = 1 + Math.floor(rnd() * 4);
      for (let k = 0; k < nb; k++) {
        const list = rnd() < 0.3;
        const nl = 1 + Math.floor(rnd() * 5);
        const labels = Array.from({ length: nl }, (_, j) => `rlnL${k}_${j}`);
        const nr = list ? 1 : Math.floor(rnd() * 6);
        const rows = Array.from({ length: nr }, () => labels.map(value));
        blocks.push({ name: pick(['', 'optics', 'TS_01/5', 'x data_y']) + k, kind: list ? 'list' : 'loop', labels, rows, rowLines: [], source: 's' });
      }
      const text = formatStar(blocks);
      expect(text).not.toContain('\r');
      const back = parseStar(text, 's');
      expect(back.map((b) => ({ name: b.name, kind: b.kind, labels: b.labels, rows: b.rows }))).toEqual(
        blocks.map((b) => ({ name: b.name, kind: b.kind, labels: b.labels, rows: b.rows })),
      );
    }
  });

  it('RELION layout and real file round trip through writeStarFile', () => {
    const text = formatStar([{ name: 'n', kind: 'loop', labels: ['a', 'b'], rows: [['1', 'x y']], rowLines: [], source: '' }]);
    expect(text).toBe('\n# version 50001\n\ndata_n\n\nloop_ \n_a #1 \n_b #2 \n1 "x y"\n\n');
    const orig = readStar(`${V1}/particles.star`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'star-'));
    try {
      const f = path.join(dir, 'p.star');
      writeStarFile(f, orig);
      const back = readStar(f);
      expect(back.map((b) => [b.name, b.kind, b.labels, b.rows])).toEqual(orig.map((b) => [b.name, b.kind, b.labels, b.rows]));
      expect(fs.readdirSync(dir)).toEqual(['p.star']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('STAR: errors', () => {
  const loop = (row: string): string => `data_parts\nloop_\n_a #1\n_b #2\n_c #3\n1 2 3\n${row}\n`;

  it('too many / too few values name the line', () => {
    expect(tomoError(() => parseStar(loop('1 2 3 4'), 'f.star'))).toBe(
      'f.star line 7: block data_parts: expected 3 values (one per label), found 4',
    );
    expect(tomoError(() => parseStar(loop('1 2'), 'f.star'))).toMatch(/^f\.star line 7: .*expected 3 values.*found 2$/);
    // even with only 2 labels (RELION would accept this silently)
    expect(tomoError(() => parseStar('data_\nloop_\n_a\n_b\n1\n', 'g.star'))).toMatch(/g\.star line 5.*found 1/);
  });

  it('unterminated quote', () => {
    expect(tomoError(() => parseStar(loop('1 "abc 3'), 'f.star'))).toMatch(/f\.star line 7.*unterminated quote/);
    expect(tomoError(() => parseStar(loop('1 2 "abc"x'), 'f.star'))).toMatch(/line 7.*unterminated/);
  });

  it('list table problems', () => {
    expect(tomoError(() => parseStar('data_g\n_a 1\n_b\n', 'f.star'))).toBe('f.star line 3: block data_g: _b needs exactly one value, found 0');
    expect(tomoError(() => parseStar('data_g\n_a 1 2\n', 'f.star'))).toMatch(/line 2.*_a needs exactly one value, found 2/);
    expect(tomoError(() => parseStar('data_g\n_a 1\nstray\n', 'f.star'))).toMatch(/line 3.*expected '_label value'/);
  });

  it('loop without labels', () => {
    expect(tomoError(() => parseStar('data_x\nloop_\n1 2\n', 'f.star'))).toBe('f.star line 3: block data_x: loop_ has no _labels before its first row');
  });

  it('duplicate labels', () => {
    expect(tomoError(() => parseStar('data_x\nloop_\n_a #1\n_a #2\n', 'f.star'))).toBe('f.star line 4: block data_x: duplicate label _a');
    expect(tomoError(() => parseStar('data_x\n_a 1\n_a 2\n', 'f.star'))).toMatch(/line 3.*duplicate label _a/);
  });

  it('missing label', () => {
    const t = new StarTable(parseStar(loop('4 5 6'), 'f.star')[0]);
    expect(tomoError(() => t.str(0, 'rlnTomoName'))).toBe('f.star: block data_parts has no column _rlnTomoName');
    expect(tomoError(() => t.num(0, 'zz'))).toMatch(/has no column _zz/);
  });

  it('non-numeric value names file, line, label and value', () => {
    const t = new StarTable(parseStar(loop('4 five 6'), 'f.star')[0]);
    expect(t.num(0, 'b')).toBe(2);
    expect(tomoError(() => t.num(1, 'b'))).toBe("f.star line 7: block data_parts, _b: expected a number, found 'five'");
  });

  it('missing file', () => {
    expect(tomoError(() => readStar('/nonexistent/dir/x.star'))).toMatch(
      /^cannot read STAR file \/nonexistent\/dir\/x\.star: no such file or directory/,
    );
  });
});

describe('image references', () => {
  it('parses N@path:fmt forms', () => {
    expect(parseImageRef('000003@tilt_series/TS_01.mrcs')).toEqual({ path: 'tilt_series/TS_01.mrcs', index: 2, format: null });
    expect(parseImageRef('file.mrc')).toEqual({ path: 'file.mrc', index: null, format: null });
    expect(parseImageRef('file.st:mrc')).toEqual({ path: 'file.st', index: null, format: 'mrc' });
    expect(parseImageRef('000003@x.mrcs:mrcs')).toEqual({ path: 'x.mrcs', index: 2, format: 'mrcs' });
    expect(parseImageRef('/data/run:1/a.mrc')).toEqual({ path: '/data/run:1/a.mrc', index: null, format: null });
  });

  it('rejects bad image numbers', () => {
    expect(tomoError(() => parseImageRef('0@x.mrcs'))).toMatch(/integer >= 1, found '0'/);
    expect(tomoError(() => parseImageRef('1.5@x.mrcs'))).toMatch(/found '1\.5'/);
    expect(tomoError(() => parseImageRef('-2@x.mrcs'))).toMatch(/found '-2'/);
    expect(tomoError(() => parseImageRef('@x.mrcs'))).toMatch(/found ''/);
    expect(tomoError(() => parseImageRef('3@'))).toMatch(/no file name/);
  });
});
