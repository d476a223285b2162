/**
 * Per-optics-group aberration tables on the sh×s half grid (AberrationsCache, numerics.md §5.4):
 * the even (symmetric) phase γ0 added to the CTF phase, and the odd (antisymmetric) phase whose
 * conjugate exponential multiplies the observations.
 */
import { evenIndexToMN, oddIndexToMN, zernikeCartesian } from './zernike.js';

export interface AberrationTables {
  /** γ0(x, y), double, sh×s; null when the optics table has no rlnEvenZernike. */
  even: Float64Array | null;
  /** (cos φ_odd, sin φ_odd) interleaved, float, sh×s; null when there is no rlnOddZernike. */
  odd: Float32Array | null;
}

/** Tables for box s at pixel size p_out (tomogram 0's pixel size × bin for every tomogram, [Q20]). */
export function aberrationTables(even: number[] | null, odd: number[] | null, s: number, pixelSize: number): AberrationTables {
  const sh = (s >> 1) + 1;
  const as = pixelSize * s;
  let evenTable: Float64Array | null = null;
  let oddTable: Float32Array | null = null;
  if (even) {
    evenTable = new Float64Array(sh * s);
    const mn = even.map((_, i) => evenIndexToMN(i));
    fill(s, as, (i, X, Y) => {
      let g = 0;
      for (let k = 0; k < even.length; k++) g += even[k] * zernikeCartesian(mn[k][0], mn[k][1], X, Y);
      evenTable![i] = g;
    });
  }
  if (odd) {
    oddTable = new Float32Array(2 * sh * s);
    const mn = odd.map((_, i) => oddIndexToMN(i));
    fill(s, as, (i, X, Y) => {
      let phi = 0;
      for (let k = 0; k < odd.length; k++) phi += odd[k] * zernikeCartesian(mn[k][0], mn[k][1], X, Y);
      oddTable![2 * i] = Math.cos(phi);
      oddTable![2 * i + 1] = Math.sin(phi);
    });
  }
  return { even: evenTable, odd: oddTable };
}

function fill(s: number, as: number, f: (i: number, X: number, Y: number) => void): void {
  const sh = (s >> 1) + 1;
  for (let y = 0; y < s; y++) {
    const yy = y < s / 2 ? y : y - s;
    for (let x = 0; x < sh; x++) f(y * sh + x, x / as, yy / as);
  }
}

/** correctObservations: P ← P·conj(r), in float. */
export function applyOddAberration(P: Float32Array, odd: Float32Array): void {
  for (let i = 0; i < P.length; i += 2) {
    const re = P[i];
    const im = P[i + 1];
    const cr = odd[i];
    const ci = odd[i + 1];
    P[i] = re * cr + im * ci;
    P[i + 1] = im * cr - re * ci;
  }
}
