/**
 * Fourier-space insertion of one 2-D slice into the 3-D accumulators
 * (FourierBackprojection::backprojectSlice_backward, numerics.md §5.7).
 */
import { Mat3, invert3, transpose3 } from '../geometry/matrix.js';
import { complexOut, interpolateComplex2D, interpolateReal2D } from './interpolation.js';

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
  const Q = transpose3(invert3(M));
  const q00 = Q[0], q01 = Q[1], q02 = Q[2];
  const q10 = Q[3], q11 = Q[4], q12 = Q[5];
  const nx = Q[6], ny = Q[7], nz = Q[8];
  const maxFreq2 = maxFreq * maxFreq;
  const yLimit = (s >> 1) + 1;
  const data = acc.data;
  const weight = acc.weight;
  for (let z = 0; z < s; z++) {
    const zz = z < s / 2 ? z : z - s;
    for (let y = 0; y < s; y++) {
      const yy = y < s / 2 ? y : y - s;
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
        x0 = Math.ceil(Math.min(a0, a1));
        x1 = Math.floor(Math.max(a0, a1));
        if (x0 < 0) x0 = 0;
        if (x1 > sh - 1) x1 = sh - 1;
      }
      const rad = maxFreq2 - yy * yy - zz * zz;
      if (rad < 0) continue; // [Q9b]: RELION's (int)sqrt(negative) empties the line
      const xr = Math.trunc(Math.sqrt(rad));
      if (x1 > xr) x1 = xr;
      const line = (z * s + y) * sh;
      for (let x = x0; x <= x1; x++) {
        const pz = nx * x + yz;
        if (!(pz > -1 && pz < 1)) continue;
        const px = q00 * x + q01 * yy + q02 * zz;
        const py = q10 * x + q11 * yy + q12 * zz;
        if (!(Math.abs(px) < sh && Math.abs(py) < yLimit)) continue;
        const c = 1 - Math.abs(pz);
        interpolateComplex2D(P, sh, s, px, py);
        const g = interpolateReal2D(Wt, sh, s, px, py);
        const i = line + x;
        data[2 * i] += c * complexOut[0];
        data[2 * i + 1] += c * complexOut[1];
        weight[i] += c * g;
      }
    }
  }
}
