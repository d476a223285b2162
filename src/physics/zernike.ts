/**
 * Zernike polynomials as RELION uses them for aberrations (Zernike.cpp; numerics.md §5.4):
 * evaluated on frequencies in 1/Å, not normalised to a unit pupil.
 */

function factorial(n: number): number {
  let r = 1;
  for (let i = 2; i <= n; i++) r *= i;
  return r;
}

/** Radial polynomial R_n^m(ρ), m ≥ 0; zero when n − m is odd. pow(0, 0) = 1. */
export function zernikeRadial(n: number, m: number, rho: number): number {
  if ((n - m) % 2 !== 0 || m > n) return 0;
  let r = 0;
  for (let k = 0; k <= (n - m) / 2; k++) {
    const c = ((k % 2 === 0 ? 1 : -1) * factorial(n - k)) / (factorial(k) * factorial((n + m) / 2 - k) * factorial((n - m) / 2 - k));
    r += c * Math.pow(rho, n - 2 * k);
  }
  return r;
}

/** Z(m, n; X, Y): cos(mφ) for m ≥ 0, sin(|m|φ) for m < 0; φ = atan2(Y, X), 0 at the origin. */
export function zernikeCartesian(m: number, n: number, X: number, Y: number): number {
  const rho = Math.sqrt(X * X + Y * Y);
  const phi = X === 0 && Y === 0 ? 0 : Math.atan2(Y, X);
  const am = Math.abs(m);
  const r = zernikeRadial(n, am, rho);
  return m >= 0 ? r * Math.cos(m * phi) : r * Math.sin(am * phi);
}

/** Index of rlnEvenZernike → (m, n). */
export function evenIndexToMN(i: number): [number, number] {
  const k = Math.floor(Math.sqrt(i));
  return [2 * (i - k * k - k), 2 * k];
}

/** Index of rlnOddZernike → (m, n). */
export function oddIndexToMN(i: number): [number, number] {
  const k = Math.floor((Math.sqrt(1 + 4 * i) - 1) / 2);
  const n = 2 * k + 1;
  return [2 * (i - k * k - k) - n, n];
}
