/**
 * RELION's CTF (ctf.h CTF::getCTF / CTF::draw, ctf.cpp CTF::initialise), numerics.md §5.2.
 * Evaluated in double; drawn images are float32 on the FFTW half grid.
 */
import { DEG2RAD } from '../geometry/matrix.js';
import { TomoError } from '../errors.js';
import { sine } from './sine.js';

const PI = 3.14159265358979323846;

export interface CtfParams {
  defocusU: number; // Å, positive = underfocus
  defocusV: number;
  defocusAngle: number; // degrees
  voltage: number; // kV
  cs: number; // mm
  q0: number; // amplitude contrast fraction
  bfactor: number; // rlnCtfBfactor, Å²
  scale: number; // rlnCtfScalefactor
  phaseShift: number; // degrees
}

/** Precomputed constants of one CTF (CTF::initialise). */
export interface CtfConstants {
  k1: number;
  k2: number;
  k3: number;
  k4: number;
  k5: number;
  axx: number;
  axy: number;
  ayy: number;
  scale: number;
}

export function electronWavelength(kV: number): number {
  const v = kV * 1e3;
  return 12.2643247 / Math.sqrt(v * (1 + v * 0.978466e-6));
}

export function ctfConstants(p: CtfParams, where = 'CTF', out?: CtfConstants): CtfConstants {
  if (!(p.q0 >= 0 && p.q0 <= 1)) {
    throw new TomoError(`${where}: amplitude contrast ${p.q0} is outside [0, 1]`);
  }
  if (Math.abs(p.defocusU) < 1e-6 && Math.abs(p.defocusV) < 1e-6 && Math.abs(p.q0) < 1e-6 && Math.abs(p.cs) < 1e-6) {
    throw new TomoError(`${where}: the CTF initialises to all-zero values (defocus, Cs and amplitude contrast all 0)`);
  }
  const lambda = electronWavelength(p.voltage);
  const csA = p.cs * 1e7;
  const theta = p.defocusAngle * DEG2RAD;
  const c = Math.cos(theta);
  const s = Math.sin(theta);
  const k = out ?? ({} as CtfConstants);
  k.k1 = PI * lambda;
  k.k2 = (PI / 2) * csA * lambda * lambda * lambda;
  k.k3 = Math.atan(p.q0 / Math.sqrt(1 - p.q0 * p.q0));
  k.k4 = -p.bfactor / 4;
  k.k5 = p.phaseShift * DEG2RAD;
  k.axx = -(p.defocusU * c * c + p.defocusV * s * s);
  k.axy = -(p.defocusU - p.defocusV) * s * c;
  k.ayy = -(p.defocusU * s * s + p.defocusV * c * c);
  k.scale = p.scale;
  return k;
}

/** CTF value at spatial frequency (X, Y) in 1/Å, with an optional even-aberration phase γ0. */
export function ctfValue(k: CtfConstants, X: number, Y: number, gamma0 = 0): number {
  const u2 = X * X + Y * Y;
  const gamma = k.k1 * (k.axx * X * X + 2 * k.axy * X * Y + k.ayy * Y * Y) + k.k2 * u2 * u2 - k.k5 - k.k3 + gamma0;
  // sine(), not Math.sin: the WebAssembly CTF·dose kernel (assembly/ctf.ts) repeats it exactly.
  let ctf = -sine(gamma);
  if (k.k4 !== 0) ctf *= Math.exp(k.k4 * u2);
  ctf *= k.scale;
  if (Math.abs(ctf) < 1e-8) ctf = ctf >= 0 ? 1e-8 : -1e-8;
  return ctf;
}

/**
 * CTF::draw(s, s, pixelSize, γ0, dest): float image on the sh×s half grid, X = x/(s·px), Y = σ(y)/(s·px).
 * `gamma0` (optional) is an sh×s array of even-aberration phases. With `rowLimits`, row y is only
 * drawn for x < rowLimits[y] (the rest is not used by the caller and left as it was).
 */
export function drawCtf(
  k: CtfConstants,
  s: number,
  pixelSize: number,
  out: Float32Array,
  gamma0?: Float64Array | null,
  rowLimits?: Int32Array,
): Float32Array {
  const sh = (s >> 1) + 1;
  const inv = 1 / (s * pixelSize);
  for (let y = 0; y < s; y++) {
    const yy = y < s / 2 ? y : y - s;
    const Y = yy * inv;
    const xEnd = rowLimits ? Math.min(sh, rowLimits[y]) : sh;
    for (let x = 0; x < xEnd; x++) {
      const i = y * sh + x;
      out[i] = ctfValue(k, x * inv, Y, gamma0 ? gamma0[i] : 0);
    }
  }
  return out;
}
