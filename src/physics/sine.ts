/**
 * sin(x) for the CTF's phase γ, in a form that WebAssembly can repeat bit for bit
 * (assembly/ctf.ts): Math.sin is a host function that WebAssembly cannot call per value, and its
 * results cannot be reproduced by another algorithm to the last bit. Both sides do the same
 * float64 operations in the same order (no fused multiply-add exists in either), so the drawn
 * CTF is the same whichever draws it.
 *
 * Algorithm: x = n·π + r with n = nearest integer to x/π (ties to even, by adding and
 * subtracting 1.5·2⁵²) and r = ((x − n·π₁) − n·π₂) − n·π₃, where π₁ + π₂ + π₃ is π split into
 * pieces of at most 33, 33 and 53 significant bits (n·π₁ and n·π₂ are exact for |n| < 2²⁰);
 * then sin x = (−1)ⁿ sin r, with sin r by its Taylor series to r²⁵ on |r| ≤ π/2 (the first
 * omitted term is below 2·10⁻²³), evaluated by Estrin's scheme. Against Math.sin: within
 * 4.5·10⁻¹⁶ over |x| ≤ 10⁴ (test/sine.test.ts; 3.3·10⁻¹⁶ the most measured), so the float32
 * CTF differs only where a value lies that close to a float32 rounding boundary.
 * |x| > 10⁶ (and NaN) go to Math.sin: the CTF never gets there (γ is a few hundred radians
 * at most), and the WebAssembly path is not taken when it could (SINE_LIMIT).
 */

/** Largest |x| this reduction handles exactly; beyond it sine() is Math.sin. */
export const SINE_LIMIT = 1e6;

// π in three pieces (33, 33 and 53 significant bits), 1/π, and 1.5·2⁵² (round to integer).
export const PI_1 = 3.1415926534682512;
export const PI_2 = 1.2154201012607932e-10;
export const PI_3 = 4.044532497591901e-21;
export const INV_PI = 0.3183098861837907;
export const ROUND_MAGIC = 6755399441055744;

// (−1)^k / (2k + 1)! for k = 1 … 12.
export const SIN_COEFFS = [
  -0.16666666666666666, 0.008333333333333333, -0.0001984126984126984, 2.7557319223985893e-6, -2.505210838544172e-8, 1.6059043836821613e-10,
  -7.647163731819816e-13, 2.8114572543455206e-15, -8.22063524662433e-18, 1.9572941063391263e-20, -3.868170170630684e-23, 6.446950284384474e-26,
] as const;
const [S3, S5, S7, S9, S11, S13, S15, S17, S19, S21, S23, S25] = SIN_COEFFS;

export function sine(x: number): number {
  if (!(Math.abs(x) <= SINE_LIMIT)) return Math.sin(x);
  const u = x * INV_PI + ROUND_MAGIC;
  const n = u - ROUND_MAGIC;
  const r = x - n * PI_1 - n * PI_2 - n * PI_3;
  const z = r * r;
  // Estrin's scheme: short dependency chains (the WebAssembly lanes' throughput depends on them).
  const z2 = z * z;
  const z4 = z2 * z2;
  const z8 = z4 * z4;
  const b0 = S3 + z * S5 + z2 * (S7 + z * S9);
  const b1 = S11 + z * S13 + z2 * (S15 + z * S17);
  const b2 = S19 + z * S21 + z2 * (S23 + z * S25);
  const v = r + r * z * (b0 + z4 * b1 + z8 * b2);
  return (n & 1) === 0 ? v : -v;
}
