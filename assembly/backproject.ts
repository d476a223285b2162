/**
 * backprojectSlice (src/recon/backproject.ts) in AssemblyScript, compiled to WebAssembly by
 * `npm run build:wasm` into src/recon/backprojectWasm.ts. The same arithmetic in the same order
 * on the same float64 values, so that both give the same sums bit for bit (test/wasm.test.ts);
 * the JavaScript function stays the reference and the fallback.
 *
 * Memory is the importer's (shared): byte offsets of the accumulators (data: float64 interleaved
 * complex, sh·s·s; weight: float64, sh·s·s) and of the slice (P: float32 interleaved complex,
 * sh·s; Wt: float32, sh·s). M is the insertion matrix, row-major.
 */
export function backproject(
  data: usize,
  weight: usize,
  s: i32,
  P: usize,
  Wt: usize,
  m0: f64,
  m1: f64,
  m2: f64,
  m3: f64,
  m4: f64,
  m5: f64,
  m6: f64,
  m7: f64,
  m8: f64,
  maxFreq: f64,
): void {
  const sh = (s >> 1) + 1;
  // Q = (M⁻¹)ᵀ = cofactor(M) / det(M), as backprojectSlice.
  const det = m0 * (m4 * m8 - m5 * m7) - m1 * (m3 * m8 - m5 * m6) + m2 * (m3 * m7 - m4 * m6);
  const q00 = (m4 * m8 - m5 * m7) / det;
  const q01 = (m5 * m6 - m3 * m8) / det;
  const q02 = (m3 * m7 - m4 * m6) / det;
  const q10 = (m2 * m7 - m1 * m8) / det;
  const q11 = (m0 * m8 - m2 * m6) / det;
  const q12 = (m1 * m6 - m0 * m7) / det;
  const nx = (m1 * m5 - m2 * m4) / det;
  const ny = (m2 * m3 - m0 * m5) / det;
  const nz = (m0 * m4 - m1 * m3) / det;
  const maxFreq2 = maxFreq * maxFreq;
  const yLimit = <f64>((s >> 1) + 1);
  const nxMax = nx * <f64>(sh - 1);
  const lo = -1.0 - (nxMax > 0 ? nxMax : 0.0);
  const hi = 1.0 - (nxMax < 0 ? nxMax : 0.0);
  const halfS = s >> 1;
  const fsh = <f64>sh;
  for (let z = 0; z < s; z++) {
    // z < s/2 as backprojectSlice has it (for odd s, z = (s − 1)/2 is frequency +(s − 1)/2).
    const zz = <f64>(2 * z < s ? z : z - s);
    const sphere = maxFreq2 - zz * zz;
    if (sphere < 0) continue;
    const t = nz * zz;
    let yyMin: i32;
    let yyMax: i32;
    if (ny == 0) {
      if (!(t > lo && t < hi)) continue;
      yyMin = -halfS;
      yyMax = halfS - 1;
    } else {
      const b0 = (lo - t) / ny;
      const b1 = (hi - t) / ny;
      yyMin = <i32>Math.floor(b0 < b1 ? b0 : b1) - 1;
      yyMax = <i32>Math.ceil(b0 < b1 ? b1 : b0) + 1;
    }
    const ySphere = <i32>Math.floor(Math.sqrt(sphere)) + 1;
    if (yyMin < -ySphere) yyMin = -ySphere;
    if (yyMax > ySphere) yyMax = ySphere;
    if (yyMin < -halfS) yyMin = -halfS;
    if (yyMax > halfS - 1) yyMax = halfS - 1;
    for (let yyi = yyMin; yyi <= yyMax; yyi++) {
      const yy = <f64>yyi;
      const y = yyi < 0 ? yyi + s : yyi;
      const yz = ny * yy + nz * zz;
      let x0: i32;
      let x1: i32;
      if (nx == 0) {
        if (Math.abs(yz) < 1) {
          x0 = 0;
          x1 = sh - 1;
        } else continue;
      } else {
        const a0 = (-yz - 1) / nx;
        const a1 = (-yz + 1) / nx;
        x0 = <i32>Math.ceil(a0 < a1 ? a0 : a1);
        x1 = <i32>Math.floor(a0 < a1 ? a1 : a0);
        if (x0 < 0) x0 = 0;
        if (x1 > sh - 1) x1 = sh - 1;
      }
      if (x0 > x1) continue;
      const rad = maxFreq2 - yy * yy - zz * zz;
      if (rad < 0) continue;
      const xr = <i32>Math.sqrt(rad);
      if (x1 > xr) x1 = xr;
      const cx = q01 * yy + q02 * zz;
      const cy = q11 * yy + q12 * zz;
      const line = (z * s + y) * sh;
      for (let x = x0; x <= x1; x++) {
        const fxv = <f64>x;
        const pz = nx * fxv + yz;
        if (!(pz > -1 && pz < 1)) continue;
        const px = q00 * fxv + cx;
        const py = q10 * fxv + cy;
        if (!(px < fsh && px > -fsh && py < yLimit && py > -yLimit)) continue;
        const c = 1 - (pz < 0 ? -pz : pz);
        let xd = px;
        let yd = py;
        let conj = 1.0;
        if (px < 0) {
          xd = -px;
          yd = -py;
          conj = -1.0;
        }
        if (yd < 0) yd += <f64>s;
        let ix0 = <i32>xd;
        let iy0 = <i32>yd;
        const fx = xd - <f64>ix0;
        const fy = yd - <f64>iy0;
        if (ix0 >= sh) ix0 = sh - 1;
        let ix1 = ix0 + 1;
        if (ix1 >= sh) ix1 = sh - 2;
        if (iy0 > s - 1) iy0 = s - 1;
        const iy1 = iy0 + 1 == s ? 0 : iy0 + 1;
        const r0 = iy0 * sh;
        const r1 = iy1 * sh;
        const gx = 1 - fx;
        const gy = 1 - fy;
        const a = r0 + ix0;
        const b = r0 + ix1;
        const d = r1 + ix0;
        const e = r1 + ix1;
        // The complex sample as one (re, im) pair of lanes: each lane does the scalar code's
        // operations in its order (no fused multiply-add in WebAssembly), so the sums are the same.
        const va = f64x2.promote_low_f32x4(v128.load64_zero(P + (<usize>a << 3)));
        const vb = f64x2.promote_low_f32x4(v128.load64_zero(P + (<usize>b << 3)));
        const vd = f64x2.promote_low_f32x4(v128.load64_zero(P + (<usize>d << 3)));
        const ve = f64x2.promote_low_f32x4(v128.load64_zero(P + (<usize>e << 3)));
        const sgx = f64x2.splat(gx);
        const sfx = f64x2.splat(fx);
        const v = f64x2.add(
          f64x2.mul(f64x2.splat(gy), f64x2.add(f64x2.mul(sgx, va), f64x2.mul(sfx, vb))),
          f64x2.mul(f64x2.splat(fy), f64x2.add(f64x2.mul(sgx, vd), f64x2.mul(sfx, ve))),
        );
        const g =
          gy * (gx * <f64>load<f32>(Wt + (<usize>a << 2)) + fx * <f64>load<f32>(Wt + (<usize>b << 2))) +
          fy * (gx * <f64>load<f32>(Wt + (<usize>d << 2)) + fx * <f64>load<f32>(Wt + (<usize>e << 2)));
        const i = line + x;
        const di = data + (<usize>i << 4);
        // data += (c·vr, (c·conj)·vi)
        v128.store(di, f64x2.add(v128.load(di), f64x2.mul(f64x2(c, c * conj), v)));
        const wi = weight + (<usize>i << 3);
        store<f64>(wi, load<f64>(wi) + c * g);
      }
    }
  }
}

// The FFT kernels of the extraction (assembly/fft.ts) share this module and its memory.
export { fftBatch, realForwardBatch, realInverseBatch } from './fft';
// So does the CTF·dose premultiplication of the slices (assembly/ctf.ts).
export { ctfDose, sines } from './ctf';
