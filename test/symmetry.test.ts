import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TomoError } from '../src/errors.js';
import {
  helicalMatrices,
  helicalOps,
  pointGroupMatrices,
  symmetryOps,
  type SymmetryOp,
} from '../src/geometry/symmetry.js';
import { irfft3, rfft3 } from '../src/recon/fft.js';
import {
  interp3C,
  interp3R,
  symmetriseComplex,
  symmetriseDataAndWeight,
  symmetriseReal,
  symmetriseSlab,
} from '../src/recon/symmetrise.js';
import { rng } from './helpers/random.js';
import { symmetriseHalves } from '../src/engine/symmetry.js';
import type { FinalisationPool } from '../src/engine/finalisePool.js';
import { memoryOf } from '../src/recon/wasmVolume.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const JSON_PATH = path.resolve(here, '../../shared/spec/symmetry_matrices.json');
const REF: Record<string, number[][][]> = JSON.parse(fs.readFileSync(JSON_PATH, 'utf8')).groups;

// ---------------------------------------------------------------------------------------------
// helpers

function rows(...r: number[][]): number[] {
  return r.flat();
}
function rz(deg: number): number[] {
  const a = (deg * Math.PI) / 180;
  return [Math.cos(a), -Math.sin(a), 0, Math.sin(a), Math.cos(a), 0, 0, 0, 1];
}
/** Right-handed rotation by `deg` about axis a (Rodrigues). */
function rotAxis(a: number[], deg: number): number[] {
  const n = Math.hypot(a[0], a[1], a[2]);
  const [x, y, z] = [a[0] / n, a[1] / n, a[2] / n];
  const t = (deg * Math.PI) / 180;
  const c = Math.cos(t);
  const s = Math.sin(t);
  const C = 1 - c;
  return [
    c + x * x * C, x * y * C - z * s, x * z * C + y * s,
    y * x * C + z * s, c + y * y * C, y * z * C - x * s,
    z * x * C - y * s, z * y * C + x * s, c + z * z * C,
  ];
}
function mul3(a: ArrayLike<number>, b: ArrayLike<number>): number[] {
  const r = new Array<number>(9).fill(0);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) r[3 * i + j] += a[3 * i + k] * b[3 * k + j];
  return r;
}
function det3(m: ArrayLike<number>): number {
  return m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);
}
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
function expectMat(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what = ''): void {
  const d = maxDiff(a, b);
  expect(d, `${what}: ${Array.from(a).join(', ')} vs ${Array.from(b).join(', ')}`).toBeLessThanOrEqual(tol);
}
const I3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

function expectTomoError(fn: () => unknown, mention: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected an error for "${mention}"`).toBeInstanceOf(TomoError);
  expect((err as Error).message).toContain(`"${mention}"`);
}


// ---------------------------------------------------------------------------------------------
// Point groups

describe('pointGroupMatrices vs symmetry_matrices.json (RELION harness)', () => {
  const names = Object.keys(REF);
  it('holds all 38 groups', () => {
    expect(names.length).toBe(38);
  });
  for (const name of names) {
    it(`${name}: count, order and every element (1e-9)`, () => {
      const mine = pointGroupMatrices(name);
      const ref = REF[name];
      expect(mine.length).toBe(ref.length);
      for (let k = 0; k < ref.length; k++) {
        expect(mine[k].length).toBe(9);
        expectMat(mine[k], ref[k].flat(), 1e-9, `${name}[${k}]`);
      }
    });
  }
  it('reproduces every group bit for bit (correctly rounded trig, RELION mirror bits)', () => {
    let differing = 0;
    for (const name of names) {
      const mine = pointGroupMatrices(name);
      REF[name].forEach((m, k) => m.flat().forEach((v, i) => (differing += v === mine[k][i] ? 0 : 1)));
    }
    expect(differing).toBe(0);
  });
});

describe('name parsing (symmetry.md §3)', () => {
  it('is case-insensitive', () => {
    const pairs: [string, string][] = [
      ['c6', 'C6'], ['d2', 'D2'], ['i3', 'I3'], ['oh', 'Oh'], ['OH', 'Oh'], ['tD', 'Td'], ['td', 'Td'],
      ['d2H', 'D2h'], ['D2H', 'D2h'], ['c2V', 'C2v'], ['ci', 'Ci'], ['CS', 'Cs'], ['s6', 'S6'], ['i', 'I'],
      ['ih', 'Ih'], ['I4H', 'I4h'], ['i1h', 'I1h'], ['t', 'T'], ['o', 'O'], ['tH', 'Th'], ['d3v', 'D3v'],
    ];
    for (const [a, b] of pairs) {
      const A = pointGroupMatrices(a);
      const B = pointGroupMatrices(b);
      expect(A.length, a).toBe(B.length);
      A.forEach((m, k) => expect(Array.from(m), `${a}[${k}]`).toEqual(Array.from(B[k])));
    }
  });
  it('treats I as I2, Ih as I2h, and two-digit orders with leading zeros', () => {
    expect(pointGroupMatrices('I').map((m) => Array.from(m))).toEqual(pointGroupMatrices('I2').map((m) => Array.from(m)));
    expect(pointGroupMatrices('Ih').map((m) => Array.from(m))).toEqual(pointGroupMatrices('I2h').map((m) => Array.from(m)));
    expect(pointGroupMatrices('C02').map((m) => Array.from(m))).toEqual(pointGroupMatrices('C2').map((m) => Array.from(m)));
    expect(pointGroupMatrices('d07h').length).toBe(27);
  });
  it('gives no matrices for C1, c1, C01 and C0', () => {
    for (const n of ['C1', 'c1', 'C01', 'C0', 'c00']) expect(pointGroupMatrices(n), n).toEqual([]);
  });
  it('rejects what RELION rejects, with a TomoError naming the value', () => {
    const bad = [
      'C100', 'c123', 'S3', 's5', 'S99', 'I5', 'i5', 'I5h', 'i5H', 'X', 'Q2', '', 'C', 'D', 'S', 'Cv', 'C2 ', ' C2',
      'C 2', 'D2x', 'I6', 'I12', 'C2vh', 'Tdh', 'TT', 'OO', 'Ohh', 'C2v2', 'C12hv', 'helical', 'C-2', 'C+2', 'D2d',
    ];
    for (const n of bad) expectTomoError(() => pointGroupMatrices(n), n);
  });
  it('lists the accepted families in the error', () => {
    expect(() => pointGroupMatrices('X7')).toThrow(/C<n>.*D<n>.*Oh.*I4h/s);
  });
  it('reads a RELION symmetry-definition file before trying group names', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-sym-'));
    try {
      const f = path.join(dir, 'mysym');
      fs.writeFileSync(f, '; comment\n# another comment\nrot_axis 4 0 0 1\nunknown_keyword 1 2 3\n');
      const fromFile = pointGroupMatrices(f).map((m) => Array.from(m));
      expect(fromFile).toEqual(pointGroupMatrices('C4').map((m) => Array.from(m)));
      const g = path.join(dir, 'mine2');
      fs.writeFileSync(g, 'rot_axis 2 0 0 1\nrot_axis 2 1 0 0\nmirror_plane 0 0 1\n');
      expect(pointGroupMatrices(g).map((m) => Array.from(m))).toEqual(pointGroupMatrices('D2h').map((m) => Array.from(m)));
      const h = path.join(dir, 'mine3');
      fs.writeFileSync(h, 'rot_axis 3 0 0 1\ninversion\n');
      expect(pointGroupMatrices(h).map((m) => Array.from(m))).toEqual(pointGroupMatrices('S6').map((m) => Array.from(m)));
      const bad = path.join(dir, 'bad');
      fs.writeFileSync(bad, 'rot_axis 3 0 0\n');
      expect(() => pointGroupMatrices(bad)).toThrow(TomoError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('check values, symmetry.md §11.1–§11.2', () => {
  it('counts (§11.1)', () => {
    const counts: Record<string, number> = {
      C1: 0, C2: 1, C3: 2, C4: 3, C6: 5, C12: 11, C99: 98, Ci: 1, Cs: 1, C2v: 3, C3v: 5, C4v: 7, C2h: 3, C3h: 5,
      S2: 1, S4: 3, S6: 5, S8: 7, S12: 11, D1: 1, D2: 3, D3: 5, D4: 7, D6: 11, D12: 23, D2v: 7, D3v: 11, D5v: 19,
      D2h: 7, D3h: 11, D7h: 27, T: 11, Td: 23, Th: 23, O: 23, Oh: 47, I: 59, I1: 59, I2: 59, I3: 59, I4: 59,
      Ih: 119, I1h: 119, I2h: 119, I3h: 119, I4h: 119, D0: 1,
    };
    for (const [n, c] of Object.entries(counts)) expect(pointGroupMatrices(n).length, n).toBe(c);
  });

  it('individual elements (§11.2)', () => {
    const g = (n: string, k: number): Float64Array => pointGroupMatrices(n)[k];
    const t12 = 1e-12;
    expectMat(g('C2', 0), rows([-1, 0, 0], [0, -1, 0], [0, 0, 1]), t12, 'C2[0]');
    expectMat(g('C3', 0), rows([-0.5, 0.8660254037844386, 0], [-0.8660254037844386, -0.5, 0], [0, 0, 1]), t12, 'C3[0]');
    expectMat(g('C3', 1), rows([-0.5, -0.8660254037844386, 0], [0.8660254037844386, -0.5, 0], [0, 0, 1]), t12, 'C3[1]');
    expectMat(g('C4', 0), rows([0, 1, 0], [-1, 0, 0], [0, 0, 1]), t12, 'C4[0]');
    for (let j = 1; j < 12; j++) expectMat(g('C12', j - 1), rz(-j * 30), t12, `C12[${j - 1}]`);
    expectMat(g('D2', 0), rows([-1, 0, 0], [0, -1, 0], [0, 0, 1]), t12, 'D2[0]');
    expectMat(g('D2', 1), rows([1, 0, 0], [0, -1, 0], [0, 0, -1]), t12, 'D2[1]');
    expectMat(g('D2', 2), rows([-1, 0, 0], [0, 1, 0], [0, 0, -1]), t12, 'D2[2]');
    expectMat(g('D3', 2), rows([1, 0, 0], [0, -1, 0], [0, 0, -1]), t12, 'D3[2]');
    expectMat(g('D3', 3), rotAxis([0.5, -0.8660254037844386, 0], 180), t12, 'D3[3]');
    expectMat(g('D3', 4), rotAxis([0.5, 0.8660254037844386, 0], 180), t12, 'D3[4]');
    expectMat(g('D4', 4), rows([0, -1, 0], [-1, 0, 0], [0, 0, -1]), t12, 'D4[4]');
    expectMat(g('Ci', 0), rows([-1, 0, 0], [0, -1, 0], [0, 0, -1]), t12, 'Ci[0]');
    expectMat(g('Cs', 0), rows([1, 0, 0], [0, 1, 0], [0, 0, -1]), t12, 'Cs[0]');
    expectMat(g('C2v', 1), rows([1, 0, 0], [0, -1, 0], [0, 0, 1]), t12, 'C2v[1]');
    expectMat(g('C2v', 2), rows([-1, 0, 0], [0, 1, 0], [0, 0, 1]), t12, 'C2v[2]');
    expectMat(g('D2h', 4), rows([-1, 0, 0], [0, -1, 0], [0, 0, -1]), t12, 'D2h[4]');
    expectMat(g('Th', 3), rows([-1, 0, 0], [0, -1, 0], [0, 0, -1]), 1e-6, 'Th[3]');
    expectMat(g('T', 2), rows([-1, 0, 0], [0, 0.3333331153, 0.9428091187], [0, 0.9428091187, -0.3333331153]), 1e-6, 'T[2]');
    expectMat(g('T', 3), rotAxis([0.816497, 0.471405, 0.333333], 120), 1e-6, 'T[3]');
    expectMat(g('O', 0), rows([0, 1, 0], [0, 0, 1], [1, 0, 0]), t12, 'O[0]');
    expectMat(g('O', 1), rows([0, 0, 1], [1, 0, 0], [0, 1, 0]), t12, 'O[1]');
    expectMat(g('O', 0), rotAxis([1, 1, 1], -120), t12, 'O[0] axis');
    expectMat(g('O', 2), rz(-90), t12, 'O[2]');
    expectMat(g('O', 3), rz(180), t12, 'O[3]');
    expectMat(g('O', 4), rz(90), t12, 'O[4]');
    expectMat(g('O', 5), rows([-1, 0, 0], [0, 0, 1], [0, 1, 0]), t12, 'O[5]');
    expectMat(g('Td', 3), rows([0.4999999039, -0.8660254593, 0], [-0.8660254593, -0.4999999039, 0], [0, 0, 1]), 1e-6, 'Td[3]');
    expectMat(g('Oh', 5), rows([1, 0, 0], [0, 0, -1], [0, -1, 0]), t12, 'Oh[5]');
    expectMat(g('I', 0), rows([-1, 0, 0], [0, -1, 0], [0, 0, 1]), 1e-7, 'I[0]');
    expectMat(
      g('I', 1),
      rows([0.5000000014, 0.8090169932, 0.3090169951], [-0.8090169932, 0.3090169944, 0.5000000019], [0.3090169951, -0.5000000019, 0.8090169929]),
      1e-7,
      'I[1]',
    );
    expectMat(g('I', 1), rotAxis([0.525731, 0, 0.850651], -72), 1e-6, 'I[1] axis');
    expectMat(g('I', 4), rotAxis([0.525731, 0, 0.850651], 72), 1e-6, 'I[4]');
    expectMat(g('I', 5), rotAxis([0, 0.356822, 0.934172], -120), 1e-6, 'I[5]');
    expectMat(g('I', 6), rotAxis([0, 0.356822, 0.934172], 120), 1e-6, 'I[6]');
    expectMat(g('I', 52), rows([1, 0, 0], [0, -1, 0], [0, 0, -1]), 1e-7, 'I[52]');
    expectMat(g('I', 58), rows([-1, 0, 0], [0, 1, 0], [0, 0, -1]), 1e-7, 'I[58]');
    expectMat(g('I1', 0), rows([1, 0, 0], [0, -1, 0], [0, 0, -1]), 1e-7, 'I1[0]');
    expectMat(g('I1', 52), rows([-1, 0, 0], [0, -1, 0], [0, 0, 1]), 1e-7, 'I1[52]');
    expectMat(g('I1', 58), rows([-1, 0, 0], [0, 1, 0], [0, 0, -1]), 1e-7, 'I1[58]');
    expectMat(g('I3', 0), rows([-0.4472135909, 0, -0.8944271933], [0, -1, 0], [-0.8944271933, 0, 0.4472135909]), 1e-7, 'I3[0]');
    expectMat(g('I3', 1), rz(-72), 1e-7, 'I3[1]');
    expectMat(g('I3', 4), rz(72), 1e-7, 'I3[4]');
    expectMat(g('I4', 0), rows([-0.4472135909, 0, 0.8944271933], [0, -1, 0], [0.8944271933, 0, 0.4472135909]), 1e-7, 'I4[0]');
    expectMat(g('I4', 16), rz(-72), 1e-7, 'I4[16]');
    expectMat(g('I4', 17), rz(72), 1e-7, 'I4[17]');
    expectMat(g('Ih', 7), rows([-1, 0, 0], [0, 1, 0], [0, 0, 1]), 1e-7, 'Ih[7]');
    expectMat(g('I1h', 7), rows([1, 0, 0], [0, 1, 0], [0, 0, -1]), 1e-7, 'I1h[7]');
    expectMat(g('I3h', 7), rows([-0.4472136144, 0, -0.8944271816], [0, 1, 0], [-0.8944271816, 0, 0.4472136144]), 1e-7, 'I3h[7]');
  });

  it('Cn is Rz(−j·360/n), Dn has the n-fold then the x 2-fold (§8)', () => {
    for (const n of [2, 3, 5, 7, 12, 17, 99]) {
      const m = pointGroupMatrices(`C${n}`);
      for (let j = 1; j < n; j++) expectMat(m[j - 1], rz((-j * 360) / n), 1e-12, `C${n}[${j - 1}]`);
      const d = pointGroupMatrices(`D${n}`);
      expect(d.length).toBe(2 * n - 1);
      expectMat(d[n - 1], rows([1, 0, 0], [0, -1, 0], [0, 0, -1]), 1e-12, `D${n}[${n - 1}]`);
    }
    expectMat(pointGroupMatrices('D1')[0], rows([1, 0, 0], [0, -1, 0], [0, 0, -1]), 0, 'D1[0]');
  });

  it('mirror and inversion generator positions (§8)', () => {
    const isMirror = (m: ArrayLike<number>): boolean => det3(m) < 0 && maxDiff(mul3(m, m), I3) < 1e-9 && Math.abs(m[0] + m[4] + m[8] - 1) < 1e-6;
    const isInv = (m: ArrayLike<number>): boolean => maxDiff(m, [-1, 0, 0, 0, -1, 0, 0, 0, -1]) < 1e-9;
    for (const n of [2, 3, 4, 5]) {
      expect(isMirror(pointGroupMatrices(`C${n}v`)[n - 1])).toBe(true);
      expect(isMirror(pointGroupMatrices(`C${n}h`)[n - 1])).toBe(true);
      expect(isMirror(pointGroupMatrices(`D${n}v`)[n])).toBe(true);
      expect(isMirror(pointGroupMatrices(`D${n}h`)[n])).toBe(true);
    }
    expect(isMirror(pointGroupMatrices('Td')[3])).toBe(true);
    expect(isMirror(pointGroupMatrices('Oh')[5])).toBe(true);
    for (const n of ['Ih', 'I1h', 'I2h', 'I3h', 'I4h']) expect(isMirror(pointGroupMatrices(n)[7]), n).toBe(true);
    expect(isInv(pointGroupMatrices('Ci')[0])).toBe(true);
    for (const n of [2, 6, 10, 4, 8]) expect(isInv(pointGroupMatrices(`S${n}`)[n / 2 - 1]), `S${n}`).toBe(true);
    expect(isInv(pointGroupMatrices('Th')[3])).toBe(true);
  });

  it('invariants for every group: orthogonal, det ±1, no identity, closed, improper counts (§8, §11.2)', () => {
    const improper: Record<string, number> = {
      Ci: 1, Cs: 1, C2v: 2, C3v: 3, C4v: 4, C2h: 2, C3h: 3, C4h: 4, S2: 1, S4: 2, S6: 3, S8: 4, S12: 6,
      D2v: 4, D3v: 6, D5v: 10, D2h: 4, D3h: 6, D7h: 14, Td: 12, Th: 12, Oh: 24,
      Ih: 60, I1h: 60, I2h: 60, I3h: 60, I4h: 60,
    };
    const chiral = ['C2', 'C5', 'C12', 'D1', 'D2', 'D5', 'D12', 'T', 'O', 'I', 'I1', 'I2', 'I3', 'I4'];
    const all = [...new Set([...Object.keys(REF), ...Object.keys(improper), ...chiral])];
    for (const name of all) {
      const list = pointGroupMatrices(name);
      const tol = /^T/.test(name) ? 1e-6 : /^I/.test(name) ? 1e-7 : 1e-12;
      let nImproper = 0;
      for (const m of list) {
        const d = det3(m);
        expect(Math.abs(Math.abs(d) - 1), `${name} det`).toBeLessThan(1e-6);
        if (d < 0) nImproper++;
        const mt = [m[0], m[3], m[6], m[1], m[4], m[7], m[2], m[5], m[8]];
        expect(maxDiff(mul3(mt, m), I3), `${name} orthogonality`).toBeLessThan(1e-6);
        expect(maxDiff(m, I3), `${name} contains identity`).toBeGreaterThan(1e-3);
      }
      expect(nImproper, `${name} improper count`).toBe(improper[name] ?? 0);
      const G = [I3, ...list.map((m) => Array.from(m))];
      let worst = 0;
      for (const a of G) {
        for (const b of G) {
          const p = mul3(a, b);
          let best = Infinity;
          for (const g of G) {
            best = Math.min(best, maxDiff(p, g));
            if (best <= tol) break;
          }
          worst = Math.max(worst, best);
        }
      }
      expect(worst, `${name} closure`).toBeLessThanOrEqual(tol);
    }
  });

  it('icosahedral settings are related as §8 states', () => {
    const conj = (r: number[], m: ArrayLike<number>): number[] => mul3(mul3(r, m), [r[0], r[3], r[6], r[1], r[4], r[7], r[2], r[5], r[8]]);
    const contains = (set: Float64Array[], m: number[]): boolean => set.some((g) => maxDiff(g, m) < 1e-7);
    const i1 = pointGroupMatrices('I1');
    for (const m of pointGroupMatrices('I2')) expect(contains(i1, conj(rz(90), m))).toBe(true);
    const i4 = pointGroupMatrices('I4');
    for (const m of pointGroupMatrices('I3')) expect(contains(i4, conj(rz(180), m))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Helical and combined lists

describe('helical matrices (§9, §11.3) and the combined list', () => {
  it('units=3, twist=30, rise=2.5', () => {
    const h = helicalMatrices(3, 30, 2.5);
    expect(h.length).toBe(2);
    expectMat(h[0].R, rows([0.8660254037844387, -0.5, 0], [0.5, 0.8660254037844387, 0], [0, 0, 1]), 1e-15, 'h[0]');
    expect(h[0].t).toEqual([0, 0, 2.5]);
    expectMat(h[1].R, rz(-30), 1e-15, 'h[1]');
    expect(h[1].t).toEqual([0, 0, -2.5]);
    const o = helicalOps(3, 30, 2.5, 1); // float32-exact inputs: identical
    expect(o.map((x) => [Array.from(x.R), x.t])).toEqual(h.map((x) => [Array.from(x.R), x.t]));
  });
  it('units=4, twist=−17.3, rise=1.7', () => {
    const h = helicalMatrices(4, -17.3, 1.7);
    expect(h.length).toBe(3);
    const angles = [-34.6, -17.3, 17.3];
    const tz = [3.4, 1.7, -1.7];
    h.forEach((op, i) => {
      expectMat(op.R, rz(angles[i]), 1e-12, `h4[${i}]`);
      expect(op.t[0]).toBe(0);
      expect(op.t[1]).toBe(0);
      expect(op.t[2]).toBeCloseTo(tz[i], 12);
    });
  });
  it('unit ranges and order', () => {
    const hh = (n: number): number[] => helicalMatrices(n, 10, 1).map((o) => -o.t[2]);
    expect(hh(1)).toEqual([]);
    expect(hh(2)).toEqual([-1]);
    expect(hh(3)).toEqual([-1, 1]);
    expect(hh(4)).toEqual([-2, -1, 1]);
    expect(hh(5)).toEqual([-2, -1, 1, 2]);
    expect(hh(6)).toEqual([-3, -2, -1, 1, 2]);
    const two = helicalMatrices(2, 23, 4.5);
    expectMat(two[0].R, rz(23), 1e-15, 'units=2');
    expect(two[0].t).toEqual([0, 0, 4.5]);
  });
  it('keeps tiny values (cos 90° is not zeroed)', () => {
    const h = helicalMatrices(2, 90, 1);
    expect(h[0].R[0]).toBe(Math.cos(Math.PI / 2));
    expect(h[0].R[0]).not.toBe(0);
  });
  it('helicalOps rounds twist and rise (Å) to float32 like RELION’s parser, then divides by the pixel size', () => {
    const o = helicalOps(3, 22.03, 22.03, 1);
    expect(o[1].t[2]).toBe(-22.030000686645508);
    expectMat(o[1].R, helicalMatrices(3, 22.030000686645508, 1)[1].R, 0, 'float32 twist');
    expect(helicalOps(3, 22.03, 22.03, 2)[1].t[2]).toBe(-22.030000686645508 / 2);
  });
  it('symmetryOps concatenates point group then helical, without products ([Q15])', () => {
    expect(symmetryOps('C1', 1, 30, 2, 1)).toEqual([]);
    expect(symmetryOps('c1', 0, 30, 2, 1)).toEqual([]);
    const ops = symmetryOps('C3', 3, 30, 2.5, 1);
    expect(ops.length).toBe(4);
    const c3 = pointGroupMatrices('C3');
    expect(Array.from(ops[0].R)).toEqual(Array.from(c3[0]));
    expect(Array.from(ops[1].R)).toEqual(Array.from(c3[1]));
    expect(ops[0].t).toEqual([0, 0, 0]);
    expect(ops[2].t).toEqual([0, 0, 2.5]);
    expect(ops[3].t).toEqual([0, 0, -2.5]);
    expect(symmetryOps('C1', 4, 10, 1, 1).length).toBe(3);
    expect(symmetryOps('I3', 1, 10, 1, 1).length).toBe(59);
    expectTomoError(() => symmetryOps('C2x', 1, 0, 0, 1), 'C2x');
  });
});

// ---------------------------------------------------------------------------------------------
// Fourier-space symmetrisation

const S6 = 6;
const SH6 = 4;
function checkInputs(): { F: Float64Array; W: Float64Array } {
  const F = new Float64Array(2 * SH6 * S6 * S6);
  const W = new Float64Array(SH6 * S6 * S6);
  for (let z = 0; z < S6; z++) {
    for (let y = 0; y < S6; y++) {
      for (let x = 0; x < SH6; x++) {
        const i = x + SH6 * (y + S6 * z);
        F[2 * i] = x + 10 * y + 100 * z;
        F[2 * i + 1] = 0.5 * x - y + 0.25 * z;
        W[i] = 1 + x + 2 * y + 3 * z;
      }
    }
  }
  return { F, W };
}

describe('symmetrised voxels, symmetry.md §11.4 (s = 6)', () => {
  const pts: [number, number, number][] = [[1, 1, 1], [0, 2, 1], [3, 5, 2], [2, 1, 4]];
  // [re, im, weight] per point; values from the RELION harness.
  const table: [string, () => SymmetryOp[], number[][]][] = [
    ['C2', () => symmetryOps('C2', 1, 0, 0, 1), [[311, -0.5, 13], [320, -0.5, 14], [353, -0.25, 23], [312, 0.25, 14]]],
    ['C4', () => symmetryOps('C4', 1, 0, 0, 1), [[331, -0.5, 17], [311, -0.5, 13], [342, -0.25, 20], [326.5, 0.25, 16.5]]],
    ['D2', () => symmetryOps('D2', 1, 0, 0, 1), [[331, 0, 17], [225, 1.125, 12], [333, 0, 19], [332, 0, 18]]],
    ['Ci', () => symmetryOps('Ci', 1, 0, 0, 1), [[111, 0, 7], [120, 0, 8], [253, 0, 20], [412, 0, 17]]],
    ['C2v', () => symmetryOps('C2v', 1, 0, 0, 1), [[331, -0.5, 17], [425, 0.625, 18], [333, -0.25, 19], [332, 0.25, 18]]],
    [
      'C3',
      () => symmetryOps('C3', 1, 0, 0, 1),
      [
        [259.1243556529821, -1.517949192431125, 13.886751345948127],
        [261.15470053837925, -2.25, 14.488033871712583],
        [368.6666666666667, -0.5, 19.666666666666668],
        [294.6666666666667, 2, 15.666666666666666],
      ],
    ],
    [
      'O',
      () => symmetryOps('O', 1, 0, 0, 1),
      [
        [331, 0, 17],
        [203.5, 0.5625, 11.333333333333334],
        [332, 0, 18],
        [331.6666666666667, 0, 17.666666666666668],
      ],
    ],
    [
      'I',
      () => symmetryOps('I', 1, 0, 0, 1),
      [
        [222.03528903504926, 0.07360679412435944, 12.313338231191738],
        [227.65970007825564, 0.07499999539917693, 12.414318835764423],
        [293.56530278937515, -7.37e-10, 16.022729787762145],
        [286.90688409070225, 7.3e-9, 15.492027587430762],
      ],
    ],
    [
      'helix(3, 30°, 2.5 px)',
      () => helicalMatrices(3, 30, 2.5),
      [
        [-25.985026918962557, 1.5223290993692586, 6.7320508075688776],
        [-151.68627243509943, 69.86645496846303, 14.000000000000002],
        [159.92863279495398, 7.300211698203678, 15.845299461620749],
        [275.960151272878, 3.6970115520638083, 17.17863279495408],
      ],
    ],
    [
      'helix(4, −17.3°, 1.7 px)',
      () => helicalMatrices(4, -17.3, 1.7),
      [
        [-7.6247132841986645, -12.07488738310737, 6.6575325393917524],
        [-30.35439144410196, -115.41558214989509, 12.404433115138779],
        [0.016971764875712836, 39.17256910696522, 16.04651783355731],
        [-15.094800598191682, -78.89399550031587, 17.244428523465494],
      ],
    ],
  ];
  for (const [name, mk, expected] of table) {
    it(name, () => {
      const { F, W } = checkInputs();
      const Fc = F.slice();
      const Wc = W.slice();
      const ops = mk();
      const a = symmetriseComplex(F, S6, ops);
      const b = symmetriseReal(W, S6, ops);
      expect(Array.from(F)).toEqual(Array.from(Fc)); // inputs untouched
      expect(Array.from(W)).toEqual(Array.from(Wc));
      pts.forEach(([x, y, z], k) => {
        const i = x + SH6 * (y + S6 * z);
        const [re, im, w] = expected[k];
        const tol = (v: number): number => 1e-12 * Math.max(1, Math.abs(v));
        expect(Math.abs(a[2 * i] - re), `${name} re at ${x},${y},${z}: ${a[2 * i]}`).toBeLessThanOrEqual(tol(re));
        // "~0i" in the table for O: allow rounding noise relative to the real part
        expect(Math.abs(a[2 * i + 1] - im), `${name} im at ${x},${y},${z}: ${a[2 * i + 1]}`).toBeLessThanOrEqual(
          name === 'I' && Math.abs(im) < 1e-8 ? 1e-11 : tol(re),
        );
        expect(Math.abs(b[i] - w), `${name} weight at ${x},${y},${z}: ${b[i]}`).toBeLessThanOrEqual(tol(w));
      });
      expect(a[0]).toBe(0);
      expect(a[1]).toBe(0);
      expect(b[0]).toBe(1);
    });
  }

  it('worked example: D2 at (0,2,1) term by term', () => {
    const { F, W } = checkInputs();
    const out = new Float64Array(2);
    const ops = symmetryOps('D2', 1, 0, 0, 1);
    const k = [0, 2, 1];
    const terms: [number, number, number][] = [[120, -1.75, 8]];
    for (const op of ops) {
      const p = [0, 1, 2].map((r) => op.R[3 * r] * k[0] + op.R[3 * r + 1] * k[1] + op.R[3 * r + 2] * k[2]);
      interp3C(F, S6, p[0], p[1], p[2], out);
      terms.push([out[0], out[1], interp3R(W, S6, p[0], p[1], p[2])]);
    }
    expect(terms).toEqual([[120, -1.75, 8], [520, 0.75, 20], [120, 1.75, 8], [140, 3.75, 12]]);
    expect(terms.reduce((acc, t) => acc + t[2], 0) / 4).toBe(12);
  });

  it('agrees with the C1 case (no ops): output equals input, as a fresh array', () => {
    const { F, W } = checkInputs();
    const a = symmetriseComplex(F, S6, []);
    expect(a).not.toBe(F);
    expect(Array.from(a)).toEqual(Array.from(F));
    expect(Array.from(symmetriseReal(W, S6, []))).toEqual(Array.from(W));
  });

  it('refuses to run in place and checks sizes', () => {
    const { F, W } = checkInputs();
    const ops = symmetryOps('C2', 1, 0, 0, 1);
    expect(() => symmetriseComplex(F, S6, ops, F)).toThrow(/in place/);
    expect(() => symmetriseReal(W, S6, ops, W)).toThrow(/in place/);
    expect(() => symmetriseComplex(F, 8, ops)).toThrow(RangeError);
    expect(() => symmetriseReal(F, S6, ops)).toThrow(RangeError);
  });
});

describe('interpolation edge rules (§10.2)', () => {
  const s = 8;
  const sh = 5;
  const F = new Float64Array(2 * sh * s * s);
  const W = new Float64Array(sh * s * s);
  const r = rng(7);
  for (let i = 0; i < W.length; i++) {
    W[i] = r();
    F[2 * i] = r() - 0.5;
    F[2 * i + 1] = r() - 0.5;
  }
  const at = (x: number, y: number, z: number): [number, number] => {
    const i = x + sh * (y + s * z);
    return [F[2 * i], F[2 * i + 1]];
  };
  const w = (x: number, y: number, z: number): number => W[x + sh * (y + s * z)];
  const out = new Float64Array(2);
  it('reads grid points directly for X > 0 and mirrored + conjugated for X ≤ 0 (incl. X = 0 and −0)', () => {
    interp3C(F, s, 2, 3, -2, out);
    expect(Array.from(out)).toEqual(at(2, 3, 6));
    interp3C(F, s, -2, 3, -2, out);
    expect(Array.from(out)).toEqual([at(2, 5, 2)[0], -at(2, 5, 2)[1]]);
    interp3C(F, s, 0, 3, 1, out);
    expect(Array.from(out)).toEqual([at(0, 5, 7)[0], -at(0, 5, 7)[1]]);
    interp3C(F, s, -0, 3, 1, out);
    expect(Array.from(out)).toEqual([at(0, 5, 7)[0], -at(0, 5, 7)[1]]);
    expect(interp3R(W, s, -2, 3, -2)).toBe(w(2, 5, 2));
    expect(interp3R(W, s, 0, 3, 1)).toBe(w(0, 5, 7));
  });
  it('a tiny negative coordinate reads frequency −1 (RELION quirk kept)', () => {
    interp3C(F, s, 2, -1e-17, 1, out);
    expect(Array.from(out)).toEqual(at(2, 7, 1));
    interp3C(F, s, 2, 1, -1e-17, out);
    expect(Array.from(out)).toEqual(at(2, 1, 7));
    expect(interp3R(W, s, 2, -1e-17, 1)).toBe(w(2, 7, 1));
  });
  it('beyond the last column: x0 clamped to sh−1, second tap mirrored to sh−2, fraction kept', () => {
    interp3C(F, s, 4.25, 1, 2, out);
    expect(out[0]).toBeCloseTo(0.75 * at(4, 1, 2)[0] + 0.25 * at(3, 1, 2)[0], 14);
    interp3C(F, s, 5.5, 1, 2, out); // x0 = 5 → clamped to 4, x1 = 5 → 3, fx = 0.5
    expect(out[1]).toBeCloseTo(0.5 * at(4, 1, 2)[1] + 0.5 * at(3, 1, 2)[1], 14);
    expect(interp3R(W, s, 4.25, 1, 2)).toBeCloseTo(0.75 * w(4, 1, 2) + 0.25 * w(3, 1, 2), 14);
  });
  it('y and z are periodic; trilinear order x, y, z', () => {
    // Y = 3.5 → y0 = 3, y1 = 4 ; Z = −0.5 → 7.5 → z0 = 7, z1 = 0
    interp3C(F, s, 1.25, 3.5, -0.5, out);
    const lerp = (a: number, b: number, f: number): number => (1 - f) * a + f * b;
    const vx = (y: number, z: number, c: 0 | 1): number => lerp(at(1, y, z)[c], at(2, y, z)[c], 0.25);
    for (const c of [0, 1] as const) {
      const e = lerp(lerp(vx(3, 7, c), vx(4, 7, c), 0.5), lerp(vx(3, 0, c), vx(4, 0, c), 0.5), 0.5);
      expect(out[c]).toBe(e);
    }
    // Y = 7.5 (beyond +Nyquist) → y0 = 7, y1 = 0
    const wx = (y: number, z: number): number => lerp(w(1, y, z), w(2, y, z), 0.25);
    expect(interp3R(W, s, 1.25, 7.5, 2)).toBe(lerp(wx(7, 2), wx(0, 2), 0.5));
  });
});

describe('symmetrisation: properties', () => {
  const s = 12;
  const sh = s / 2 + 1;

  function randomReal(seed: number): Float64Array {
    const r = rng(seed);
    const f = new Float64Array(s * s * s);
    for (let i = 0; i < f.length; i++) f[i] = r() - 0.5;
    return f;
  }
  /** Real-space average of f over {I} ∪ ops, each an exact grid permutation about voxel 0 (periodic): g(x) = f(R·x mod s). */
  function realSpaceAverage(f: Float64Array, ops: SymmetryOp[]): Float64Array {
    const g = f.slice();
    const mod = (v: number): number => ((Math.round(v) % s) + s) % s;
    for (const op of ops) {
      const R = op.R;
      for (let z = 0; z < s; z++) {
        for (let y = 0; y < s; y++) {
          for (let x = 0; x < s; x++) {
            const px = mod(R[0] * x + R[1] * y + R[2] * z + op.t[0]);
            const py = mod(R[3] * x + R[4] * y + R[5] * z + op.t[1]);
            const pz = mod(R[6] * x + R[7] * y + R[8] * z + op.t[2]);
            g[x + s * (y + s * z)] += f[px + s * (py + s * pz)];
          }
        }
      }
    }
    const n = ops.length + 1;
    for (let i = 0; i < g.length; i++) g[i] /= n;
    return g;
  }
  const maxAbs = (a: Float64Array): number => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

  it('leaves the transform of a C4-symmetric map (about voxel 0) unchanged', () => {
    const ops = symmetryOps('C4', 1, 0, 0, 1);
    const f = realSpaceAverage(randomReal(1), ops); // C4-symmetric about voxel 0
    const F = rfft3(f, s, s, s);
    const G = symmetriseComplex(F, s, ops);
    expect(maxDiff(G, F)).toBeLessThan(1e-12 * maxAbs(F));
    // a non-symmetric map does change
    const F2 = rfft3(randomReal(2), s, s, s);
    expect(maxDiff(symmetriseComplex(F2, s, ops), F2)).toBeGreaterThan(0.1);
  });

  for (const name of ['C4', 'D4', 'O', 'D2h', 'C4v', 'Ci', 'Cs', 'D4h', 'Oh(cleaned)']) {
    it(`${name}: equals the real-space average over the group (exact grid permutations about voxel 0)`, () => {
      // Oh's mirror generator carries RELION's −3e-16 entries, which trigger the §10.2 quirk (tested
      // below); with those entries rounded, the group is an exact grid permutation again.
      const ops =
        name === 'Oh(cleaned)'
          ? symmetryOps('Oh', 1, 0, 0, 1).map((o) => ({ R: o.R.map((v) => Math.round(v)), t: o.t }))
          : symmetryOps(name, 1, 0, 0, 1);
      const f = randomReal(3);
      const F = rfft3(f, s, s, s);
      const g = irfft3(symmetriseComplex(F, s, ops), s, s, s).map((v) => v / (s * s * s));
      const ref = realSpaceAverage(f, ops);
      expect(maxDiff(g, ref)).toBeLessThan(1e-12);
    });
  }

  /** Samples (voxel, op) whose flipped y or z coordinate is a tiny negative that rounds to s when wrapped (§10.2 quirk). */
  function quirkHits(name: string, box: number): { hits: number; samples: number } {
    const ops = symmetryOps(name, 1, 0, 0, 1);
    const h = box / 2 + 1;
    const sig = (i: number): number => (i < box / 2 ? i : i - box);
    let hits = 0;
    let samples = 0;
    for (let z = 0; z < box; z++) {
      for (let y = 0; y < box; y++) {
        for (let x = 0; x < h; x++) {
          for (const { R } of ops) {
            samples++;
            const X = R[0] * x + R[1] * sig(y) + R[2] * sig(z);
            let Y = R[3] * x + R[4] * sig(y) + R[5] * sig(z);
            let Z = R[6] * x + R[7] * sig(y) + R[8] * sig(z);
            if (!(X > 0)) {
              Y = -Y;
              Z = -Z;
            }
            if ((Y < 0 && Y + box === box) || (Z < 0 && Z + box === box)) hits++;
          }
        }
      }
    }
    return { hits, samples };
  }

  it('the tiny-negative quirk is hit exactly where RELION hits it (Oh: 15 of 15040 at s = 8, 63 of 108288 at s = 16)', () => {
    expect(quirkHits('Oh', 8)).toEqual({ hits: 15, samples: 15040 });
    expect(quirkHits('Oh', 16)).toEqual({ hits: 63, samples: 108288 });
    for (const n of ['C3', 'C8', 'D6', 'T', 'O', 'I', 'I1', 'I3', 'I4', 'Td', 'Th', 'Ih', 'I1h', 'I3h', 'I4h']) {
      expect(quirkHits(n, 16).hits, n).toBe(0);
    }
    // and it changes the result (Oh with RELION's bits ≠ the exact permutation average)
    const f = randomReal(3);
    const F = rfft3(f, s, s, s);
    const exact = symmetryOps('Oh', 1, 0, 0, 1).map((o) => ({ R: o.R.map((v) => Math.round(v)), t: o.t }));
    expect(maxDiff(symmetriseComplex(F, s, symmetryOps('Oh', 1, 0, 0, 1)), symmetriseComplex(F, s, exact))).toBeGreaterThan(1e-3);
  });

  it('helical translation along z (twist 0, integer rise) equals the real-space average of shifted maps', () => {
    const ops = helicalMatrices(5, 0, 3);
    const f = randomReal(4);
    const F = rfft3(f, s, s, s);
    const g = irfft3(symmetriseComplex(F, s, ops), s, s, s).map((v) => v / (s * s * s));
    // unit hh: f(x − hh·rise·ẑ)
    expect(maxDiff(g, realSpaceAverage(f, ops))).toBeLessThan(1e-12);
  });

  it('is idempotent for C4 (data and weights)', () => {
    const ops = symmetryOps('C4', 1, 0, 0, 1);
    const F = rfft3(randomReal(5), s, s, s);
    const W = new Float64Array(sh * s * s);
    for (let i = 0; i < W.length; i++) W[i] = F[2 * i] * F[2 * i] + F[2 * i + 1] * F[2 * i + 1];
    const { data: F1, weight: W1 } = symmetriseDataAndWeight(F, W, s, ops);
    const { data: F2, weight: W2 } = symmetriseDataAndWeight(F1, W1, s, ops);
    expect(maxDiff(F2, F1)).toBeLessThan(1e-12 * maxAbs(F1));
    expect(maxDiff(W2, W1)).toBeLessThan(1e-12 * maxAbs(W1));
    expect(maxDiff(F1, F)).toBeGreaterThan(0.1);
  });

  it('the combined and slab-wise passes give the same bits as the separate functions', () => {
    const r = rng(6);
    const D = new Float64Array(2 * sh * s * s).map(() => r() - 0.5);
    const W = new Float64Array(sh * s * s).map(() => r());
    const ops = [...symmetryOps('I3', 1, 0, 0, 1), ...helicalOps(3, 33.3, 1.7, 1)];
    const a = symmetriseComplex(D, s, ops);
    const b = symmetriseReal(W, s, ops);
    const both = symmetriseDataAndWeight(D, W, s, ops);
    expect(both.data).toEqual(a);
    expect(both.weight).toEqual(b);
    const sa = new Float64Array(D.length);
    const sb = new Float64Array(W.length);
    symmetriseSlab(D, W, s, ops, sa, sb, 0, 5);
    symmetriseSlab(D, W, s, ops, sa, sb, 5, s);
    expect(sa).toEqual(a);
    expect(sb).toEqual(b);
  });

  it('in the calling thread, for a finalisation pool: data sums in WebAssembly memories of their own, the same values', async () => {
    // (threads ≤ 1: the pool itself is not used, only told of; box s has factors 2 and 3 only.)
    const r = rng(9);
    const halves = [0, 1].map(() => ({ data: new Float64Array(2 * sh * s * s).map(() => r() - 0.5), weight: new Float64Array(sh * s * s).map(() => r()) })) as [
      { data: Float64Array; weight: Float64Array },
      { data: Float64Array; weight: Float64Array },
    ];
    const ops = symmetryOps('C4', 1, 0, 0, 1);
    const pool = {} as FinalisationPool;
    const plain = await symmetriseHalves(halves, s, ops, 1, true, null);
    const forPool = await symmetriseHalves(halves, s, ops, 1, true, pool);
    for (const h of [0, 1]) {
      expect(memoryOf(plain[h].data)).toBeNull();
      expect(memoryOf(forPool[h].data)).not.toBeNull();
      expect(forPool[h].data).toEqual(plain[h].data);
      expect(forPool[h].weight).toEqual(plain[h].weight);
    }
  });

  it('matches a direct per-voxel evaluation with interp3C/interp3R (incl. helical phase)', () => {
    const r = rng(8);
    const D = new Float64Array(2 * sh * s * s).map(() => r() - 0.5);
    const W = new Float64Array(sh * s * s).map(() => r());
    const ops = [...symmetryOps('Oh', 1, 0, 0, 1), ...helicalOps(4, 90, 2.2, 1)];
    const a = symmetriseComplex(D, s, ops);
    const b = symmetriseReal(W, s, ops);
    const out = new Float64Array(2);
    const sig = (i: number): number => (i < s / 2 ? i : i - s);
    let worst = 0;
    for (let z = 0; z < s; z++) {
      for (let y = 0; y < s; y++) {
        for (let x = 0; x < sh; x++) {
          const i = x + sh * (y + s * z);
          const k = [x, sig(y), sig(z)];
          let re = D[2 * i];
          let im = D[2 * i + 1];
          let wt = W[i];
          for (const op of ops) {
            const R = op.R;
            const p = [0, 1, 2].map((q) => R[3 * q] * k[0] + R[3 * q + 1] * k[1] + R[3 * q + 2] * k[2]);
            interp3C(D, s, p[0], p[1], p[2], out);
            const phi = 2 * Math.PI * ((k[0] / (2 * (sh - 1))) * op.t[0] + (k[1] / s) * op.t[1] + (k[2] / s) * op.t[2]);
            re += out[0] * Math.cos(phi) - out[1] * Math.sin(phi);
            im += out[0] * Math.sin(phi) + out[1] * Math.cos(phi);
            wt += interp3R(W, s, p[0], p[1], p[2]);
          }
          const n = ops.length + 1;
          worst = Math.max(worst, Math.abs(a[2 * i] - re / n), Math.abs(a[2 * i + 1] - im / n), Math.abs(b[i] - wt / n));
        }
      }
    }
    expect(worst).toBeLessThan(1e-14);
  });
});
