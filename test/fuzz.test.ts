/**
 * Property-based fuzzing of the STAR and MRC readers: random and mutated inputs either parse or
 * fail with the project's TomoError — never another exception, never a hang.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { TomoError } from '../src/errors.js';
import { parseStar, StarTable } from '../src/formats/star.js';
import { encodeMrc, readMrc, readMrcHeader, readMrcSections } from '../src/formats/mrc.js';
import { CONFORMANCE } from './helpers/paths.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-fuzz-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function onlyTomoErrors(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof TomoError)) throw e;
    expect(e.message.length).toBeGreaterThan(0);
  }
}

/** Parses and then reads every cell through the typed accessors, as the loaders do. */
function exerciseStar(text: string): void {
  const blocks = parseStar(text, 'fuzz.star');
  for (const b of blocks) {
    const t = new StarTable(b);
    for (let r = 0; r < Math.min(t.rowCount, 5); r++) {
      for (const l of b.labels) {
        onlyTomoErrors(() => t.num(r, l));
        onlyTomoErrors(() => t.int(r, l));
        onlyTomoErrors(() => t.vec(r, l));
        t.str(r, l);
      }
    }
  }
}

const realStar = ['particles.star', 'tomograms.star', 'motion.star', 'tilt_series/TS_01.star'].map((f) =>
  fs.readFileSync(path.join(CONFORMANCE, 'V1', f), 'utf8').slice(0, 6000),
);
const starAlphabet = fc.constantFrom('data_', 'loop_', '_rln', '#', ';', '"', "'", ' ', '\t', '\n', '\r\n', '[', ',', ']', 'x', '1', '-', '.', 'e', 'TS_01');

describe('STAR reader fuzz', () => {
  it('random token soup', () => {
    fc.assert(
      fc.property(fc.array(starAlphabet, { maxLength: 300 }), (parts) => onlyTomoErrors(() => exerciseStar(parts.join('')))),
      { numRuns: 400 },
    );
  });

  it('mutations of real RELION files (deleted, duplicated and replaced slices)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: realStar.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 40 }), fc.string({ maxLength: 12 })), { minLength: 1, maxLength: 6 }),
        (which, edits) => {
          let t = realStar[which];
          for (const [at, len, ins] of edits) {
            const i = at % (t.length + 1);
            t = t.slice(0, i) + ins + t.slice(i + len);
          }
          onlyTomoErrors(() => exerciseStar(t));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('arbitrary unicode', () => {
    fc.assert(fc.property(fc.string({ maxLength: 400, unit: 'grapheme' }), (t) => onlyTomoErrors(() => exerciseStar(t))), { numRuns: 300 });
  });
});

describe('MRC reader fuzz', () => {
  const good = Buffer.from(encodeMrc(Float32Array.from({ length: 6 * 5 * 4 }, (_, i) => i * 0.5), 6, 5, 4, 1.5));
  const file = path.join(tmp, 'f.mrc');

  function exerciseMrc(bytes: Uint8Array): void {
    fs.writeFileSync(file, bytes);
    onlyTomoErrors(() => {
      const h = readMrcHeader(file);
      readMrc(file);
      readMrcSections(file, 0, Math.min(1, h.nz), h);
    });
  }

  it('header words overwritten with random integers (sizes, mode, nsymbt, byte order)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 55 }), fc.oneof(fc.integer(), fc.integer({ min: -3, max: 200 }))), { minLength: 1, maxLength: 4 }),
        (edits) => {
          const b = Buffer.from(good);
          for (const [word, value] of edits) b.writeInt32LE(value | 0, 4 * word);
          exerciseMrc(b);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('truncated, extended and random files', () => {
    fc.assert(
      fc.property(fc.nat({ max: good.length + 64 }), fc.uint8Array({ maxLength: 64 }), (cut, tail) => {
        exerciseMrc(Buffer.concat([good.subarray(0, Math.min(cut, good.length)), Buffer.from(tail)]));
      }),
      { numRuns: 300 },
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 3000 }), (bytes) => exerciseMrc(bytes)), { numRuns: 200 });
  });
});
