/**
 * Symmetry operators for `--sym` and the helical options, as RELION 5's
 * relion_tomo_reconstruct_particle builds them (spec: symmetry.md §3–§9, numerics.md §7).
 *
 * Point groups: the name (or a symmetry-definition file of that name, see below) is expanded
 * into generator lines (`rot_axis`, `mirror_plane`, `inversion`), each generator line is expanded
 * into matrices, and the list is closed under multiplication with RELION's pair-scan order and
 * tolerance, so that the matrices, their values and their order match RELION's SymList. The
 * identity is never part of the list (the symmetrisers add it implicitly).
 *
 * Compatibility notes:
 * - Like RELION, `--sym X` is first tried as a *file name* relative to the working directory; only
 *   if no regular file `X` exists is it interpreted as a point-group name. The file format is
 *   RELION's: lines (read in 79-byte pieces) starting with `;` or `#` are comments, and the lines
 *   `rot_axis <fold> <x> <y> <z>`, `mirror_plane <x> <y> <z>` and `inversion` define generators;
 *   other lines are ignored. The program itself skips all of this for the exact strings "C1"/"c1".
 * - Names are case-insensitive, 1–4 characters, with n of one or two digits.
 * - RELION exits (with status 0) for odd Sn, I5 and I5h; here they are errors, as are unknown names.
 * - Improper elements (mirrors, inversion) are kept as det = −1 matrices.
 */

import * as fs from 'node:fs';

import { TomoError } from '../errors.js';

export interface SymmetryOp {
  /** 3×3 row-major; applied to the output frequency: p = R·k. */
  R: Float64Array;
  /** Translation in output-box pixels (the 4th column of RELION's 4×4 matrix). */
  t: [number, number, number];
}

/** XMIPP_EQUAL_ACCURACY in RELION's double build. */
const EPS = 1e-6;

/** RELION's PI literal (identical to Math.PI) and DEG2RAD(d) = d·PI/180, evaluated left to right. */
function deg2rad(d: number): number {
  return (d * Math.PI) / 180;
}

const ACCEPTED =
  'C<n>, Ci, Cs, C<n>v, C<n>h, S<n> (n even), D<n>, D<n>v, D<n>h, T, Td, Th, O, Oh, ' +
  'I, I1, I2, I3, I4, Ih, I1h, I2h, I3h, I4h (n = 0–99, case-insensitive), or the name of a ' +
  'RELION symmetry-definition file';

// ---------------------------------------------------------------------------------------------
// Generators

type Generator =
  | { kind: 'rot'; fold: number; axis: [number, number, number] }
  | { kind: 'mirror'; normal: [number, number, number] }
  | { kind: 'inversion' };

function rot(fold: number, x: number, y: number, z: number): Generator {
  return { kind: 'rot', fold, axis: [x, y, z] };
}
/** Mirror-plane normals are read with `%f` by RELION: float32, then widened. */
function mir(x: number, y: number, z: number): Generator {
  return { kind: 'mirror', normal: [Math.fround(x), Math.fround(y), Math.fround(z)] };
}
const INV: Generator = { kind: 'inversion' };

const I1_LINES = [
  rot(2, 1, 0, 0),
  rot(5, 0.8506508070267, 0, -0.5257311142635),
  rot(3, 0.934172364, 0.3568220765, 0),
];
const I2_LINES = [
  rot(2, 0, 0, 1),
  rot(5, 0.525731114, 0, 0.850650807),
  rot(3, 0, 0.356822076, 0.934172364),
];
const I3_LINES = [
  rot(2, -0.5257311143, 0, 0.850650807),
  rot(5, 0, 0, 1),
  rot(3, -0.4911234778630044, 0.3568220764705179, 0.7946544753759428),
];
const I4_LINES = [
  rot(2, 0.5257311143, 0, 0.850650807),
  rot(5, 0.8944271932547096, 0, 0.4472135909903704),
  rot(3, 0.4911234778630044, 0.3568220764705179, 0.7946544753759428),
];
const T_LINES = [rot(3, 0, 0, 1), rot(2, 0, 0.816496, 0.57735)];
const O_LINES = [rot(3, 0.5773502, 0.5773502, 0.5773502), rot(4, 0, 0, 1)];

function rejectName(name: string, why?: string): never {
  throw new TomoError(
    `Invalid symmetry --sym "${name}": ${why ?? 'not a readable symmetry file and not a recognised point group'}. ` +
      `Accepted: ${ACCEPTED}.`,
  );
}

/**
 * RELION's `isSymmetryGroup` + `fill_symmetry_class`: the generator lines for a group name, in
 * RELION's order (symmetry.md §3–§4). Throws TomoError for names RELION does not accept.
 */
function groupGenerators(name: string): Generator[] {
  // Directories are removed; then 1–4 characters, ASCII upper-cased.
  const base = name.slice(name.lastIndexOf('/') + 1);
  if (base.length < 1 || base.length > 4) rejectName(name);
  const u = base.replace(/[a-z]/g, (c) => c.toUpperCase());
  let m: RegExpExecArray | null;
  if ((m = /^C([0-9]{1,2})$/.exec(u))) return [rot(+m[1], 0, 0, 1)];
  if (u === 'CI') return [INV];
  if (u === 'CS') return [mir(0, 0, 1)];
  if ((m = /^C([0-9]{1,2})V$/.exec(u))) return [rot(+m[1], 0, 0, 1), mir(0, 1, 0)];
  if ((m = /^C([0-9]{1,2})H$/.exec(u))) return [rot(+m[1], 0, 0, 1), mir(0, 0, 1)];
  if ((m = /^S([0-9]{1,2})$/.exec(u))) {
    const n = +m[1];
    if (n % 2 !== 0) rejectName(name, `the order of an Sn group must be even, got ${n}`);
    return [rot(n / 2, 0, 0, 1), INV];
  }
  if ((m = /^D([0-9]{1,2})(V|H)?$/.exec(u))) {
    const n = +m[1];
    const g: Generator[] = [];
    if (n > 1) g.push(rot(n, 0, 0, 1));
    g.push(rot(2, 1, 0, 0));
    if (m[2] === 'V') g.push(mir(1, 0, 0));
    else if (m[2] === 'H') g.push(mir(0, 0, 1));
    return g;
  }
  switch (u) {
    case 'T':
      return [...T_LINES];
    case 'TD':
      return [...T_LINES, mir(1.4142136, 2.4494897, 0)];
    case 'TH':
      return [rot(3, 0, 0, 1), rot(2, 0, -0.816496, -0.57735), INV];
    case 'O':
      return [...O_LINES];
    case 'OH':
      return [...O_LINES, mir(0, 1, 1)];
    case 'I':
    case 'I2':
      return [...I2_LINES];
    case 'I1':
      return [...I1_LINES];
    case 'I3':
      return [...I3_LINES];
    case 'I4':
      return [...I4_LINES];
    case 'IH':
    case 'I2H':
      return [...I2_LINES, mir(1, 0, 0)];
    case 'I1H':
      return [...I1_LINES, mir(0, 0, -1)];
    case 'I3H':
      return [...I3_LINES, mir(0.850650807, 0, 0.525731114)];
    case 'I4H':
      return [...I4_LINES, mir(0.850650807, 0, -0.525731114)];
    case 'I5':
    case 'I5H':
      return rejectName(name, 'the I5 icosahedral setting is not implemented (by RELION either)');
  }
  return rejectName(name);
}

// ---------------------------------------------------------------------------------------------
// Symmetry-definition files

/** Splits text the way repeated `fgets(buf, 80, f)` would: pieces of ≤ 79 chars, each ending at a newline. */
function fgetsLines(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const nl = text.indexOf('\n', i);
    const lineEnd = nl < 0 ? text.length : nl + 1;
    const end = Math.min(lineEnd, i + 79);
    out.push(text.slice(i, end));
    i = end;
  }
  return out;
}

function parseIntToken(tok: string | undefined): number | null {
  const m = tok === undefined ? null : /^[+-]?[0-9]+/.exec(tok);
  return m ? parseInt(m[0], 10) : null;
}

function parseFloatToken(tok: string | undefined): number | null {
  if (tok === undefined) return null;
  const v = parseFloat(tok);
  return Number.isNaN(v) ? null : v;
}

function fileGenerators(path: string, text: string): Generator[] {
  const gens: Generator[] = [];
  for (const line of fgetsLines(text)) {
    if (line[0] === ';' || line[0] === '#') continue;
    const tok = line.split(/[ \t\n]+/).filter((t) => t.length > 0);
    if (tok.length === 0) continue;
    const bad = (): never => {
      throw new TomoError(`Symmetry file "${path}": malformed line "${line.trimEnd()}"`);
    };
    if (tok[0] === 'rot_axis') {
      const fold = parseIntToken(tok[1]);
      const x = parseFloatToken(tok[2]);
      const y = parseFloatToken(tok[3]);
      const z = parseFloatToken(tok[4]);
      if (fold === null || x === null || y === null || z === null) bad();
      gens.push(rot(fold as number, x as number, y as number, z as number));
    } else if (tok[0] === 'mirror_plane') {
      const x = parseFloatToken(tok[1]);
      const y = parseFloatToken(tok[2]);
      const z = parseFloatToken(tok[3]);
      if (x === null || y === null || z === null) bad();
      gens.push(mir(x as number, y as number, z as number));
    } else if (tok[0] === 'inversion') {
      gens.push(INV);
    }
  }
  return gens;
}

// ---------------------------------------------------------------------------------------------
// 3×3 helpers (RELION works with 4×4 homogeneous matrices whose 4th row/column is trivial here;
// dropping it changes no value: the extra terms of every sum are exact zeros).

function mul(a: Float64Array, b: Float64Array): Float64Array {
  const r = new Float64Array(9);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      r[3 * i + j] = a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
    }
  }
  return r;
}

function transpose(a: Float64Array): Float64Array {
  return Float64Array.of(a[0], a[3], a[6], a[1], a[4], a[7], a[2], a[5], a[8]);
}

function zeroSmall(a: Float64Array): void {
  for (let i = 0; i < 9; i++) if (Math.abs(a[i]) < EPS) a[i] = 0;
}

/** RELION's alignWithZ: a proper rotation A with A·â = ẑ. */
function alignWithZ(v: [number, number, number]): Float64Array {
  const mod = Math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  let ax = 0;
  let ay = 0;
  let az = 0;
  if (Math.abs(mod) > EPS) {
    const im = 1 / mod;
    ax = v[0] * im;
    ay = v[1] * im;
    az = v[2] * im;
  }
  const p = Math.sqrt(ay * ay + az * az);
  if (p > EPS) {
    return Float64Array.of(p, (-ax * ay) / p, (-ax * az) / p, 0, az / p, -ay / p, ax, ay, az);
  }
  return ax > 0 ? Float64Array.of(0, 0, -1, 0, 1, 0, 1, 0, 0) : Float64Array.of(0, 0, 1, 0, 1, 0, -1, 0, 0);
}

// ---------------------------------------------------------------------------------------------
// Correctly rounded sin/cos. V8's Math.sin/cos are faithful (≤ 1 ulp) but not always correctly
// rounded (e.g. cos(216°), sin(240°) differ from glibc's in the last bit); RELION's matrices come
// from glibc, which rounds correctly. Evaluating in double-double arithmetic and rounding once
// reproduces RELION's matrix bits (checked against symmetry_matrices.json for all 38 groups).

const SPLITTER = 134217729; // 2^27 + 1
const PIO2_1 = 1.5707963267948966;
const PIO2_2 = 6.123233995736766e-17;
const PIO2_3 = -1.4973849048591698e-33;

interface DD {
  h: number;
  l: number;
}

function quickTwoSum(a: number, b: number): DD {
  const s = a + b;
  return { h: s, l: b - (s - a) };
}

function twoSum(a: number, b: number): DD {
  const s = a + b;
  const bb = s - a;
  return { h: s, l: a - (s - bb) + (b - bb) };
}

function twoProd(a: number, b: number): DD {
  const p = a * b;
  let t = SPLITTER * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLITTER * b;
  const bh = t - (t - b);
  const bl = b - bh;
  return { h: p, l: ah * bh - p + ah * bl + al * bh + al * bl };
}

function ddAdd(a: DD, b: DD): DD {
  const s = twoSum(a.h, b.h);
  const t = twoSum(a.l, b.l);
  const u = quickTwoSum(s.h, s.l + t.h);
  return quickTwoSum(u.h, u.l + t.l);
}

function ddMul(a: DD, b: DD): DD {
  const p = twoProd(a.h, b.h);
  return quickTwoSum(p.h, p.l + (a.h * b.l + a.l * b.h));
}

function ddDiv(a: DD, d: number): DD {
  const q1 = a.h / d;
  const p = twoProd(q1, d);
  const q2 = (a.h - p.h - p.l + a.l) / d;
  return quickTwoSum(q1, q2);
}

function neg(a: DD): DD {
  return { h: -a.h, l: -a.l };
}

/**
 * [sin x, cos x], each correctly rounded (barring ties closer than ~1e-30 relative). glibc, which
 * RELION uses, agreed on all but ~0.1% of 240 000 helical angles tested (glibc being the one off by
 * an ulp there) and on every point-group angle.
 */
export function sinCos(x: number): [number, number] {
  if (!Number.isFinite(x)) return [NaN, NaN];
  if (Math.abs(x) > 1e6) return [Math.sin(x), Math.cos(x)];
  const k = Math.round(x / PIO2_1);
  let r: DD = { h: x, l: 0 };
  r = ddAdd(r, neg(twoProd(k, PIO2_1)));
  r = ddAdd(r, neg(twoProd(k, PIO2_2)));
  r = ddAdd(r, { h: -k * PIO2_3, l: 0 });
  const r2 = ddMul(r, r);
  let sin = r;
  let term = r;
  for (let n = 3; Math.abs(term.h) > 1e-40; n += 2) {
    term = neg(ddDiv(ddMul(term, r2), (n - 1) * n));
    sin = ddAdd(sin, term);
  }
  let cos: DD = { h: 1, l: 0 };
  term = cos;
  for (let n = 2; Math.abs(term.h) > 1e-40; n += 2) {
    term = neg(ddDiv(ddMul(term, r2), (n - 1) * n));
    cos = ddAdd(cos, term);
  }
  const s = sin.h + sin.l;
  const c = cos.h + cos.l;
  switch (((k % 4) + 4) % 4) {
    case 0:
      return [s, c];
    case 1:
      return [c, -s];
    case 2:
      return [-s, -c];
    default:
      return [-c, s];
  }
}

function rotZ(deg: number): Float64Array {
  const [s, c] = sinCos(deg2rad(deg));
  return Float64Array.of(c, -s, 0, s, c, 0, 0, 0, 1);
}

/** Inverse of a general 3×3 matrix (cofactors / determinant). */
function invert(m: Float64Array): Float64Array {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return Float64Array.of(
    A / det, -(b * i - c * h) / det, (b * f - c * e) / det,
    B / det, (a * i - c * g) / det, -(a * f - c * d) / det,
    C / det, -(a * h - b * g) / det, (a * e - b * d) / det,
  );
}

/**
 * RELION stores the mirror with normal v as Aᵀ·diag(1,1,−1)·(Aᵀ)⁻¹ with A = alignWithZ(v), the
 * inverse taken by a general (SVD-based) 4×4 inversion. Mathematically this is I − 2n̂n̂ᵀ; only
 * the last-bit rounding depends on the inversion algorithm, and mirror generators are not cleaned
 * of tiny values, so those bits decide which samples hit the "tiny negative coordinate" quirk of
 * the Fourier symmetriser (symmetry.md §10.2). For the oblique mirror generators of the built-in
 * groups we therefore use RELION's stored values (symmetry_matrices.json: Td[3], Oh[5], I3h[7],
 * I4h[7]); every other mirror (axis-aligned ones are exact anyway, or from a user file) is
 * computed with an exact-inverse formula.
 */
const RELION_MIRRORS = new Map<string, number[]>([
  [
    mirrorKey([1.4142136, 2.4494897, 0]),
    [0.49999990390876714, -0.866025459262731, 0, -0.866025459262731, -0.4999999039087669, 0, 0, 0, 1],
  ],
  [
    mirrorKey([0, 1, 1]),
    [1, 0, 0, 0, -3.3306690738754696e-16, -0.9999999999999998, 0, -0.9999999999999997, -1.6653345369377348e-16],
  ],
  [
    mirrorKey([0.850650807, 0, 0.525731114]),
    [-0.44721361438470686, 0, -0.8944271815575411, 0, 1, 0, -0.8944271815575413, 0, 0.44721361438470725],
  ],
  [
    mirrorKey([0.850650807, 0, -0.525731114]),
    [-0.44721361438470686, 0, 0.8944271815575411, 0, 1, 0, 0.8944271815575413, 0, 0.44721361438470725],
  ],
]);

function mirrorKey(v: [number, number, number]): string {
  return v.map((c) => Math.fround(c)).join(',');
}

function mirrorMatrix(normal: [number, number, number]): Float64Array {
  const known = RELION_MIRRORS.get(mirrorKey(normal));
  if (known) return Float64Array.from(known);
  const A = transpose(alignWithZ(normal));
  const D = Float64Array.of(1, 0, 0, 0, 1, 0, 0, 0, -1);
  return mul(mul(A, D), invert(A));
}

interface Element {
  /** true when RELION's L matrix is diag(1,1,−1) (odd number of inversion generators). */
  L: boolean;
  R: Float64Array;
}

function expandGenerators(gens: Generator[]): Element[] {
  const els: Element[] = [];
  for (const g of gens) {
    if (g.kind === 'rot') {
      const A = alignWithZ(g.axis);
      const At = transpose(A);
      const inc = 360 / g.fold;
      let ang = inc;
      for (let j = 1; j < g.fold; j++, ang += inc) {
        const Q = mul(mul(At, rotZ(ang)), A);
        zeroSmall(Q);
        els.push({ L: false, R: transpose(Q) });
      }
    } else if (g.kind === 'mirror') {
      els.push({ L: false, R: mirrorMatrix(g.normal) });
    } else {
      els.push({ L: true, R: Float64Array.of(-1, 0, 0, 0, -1, 0, 0, 0, -1) });
    }
  }
  return els;
}

function isIdentity(R: Float64Array): boolean {
  for (let i = 0; i < 9; i++) if (Math.abs(R[i] - (i % 4 === 0 ? 1 : 0)) > EPS) return false;
  return true;
}

function closeEnough(a: Float64Array, b: Float64Array): boolean {
  for (let i = 0; i < 9; i++) if (Math.abs(a[i] - b[i]) > EPS) return false;
  return true;
}

/**
 * RELION's compute_subgroup: products R_i·R_j in the pair order (0,n),(1,n)…(n,n),(n,n−1)…(n,0)
 * for n = 0,1,…; new elements (not ≈ identity, not ≈ a stored element) are appended after
 * zeroing entries below ε. A product's new pairs always lie in later blocks, so one pass over
 * the growing block index visits pairs in exactly the order of RELION's restarting scan.
 */
function closeGroup(els: Element[]): void {
  // Guard against user files whose generators do not generate a finite group (RELION loops on).
  const maxElements = Math.max(1000, 4 * els.length);
  const consider = (i: number, j: number): void => {
    const L = els[i].L !== els[j].L;
    const R = mul(els[i].R, els[j].R);
    if (!L && isIdentity(R)) return;
    for (const e of els) if (e.L === L && closeEnough(e.R, R)) return;
    zeroSmall(R);
    els.push({ L, R });
    if (els.length > maxElements) {
      throw new TomoError(`symmetry generators do not close to a finite point group (more than ${maxElements} elements)`);
    }
  };
  for (let n = 0; n < els.length; n++) {
    for (let i = 0; i <= n; i++) consider(i, n);
    for (let j = n - 1; j >= 0; j--) consider(n, j);
  }
}

function generatorsFor(name: string): Generator[] {
  // RELION tries a file of that name first (relative to the working directory).
  let text: string | null = null;
  try {
    if (name.length > 0 && fs.statSync(name, { throwIfNoEntry: false })?.isFile()) text = fs.readFileSync(name, 'latin1');
  } catch {
    text = null;
  }
  return text !== null ? fileGenerators(name, text) : groupGenerators(name);
}

/**
 * RELION's point-group matrices for `--sym` (case-insensitive; identity excluded), in RELION's
 * order, as 3×3 row-major arrays (RELION's stored "R", used as is: p = R·k). "C1"/"c1" → [].
 * Throws TomoError for names RELION rejects (including odd Sn, I5 and I5h, for which RELION exits).
 */
export function pointGroupMatrices(name: string): Float64Array[] {
  if (name === 'C1' || name === 'c1') return [];
  const els = expandGenerators(generatorsFor(name));
  closeGroup(els);
  return els.map((e) => e.R);
}

/**
 * RELION's Symmetry::getHelicalSymmetryMatrices(nrAsu, twist, rise) with the arguments used as
 * given: for hh = −⌊n/2⌋ … ⌈n/2⌉−1, hh ≠ 0, in that order, rotation Rz(−hh·twist) (degrees; not
 * transposed, tiny values not zeroed) and translation (0, 0, −hh·rise) in output pixels.
 * n ≤ 1 gives no matrices.
 */
export function helicalMatrices(nrAsu: number, twistDeg: number, risePx: number): SymmetryOp[] {
  if (!Number.isInteger(nrAsu)) throw new RangeError(`nr_helical_asu must be an integer, got ${nrAsu}`);
  if (nrAsu <= 1) return [];
  const hMin = -Math.floor(nrAsu / 2);
  const hMax = -hMin + (nrAsu % 2);
  const ops: SymmetryOp[] = [];
  for (let hh = hMin; hh < hMax; hh++) {
    if (hh === 0) continue;
    const [s, c] = sinCos(deg2rad(hh * -twistDeg));
    ops.push({ R: Float64Array.of(c, -s, 0, s, c, 0, 0, 0, 1), t: [0, 0, -hh * risePx] });
  }
  return ops;
}

/**
 * Helical ops as the program builds them: RELION parses twist and rise (Å) as float32, then turns
 * the rise into pixels of the output box (÷ p_out).
 */
export function helicalOps(nrAsu: number, twistDeg: number, riseAngst: number, pixelSize: number): SymmetryOp[] {
  return helicalMatrices(nrAsu, Math.fround(twistDeg), Math.fround(riseAngst) / pixelSize);
}

/** The full list the program applies: point group (t = 0), then helical ops — concatenated, not composed ([Q15]). */
export function symmetryOps(sym: string, nrAsu: number, twistDeg: number, riseAngst: number, pixelSize: number): SymmetryOp[] {
  const ops: SymmetryOp[] = [];
  if (sym !== 'C1' && sym !== 'c1') for (const R of pointGroupMatrices(sym)) ops.push({ R, t: [0, 0, 0] });
  if (nrAsu > 1) ops.push(...helicalOps(nrAsu, twistDeg, riseAngst, pixelSize));
  return ops;
}
