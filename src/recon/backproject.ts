/**
 * Fourier-space insertion of one 2-D slice into the 3-D accumulators
 * (FourierBackprojection::backprojectSlice_backward, numerics.md §5.7).
 */
import { Mat3 } from '../geometry/matrix.js';

/** Data (interleaved complex, double) and weight (double) accumulators of one half set, sh×s×s. */
export interface Accumulator {
  data: Float64Array;
  weight: Float64Array;
}

export function createAccumulator(s: number): Accumulator {
  const sh = (s >> 1) + 1;
  return { data: new Float64Array(2 * sh * s * s), weight: new Float64Array(sh * s * s) };
}

/** Bytes of one accumulator pair (data + weight) for box s. */
export function accumulatorBytes(s: number): number {
  const sh = (s >> 1) + 1;
  return sh * s * s * 3 * 8;
}

const cofactorQ = new Float64Array(9);

/**
 * Inserts slice (P, Wt) under the insertion matrix M (particle box → image x, y, depth).
 * Voxel k receives the slice value at (Q k).xy, Q = (M⁻¹)ᵀ, weighted by 1 − |(Q k).z|, for every
 * voxel within one voxel of the slice and within the sphere of radius maxFreq.
 */
export function backprojectSlice(
  acc: Accumulator,
  s: number,
  P: Float32Array,
  Wt: Float32Array,
  M: Mat3,
  maxFreq: number,
): void {
  const sh = (s >> 1) + 1;
  // Q = (M⁻¹)ᵀ = cofactor(M) / det(M) (adjugate inverse, as RELION's t3Matrix::invert).
  const det = M[0] * (M[4] * M[8] - M[5] * M[7]) - M[1] * (M[3] * M[8] - M[5] * M[6]) + M[2] * (M[3] * M[7] - M[4] * M[6]);
  const Q = cofactorQ;
  Q[0] = (M[4] * M[8] - M[5] * M[7]) / det;
  Q[1] = (M[5] * M[6] - M[3] * M[8]) / det;
  Q[2] = (M[3] * M[7] - M[4] * M[6]) / det;
  Q[3] = (M[2] * M[7] - M[1] * M[8]) / det;
  Q[4] = (M[0] * M[8] - M[2] * M[6]) / det;
  Q[5] = (M[1] * M[6] - M[0] * M[7]) / det;
  Q[6] = (M[1] * M[5] - M[2] * M[4]) / det;
  Q[7] = (M[2] * M[3] - M[0] * M[5]) / det;
  Q[8] = (M[0] * M[4] - M[1] * M[3]) / det;
  const q00 = Q[0], q01 = Q[1], q02 = Q[2];
  const q10 = Q[3], q11 = Q[4], q12 = Q[5];
  const nx = Q[6], ny = Q[7], nz = Q[8];
  const maxFreq2 = maxFreq * maxFreq;
  const yLimit = (s >> 1) + 1;
  const data = acc.data;
  const weight = acc.weight;
  // Most (y, z) lines miss the slab |n·k| < 1 or the sphere; visit only the y values that can
  // meet both (bounds widened by one, the exact tests below still decide every voxel).
  const nxMax = nx * (sh - 1);
  const lo = -1 - (nxMax > 0 ? nxMax : 0);
  const hi = 1 - (nxMax < 0 ? nxMax : 0);
  const halfS = s >> 1;
  for (let z = 0; z < s; z++) {
    const zz = z < s / 2 ? z : z - s;
    const sphere = maxFreq2 - zz * zz;
    if (sphere < 0) continue;
    const t = nz * zz;
    let yyMin: number;
    let yyMax: number;
    if (ny === 0) {
      if (!(t > lo && t < hi)) continue;
      yyMin = -halfS;
      yyMax = halfS - 1;
    } else {
      const b0 = (lo - t) / ny;
      const b1 = (hi - t) / ny;
      yyMin = Math.floor(b0 < b1 ? b0 : b1) - 1;
      yyMax = Math.ceil(b0 < b1 ? b1 : b0) + 1;
    }
    const ySphere = Math.floor(Math.sqrt(sphere)) + 1;
    if (yyMin < -ySphere) yyMin = -ySphere;
    if (yyMax > ySphere) yyMax = ySphere;
    if (yyMin < -halfS) yyMin = -halfS;
    if (yyMax > halfS - 1) yyMax = halfS - 1;
    for (let yy = yyMin; yy <= yyMax; yy++) {
      const y = yy < 0 ? yy + s : yy;
      const yz = ny * yy + nz * zz;
      let x0: number;
      let x1: number;
      if (nx === 0) {
        if (Math.abs(yz) < 1) {
          x0 = 0;
          x1 = sh - 1;
        } else continue;
      } else {
        const a0 = (-yz - 1) / nx;
        const a1 = (-yz + 1) / nx;
        x0 = Math.ceil(a0 < a1 ? a0 : a1);
        x1 = Math.floor(a0 < a1 ? a1 : a0);
        if (x0 < 0) x0 = 0;
        if (x1 > sh - 1) x1 = sh - 1;
      }
      if (x0 > x1) continue;
      const rad = maxFreq2 - yy * yy - zz * zz;
      if (rad < 0) continue; // [Q9b]: RELION's (int)sqrt(negative) empties the line
      const xr = Math.trunc(Math.sqrt(rad));
      if (x1 > xr) x1 = xr;
      const cx = q01 * yy + q02 * zz;
      const cy = q11 * yy + q12 * zz;
      const line = (z * s + y) * sh;
      for (let x = x0; x <= x1; x++) {
        const pz = nx * x + yz;
        if (!(pz > -1 && pz < 1)) continue;
        const px = q00 * x + cx;
        const py = q10 * x + cy;
        if (!(px < sh && px > -sh && py < yLimit && py > -yLimit)) continue;
        const c = 1 - (pz < 0 ? -pz : pz);
        // Bilinear sample of the slice and its weight at (px, py), RELION's edge rules
        // (interpolation.ts has the reference versions; both share these indices).
        let xd = px;
        let yd = py;
        let conj = 1;
        if (px < 0) {
          xd = -px;
          yd = -py;
          conj = -1;
        }
        if (yd < 0) yd += s;
        let ix0 = Math.trunc(xd);
        let iy0 = Math.trunc(yd);
        const fx = xd - ix0;
        const fy = yd - iy0;
        if (ix0 >= sh) ix0 = sh - 1;
        let ix1 = ix0 + 1;
        if (ix1 >= sh) ix1 = sh - 2;
        if (iy0 > s - 1) iy0 = s - 1;
        const iy1 = iy0 + 1 === s ? 0 : iy0 + 1;
        const r0 = iy0 * sh;
        const r1 = iy1 * sh;
        const gx = 1 - fx;
        const gy = 1 - fy;
        const a = r0 + ix0;
        const b = r0 + ix1;
        const d = r1 + ix0;
        const e = r1 + ix1;
        const vr = gy * (gx * P[2 * a] + fx * P[2 * b]) + fy * (gx * P[2 * d] + fx * P[2 * e]);
        const vi = gy * (gx * P[2 * a + 1] + fx * P[2 * b + 1]) + fy * (gx * P[2 * d + 1] + fx * P[2 * e + 1]);
        const g = gy * (gx * Wt[a] + fx * Wt[b]) + fy * (gx * Wt[d] + fx * Wt[e]);
        const i = line + x;
        data[2 * i] += c * vr;
        data[2 * i + 1] += c * conj * vi;
        weight[i] += c * g;
      }
    }
  }
}
