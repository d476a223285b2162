/**
 * Bilinear interpolation on FFTW-half 2-D arrays with RELION's edge rules (numerics.md §5.7,
 * Interpolation::linearXY_complex_FftwHalf_clip / linearXY_symmetric_FftwHalf_clip):
 * negative x is read from the Hermitian mate (conjugated for complex data), y wraps
 * periodically, and at the Nyquist column the second x sample is column sh−2 ([Q10]).
 * The back-projection inlines both (sharing the indices); these plain versions are the reference
 * its tests compare against.
 */

/** Result slots for interpolateComplex2D, to avoid allocating a pair per call. */
export const complexOut = new Float64Array(2);

/** Element indices (00, 10, 01, 11) and fractions (fx, fy) of the last corners() call. */
const idx = new Int32Array(4);
const frac = new Float64Array(2);

/** RELION's sample positions for (px, py) on an sh×s half grid; true when the Hermitian mate is read. */
function corners(sh: number, s: number, px: number, py: number): boolean {
  const mirrored = px < 0;
  const xd = mirrored ? -px : px;
  let yd = mirrored ? -py : py;
  if (yd < 0) yd += s;
  let x0 = Math.trunc(xd);
  let y0 = Math.trunc(yd);
  frac[0] = xd - x0;
  frac[1] = yd - y0;
  if (x0 >= sh) x0 = sh - 1;
  let x1 = x0 + 1;
  if (x1 >= sh) x1 = sh - 2;
  if (y0 < 0) y0 = 0;
  else if (y0 > s - 1) y0 = s - 1;
  const y1 = (y0 + 1) % s;
  idx[0] = y0 * sh + x0;
  idx[1] = y0 * sh + x1;
  idx[2] = y1 * sh + x0;
  idx[3] = y1 * sh + x1;
  return mirrored;
}

/** Samples the interleaved complex sh×s array `a` at (px, py); result in complexOut. */
export function interpolateComplex2D(a: Float32Array, sh: number, s: number, px: number, py: number): void {
  const conj = corners(sh, s, px, py);
  const fx = frac[0];
  const fy = frac[1];
  const gx = 1 - fx;
  const i00 = 2 * idx[0];
  const i10 = 2 * idx[1];
  const i01 = 2 * idx[2];
  const i11 = 2 * idx[3];
  const v0r = gx * a[i00] + fx * a[i10];
  const v0i = gx * a[i00 + 1] + fx * a[i10 + 1];
  const v1r = gx * a[i01] + fx * a[i11];
  const v1i = gx * a[i01 + 1] + fx * a[i11 + 1];
  complexOut[0] = (1 - fy) * v0r + fy * v1r;
  const im = (1 - fy) * v0i + fy * v1i;
  complexOut[1] = conj ? -im : im;
}

/** Same sampling rules for a real sh×s array (the weight is symmetric: Wt(−q) = Wt(q)). */
export function interpolateReal2D(a: Float32Array, sh: number, s: number, px: number, py: number): number {
  corners(sh, s, px, py);
  const fx = frac[0];
  const fy = frac[1];
  const gx = 1 - fx;
  const v0 = gx * a[idx[0]] + fx * a[idx[1]];
  const v1 = gx * a[idx[2]] + fx * a[idx[3]];
  return (1 - fy) * v0 + fy * v1;
}
