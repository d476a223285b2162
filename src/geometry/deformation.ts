/**
 * 2-D tilt-image deformations (RELION 5's motion/*_2D_deformation, numerics.md §4.4): a shift
 * δ(u, v) added to every projected point of a tilt. Three models: linear, spline (bicubic Hermite
 * on a gx×gy grid) and Fourier (a few low-frequency sinusoids).
 */
import { TomoError } from '../errors.js';

export type DeformationType = 'linear' | 'spline' | 'Fourier';

export interface Deformation {
  type: DeformationType;
  gridX: number;
  gridY: number;
  imageW: number;
  imageH: number;
  /** Coefficients of each frame. */
  coefficients: Float64Array[];
}

/** Number of coefficients one frame needs, or a TomoError for a bad model/grid. */
export function deformationCoefficientCount(type: string, gx: number, gy: number, where: string): number {
  switch (type) {
    case 'linear':
      return 3;
    case 'spline':
      if (gx < 2 || gy < 2) throw new TomoError(`${where}: a spline deformation grid needs at least 2×2 nodes, got ${gx}×${gy}`);
      return 4 * gx * gy * 2;
    case 'Fourier':
      return 2 * 2 * fourierFrequencyCount(gx, gy);
    default:
      throw new TomoError(`${where}: illegal deformation type '${type}' (expected spline, Fourier or linear)`);
  }
}

function fourierFrequencyCount(gx: number, gy: number): number {
  let n = 0;
  for (let y = 0; y < gy; y++) {
    if (y < Math.trunc(gy / 2)) n += Math.trunc(gx / 2) + 1 - (y > 0 ? 0 : 1);
    else n += Math.trunc(gx / 2);
  }
  return n;
}

/** The Fourier model's frequencies (x·π/W, y·π/H), in RELION's order. */
export function fourierFrequencies(gx: number, gy: number, W: number, H: number): Float64Array {
  const f: number[] = [];
  for (let y = 0; y < gy; y++) {
    if (y < Math.trunc(gy / 2)) {
      for (let x = y > 0 ? 0 : 1; x <= Math.trunc(gx / 2); x++) f.push((x * Math.PI) / W, (y * Math.PI) / H);
    } else {
      for (let x = 1; x <= Math.trunc(gx / 2); x++) f.push((x * Math.PI) / W, ((y - gy) * Math.PI) / H);
    }
  }
  return Float64Array.from(f);
}

/** Hermite basis h(a) = (1−3a²+2a³, 3a²−2a³, a−2a²+a³, −a²+a³). */
function hermite(a: number, out: Float64Array): void {
  const a2 = a * a;
  const a3 = a2 * a;
  out[0] = 1 - 3 * a2 + 2 * a3;
  out[1] = 3 * a2 - 2 * a3;
  out[2] = a - 2 * a2 + a3;
  out[3] = -a2 + a3;
}

const ha = new Float64Array(4);
const hb = new Float64Array(4);

/** δ(u, v) of frame f, added to out[0], out[1]. `freqs` is fourierFrequencies(...) for the Fourier model. */
export function addDeformation(d: Deformation, f: number, u: number, v: number, out: number[] | Float64Array, freqs?: Float64Array): void {
  const c = d.coefficients[f];
  if (d.type === 'linear') {
    const rx = u - d.imageW / 2;
    const ry = v - d.imageH / 2;
    out[0] += c[0] * rx;
    out[1] += c[1] * rx + c[2] * ry;
    return;
  }
  if (d.type === 'Fourier') {
    const fr = freqs ?? fourierFrequencies(d.gridX, d.gridY, d.imageW, d.imageH);
    const n = fr.length / 2;
    for (let dim = 0; dim < 2; dim++) {
      let s = 0;
      for (let i = 0; i < n; i++) {
        const t = fr[2 * i] * u + fr[2 * i + 1] * v;
        const k = 2 * (i + n * dim);
        s += c[k] * Math.cos(t) + c[k + 1] * Math.sin(t);
      }
      out[dim] += s;
    }
    return;
  }
  // Spline: nodes at multiples of (W/(gx−1), H/(gy−1)); 4 numbers per node and dimension.
  const gx = d.gridX;
  const gy = d.gridY;
  const clampG = (g: number, n: number): number => (g < 0 ? 0 : g > n - 1 - 1e-10 ? n - 1 - 1e-10 : g);
  const x = clampG(u / (d.imageW / (gx - 1)), gx);
  const y = clampG(v / (d.imageH / (gy - 1)), gy);
  const cx = Math.floor(x);
  const cy = Math.floor(y);
  hermite(x - cx, ha);
  hermite(y - cy, hb);
  for (let dim = 0; dim < 2; dim++) {
    const node = (nx: number, ny: number): number => 4 * (nx + gx * (ny + gy * dim));
    const n00 = node(cx, cy);
    const n01 = node(cx, cy + 1);
    const n10 = node(cx + 1, cy);
    const n11 = node(cx + 1, cy + 1);
    // F rows follow h(a) (value x0, value x1, slope_x x0, slope_x x1), columns h(b) likewise in y.
    const F = [
      [c[n00], c[n01], c[n00 + 2], c[n01 + 2]],
      [c[n10], c[n11], c[n10 + 2], c[n11 + 2]],
      [c[n00 + 1], c[n01 + 1], c[n00 + 3], c[n01 + 3]],
      [c[n10 + 1], c[n11 + 1], c[n10 + 3], c[n11 + 3]],
    ];
    let s = 0;
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) s += ha[i] * F[i][j] * hb[j];
    out[dim] += s;
  }
}
