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

/** Samples the interleaved complex sh×s array `a` at (px, py); result in complexOut. */
export function interpolateComplex2D(a: Float32Array, sh: number, s: number, px: number, py: number): void {
  let xd: number;
  let yd: number;
  let conj: boolean;
  if (px >= 0) {
    xd = px;
    yd = py;
    conj = false;
  } else {
    xd = -px;
    yd = -py;
    conj = true;
  }
  if (yd < 0) yd += s;
  let x0 = Math.trunc(xd);
  let y0 = Math.trunc(yd);
  const fx = xd - x0;
  const fy = yd - y0;
  if (x0 >= sh) x0 = sh - 1;
  let x1 = x0 + 1;
  if (x1 >= sh) x1 = sh - 2;
  if (y0 < 0) y0 = 0;
  else if (y0 > s - 1) y0 = s - 1;
  const y1 = (y0 + 1) % s;
  const i00 = 2 * (y0 * sh + x0);
  const i10 = 2 * (y0 * sh + x1);
  const i01 = 2 * (y1 * sh + x0);
  const i11 = 2 * (y1 * sh + x1);
  const gx = 1 - fx;
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
  let xd: number;
  let yd: number;
  if (px >= 0) {
    xd = px;
    yd = py;
  } else {
    xd = -px;
    yd = -py;
  }
  if (yd < 0) yd += s;
  let x0 = Math.trunc(xd);
  let y0 = Math.trunc(yd);
  const fx = xd - x0;
  const fy = yd - y0;
  if (x0 >= sh) x0 = sh - 1;
  let x1 = x0 + 1;
  if (x1 >= sh) x1 = sh - 2;
  if (y0 < 0) y0 = 0;
  else if (y0 > s - 1) y0 = s - 1;
  const y1 = (y0 + 1) % s;
  const gx = 1 - fx;
  const v0 = gx * a[y0 * sh + x0] + fx * a[y0 * sh + x1];
  const v1 = gx * a[y1 * sh + x0] + fx * a[y1 * sh + x1];
  return (1 - fy) * v0 + fy * v1;
}
