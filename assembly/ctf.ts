/**
 * The CTF·dose premultiplication of one particle and tilt (src/recon/particleKernel.ts,
 * processParticleFrame with --ctf and without a CTF B-factor) in
 * AssemblyScript: drawCtf's values (src/physics/ctf.ts, ctfValue with sine() of
 * src/physics/sine.ts) times the tilt's dose weights, applied to the slice and its weight. Two
 * frequencies per step as float64 SIMD lanes, each lane doing the JavaScript's scalar operations
 * in its order (no fused multiply-add in WebAssembly), so slice and weight are the JavaScript's
 * bit for bit (test/wasm.test.ts); JavaScript stays the reference and the fallback.
 *
 * Pointers are byte offsets into the importer's memory: P (float32 interleaved complex, sh·s),
 * Wt (float32, sh·s), dose (float32, sh·s), ranges (int32, s: row y is used for x < ranges[y]),
 * gamma0 (float64, sh·s: the even aberrations' phase; 0 for none).
 */

// π in three pieces, 1/π, 1.5·2⁵² and the Taylor coefficients of sin: as src/physics/sine.ts.
const PI_1: f64 = 3.1415926534682512;
const PI_2: f64 = 1.2154201012607932e-10;
const PI_3: f64 = 4.044532497591901e-21;
const INV_PI: f64 = 0.3183098861837907;
const ROUND_MAGIC: f64 = 6755399441055744;
const S3: f64 = -0.16666666666666666;
const S5: f64 = 0.008333333333333333;
const S7: f64 = -0.0001984126984126984;
const S9: f64 = 2.7557319223985893e-6;
const S11: f64 = -2.505210838544172e-8;
const S13: f64 = 1.6059043836821613e-10;
const S15: f64 = -7.647163731819816e-13;
const S17: f64 = 2.8114572543455206e-15;
const S19: f64 = -8.22063524662433e-18;
const S21: f64 = 1.9572941063391263e-20;
const S23: f64 = -3.868170170630684e-23;
const S25: f64 = 6.446950284384474e-26;

/** sine() of src/physics/sine.ts on both lanes (|x| ≤ SINE_LIMIT: the caller makes sure). */
// @ts-ignore: decorator
@inline
function sine2(x: v128): v128 {
  const u = f64x2.add(f64x2.mul(x, f64x2.splat(INV_PI)), f64x2.splat(ROUND_MAGIC));
  const n = f64x2.sub(u, f64x2.splat(ROUND_MAGIC));
  const r = f64x2.sub(f64x2.sub(f64x2.sub(x, f64x2.mul(n, f64x2.splat(PI_1))), f64x2.mul(n, f64x2.splat(PI_2))), f64x2.mul(n, f64x2.splat(PI_3)));
  const z = f64x2.mul(r, r);
  // Estrin's scheme (short dependency chains), in sine()'s grouping.
  const z2 = f64x2.mul(z, z);
  const z4 = f64x2.mul(z2, z2);
  const z8 = f64x2.mul(z4, z4);
  const a0 = f64x2.add(f64x2.splat(S3), f64x2.mul(z, f64x2.splat(S5)));
  const a1 = f64x2.add(f64x2.splat(S7), f64x2.mul(z, f64x2.splat(S9)));
  const a2 = f64x2.add(f64x2.splat(S11), f64x2.mul(z, f64x2.splat(S13)));
  const a3 = f64x2.add(f64x2.splat(S15), f64x2.mul(z, f64x2.splat(S17)));
  const a4 = f64x2.add(f64x2.splat(S19), f64x2.mul(z, f64x2.splat(S21)));
  const a5 = f64x2.add(f64x2.splat(S23), f64x2.mul(z, f64x2.splat(S25)));
  const b0 = f64x2.add(a0, f64x2.mul(z2, a1));
  const b1 = f64x2.add(a2, f64x2.mul(z2, a3));
  const b2 = f64x2.add(a4, f64x2.mul(z2, a5));
  const p = f64x2.add(f64x2.add(b0, f64x2.mul(z4, b1)), f64x2.mul(z8, b2));
  const v = f64x2.add(r, f64x2.mul(f64x2.mul(r, z), p));
  // (−1)ⁿ: n's parity is the lowest mantissa bit of u = n + 1.5·2⁵².
  return v128.xor(v, i64x2.shl(v128.and(u, i64x2.splat(1)), 63));
}

/** ctfValue on both lanes (X = x/(s·px) per lane, Y = σ(y)/(s·px), YY = Y·Y, γ0 per lane), in float64. */
// @ts-ignore: decorator
@inline
function ctf2(X: v128, Y: v128, YY: v128, g0: v128, k1: v128, axx: v128, axy2: v128, ayy: v128, k2: v128, k5: v128, k3: v128, scale: v128): v128 {
  const u2 = f64x2.add(f64x2.mul(X, X), YY);
  const q = f64x2.add(f64x2.add(f64x2.mul(f64x2.mul(axx, X), X), f64x2.mul(f64x2.mul(axy2, X), Y)), f64x2.mul(f64x2.mul(ayy, Y), Y));
  // k1·q + k2·u2·u2 − k5 − k3 + γ0 (0 without even aberrations, as drawCtf adds it).
  const gamma = f64x2.add(f64x2.sub(f64x2.sub(f64x2.add(f64x2.mul(k1, q), f64x2.mul(f64x2.mul(k2, u2), u2)), k5), k3), g0);
  let c = f64x2.mul(f64x2.neg(sine2(gamma)), scale);
  // |ctf| < 1e-8 → ±1e-8 (the sign of ctf ≥ 0, so −0 → +1e-8).
  const small = f64x2.lt(f64x2.abs(c), f64x2.splat(1e-8));
  const clamp = v128.bitselect(f64x2.splat(1e-8), f64x2.splat(-1e-8), f64x2.ge(c, f64x2.splat(0)));
  return v128.bitselect(clamp, c, small);
}

/**
 * For each row y and x < min(sh, ranges[y]): cw = f32(f32(−ctf) · dose), P *= cw (both parts),
 * Wt = cw²; P and Wt are zero for the rest of the row.
 */
export function ctfDose(
  P: usize,
  Wt: usize,
  dose: usize,
  ranges: usize,
  gamma0: usize,
  s: i32,
  inv: f64,
  k1: f64,
  axx: f64,
  axy: f64,
  ayy: f64,
  k2: f64,
  k5: f64,
  k3: f64,
  scale: f64,
): void {
  const sh = (s >> 1) + 1;
  const vk1 = f64x2.splat(k1);
  const vaxx = f64x2.splat(axx);
  const vaxy2 = f64x2.splat(2 * axy);
  const vayy = f64x2.splat(ayy);
  const vk2 = f64x2.splat(k2);
  const vk5 = f64x2.splat(k5);
  const vk3 = f64x2.splat(k3);
  const vscale = f64x2.splat(scale);
  const vinv = f64x2.splat(inv);
  const step = f64x2.splat(2);
  for (let y = 0; y < s; y++) {
    const yy = <f64>(<f64>y < <f64>s / 2 ? y : y - s);
    const Yd = yy * inv;
    const Y = f64x2.splat(Yd);
    const YY = f64x2.splat(Yd * Yd);
    let R = load<i32>(ranges + (<usize>y << 2));
    if (R > sh) R = sh;
    if (R < 0) R = 0;
    const row = <usize>(y * sh);
    let x = 0;
    let xs = f64x2(0, 1);
    // Two frequencies per step; an odd last one goes through the same lanes (the other discarded).
    for (; x < R; x += 2) {
      const X = f64x2.mul(xs, vinv);
      xs = f64x2.add(xs, step);
      const i = row + <usize>x;
      // γ0 of both frequencies, or of the last one only (not read past the table).
      const g0 = gamma0 == 0 ? f64x2.splat(0) : x + 1 < R ? v128.load(gamma0 + (i << 3)) : v128.load64_zero(gamma0 + (i << 3));
      // drawCtf stores the CTF as float32.
      const c32 = f32x4.demote_f64x2_zero(ctf2(X, Y, YY, g0, vk1, vaxx, vaxy2, vayy, vk2, vk5, vk3, vscale));
      if (x + 1 < R) {
        const d = v128.load64_zero(dose + (i << 2));
        const cw = f32x4.mul(f32x4.neg(c32), d); // lanes 0, 1
        const cw2 = v128.shuffle<f32>(cw, cw, 0, 0, 1, 1);
        const pa = P + (i << 3);
        v128.store(pa, f32x4.mul(v128.load(pa), cw2));
        v128.store64_lane(Wt + (i << 2), f32x4.mul(cw, cw), 0);
      } else {
        const cw = -f32x4.extract_lane(c32, 0) * load<f32>(dose + (i << 2));
        const pa = P + (i << 3);
        store<f32>(pa, load<f32>(pa) * cw);
        store<f32>(pa, load<f32>(pa, 4) * cw, 4);
        store<f32>(Wt + (i << 2), cw * cw);
      }
    }
    if (R < sh) {
      memory.fill(P + ((row + <usize>R) << 3), 0, <usize>(sh - R) << 3);
      memory.fill(Wt + ((row + <usize>R) << 2), 0, <usize>(sh - R) << 2);
    }
  }
}

/**
 * out[i] = sine(x[i]) for n float64 values, two at a time (n even): sine2 itself, so that tests
 * can hold it to src/physics/sine.ts in float64, not only through the float32 CTF.
 */
export function sines(x: usize, out: usize, n: i32): void {
  for (let i = 0; i < n; i += 2) v128.store(out + (<usize>i << 3), sine2(v128.load(x + (<usize>i << 3))));
}
