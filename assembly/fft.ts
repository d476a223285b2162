/**
 * The batched Stockham stages of radix 2, 3, 4 and 5 and the real-transform packing of
 * src/recon/fft.ts (ComplexFFT.runBatch, radix2–5, RealFFT.forwardBatch and inverseBatch) in
 * AssemblyScript, for lengths with no other prime factor. Each complex value is one (re, im) pair of float64
 * SIMD lanes and every lane does the JavaScript's scalar operations in its order (WebAssembly
 * has no fused multiply-add; x − y is x + (−y) and x·(±1) is exact in IEEE arithmetic), so the
 * spectra are the JavaScript's bit for bit (test/wasm.test.ts). JavaScript stays the reference
 * and the fallback (other lengths, no arena).
 *
 * Pointers are byte offsets into the importer's memory; arrays are float64 unless said.
 */

/** (a, b) → (b, a): the complex value times i is (−im, re) = swap · (−1, 1). */
// @ts-ignore: decorator
@inline
function swap(v: v128): v128 {
  return v128.shuffle<f64>(v, v, 1, 0);
}

/** b·w for complex b and twiddle w = (wr, wi): (br·wr − bi·wi, br·wi + bi·wr), as fft.ts. */
// @ts-ignore: decorator
@inline
function twiddle(b: v128, wr: v128, wi: v128, negRe: v128): v128 {
  // (br·wr, bi·wr) + (−(bi·wi), br·wi): the real lane is br·wr + (−(bi·wi)) = br·wr − bi·wi; the
  // imaginary lane bi·wr + br·wi = br·wi + bi·wr (addition commutes exactly).
  return f64x2.add(f64x2.mul(b, wr), f64x2.mul(f64x2.mul(swap(b), wi), negRe));
}

function radix2(x: usize, y: usize, m: i32, s: i32, tw: usize, to: i32): void {
  const is = <usize>(16 * s * m);
  const os = <usize>(16 * s);
  const negRe = f64x2(-1, 1);
  for (let j = 0; j < m; j++) {
    const t = tw + (<usize>(to + 2 * j) << 3);
    const wr = f64x2.splat(load<f64>(t));
    const wi = f64x2.splat(load<f64>(t, 8));
    let i0 = x + <usize>(16 * s * j);
    let o0 = y + <usize>(32 * s * j);
    const end = i0 + <usize>(16 * s);
    for (; i0 < end; i0 += 16, o0 += 16) {
      const a = v128.load(i0);
      const b = v128.load(i0 + is);
      v128.store(o0, f64x2.add(a, b));
      v128.store(o0 + os, twiddle(f64x2.sub(a, b), wr, wi, negRe));
    }
  }
}

function radix4(x: usize, y: usize, m: i32, s: i32, tw: usize, to: i32, sign: f64): void {
  const is = <usize>(16 * s * m);
  const os = <usize>(16 * s);
  const negRe = f64x2(-1, 1);
  // (a1 − a3)·(sign·i) = (−sign·d13i, sign·d13r)
  const rot = f64x2(-sign, sign);
  for (let j = 0; j < m; j++) {
    const t = tw + (<usize>(to + 6 * j) << 3);
    const w1r = f64x2.splat(load<f64>(t));
    const w1i = f64x2.splat(load<f64>(t, 8));
    const w2r = f64x2.splat(load<f64>(t, 16));
    const w2i = f64x2.splat(load<f64>(t, 24));
    const w3r = f64x2.splat(load<f64>(t, 32));
    const w3i = f64x2.splat(load<f64>(t, 40));
    let i0 = x + <usize>(16 * s * j);
    let o0 = y + <usize>(64 * s * j);
    const end = i0 + <usize>(16 * s);
    for (; i0 < end; i0 += 16, o0 += 16) {
      const a0 = v128.load(i0);
      const a1 = v128.load(i0 + is);
      const a2 = v128.load(i0 + 2 * is);
      const a3 = v128.load(i0 + 3 * is);
      const s02 = f64x2.add(a0, a2);
      const d02 = f64x2.sub(a0, a2);
      const s13 = f64x2.add(a1, a3);
      const r = f64x2.mul(swap(f64x2.sub(a1, a3)), rot);
      v128.store(o0, f64x2.add(s02, s13));
      v128.store(o0 + os, twiddle(f64x2.add(d02, r), w1r, w1i, negRe));
      v128.store(o0 + 2 * os, twiddle(f64x2.sub(s02, s13), w2r, w2i, negRe));
      v128.store(o0 + 3 * os, twiddle(f64x2.sub(d02, r), w3r, w3i, negRe));
    }
  }
}

function radix3(x: usize, y: usize, m: i32, s: i32, tw: usize, to: i32, sign: f64, consts: usize): void {
  const is = <usize>(16 * s * m);
  const os = <usize>(16 * s);
  const negRe = f64x2(-1, 1);
  const negIm = f64x2(1, -1);
  const half = f64x2.splat(0.5);
  const sn = f64x2.splat(sign * load<f64>(consts)); // sign · sin 60°
  for (let j = 0; j < m; j++) {
    const t = tw + (<usize>(to + 4 * j) << 3);
    const w1r = f64x2.splat(load<f64>(t));
    const w1i = f64x2.splat(load<f64>(t, 8));
    const w2r = f64x2.splat(load<f64>(t, 16));
    const w2i = f64x2.splat(load<f64>(t, 24));
    let i0 = x + <usize>(16 * s * j);
    let o0 = y + <usize>(48 * s * j);
    const end = i0 + <usize>(16 * s);
    for (; i0 < end; i0 += 16, o0 += 16) {
      const a0 = v128.load(i0);
      const a1 = v128.load(i0 + is);
      const a2 = v128.load(i0 + 2 * is);
      const t1 = f64x2.add(a1, a2);
      const t2 = f64x2.sub(a0, f64x2.mul(half, t1));
      const t3 = swap(f64x2.mul(sn, f64x2.sub(a1, a2)));
      v128.store(o0, f64x2.add(a0, t1));
      // b1 = (t2r − t3i, t2i + t3r), b2 = (t2r + t3i, t2i − t3r)
      v128.store(o0 + os, twiddle(f64x2.add(t2, f64x2.mul(t3, negRe)), w1r, w1i, negRe));
      v128.store(o0 + 2 * os, twiddle(f64x2.add(t2, f64x2.mul(t3, negIm)), w2r, w2i, negRe));
    }
  }
}

function radix5(x: usize, y: usize, m: i32, s: i32, tw: usize, to: i32, sign: f64, consts: usize): void {
  const is = <usize>(16 * s * m);
  const os = <usize>(16 * s);
  const negRe = f64x2(-1, 1);
  const negIm = f64x2(1, -1);
  const c1 = f64x2.splat(load<f64>(consts, 8));
  const c2 = f64x2.splat(load<f64>(consts, 16));
  const s1 = f64x2.splat(sign * load<f64>(consts, 24));
  const s2 = f64x2.splat(sign * load<f64>(consts, 32));
  for (let j = 0; j < m; j++) {
    const t = tw + (<usize>(to + 8 * j) << 3);
    const w1r = f64x2.splat(load<f64>(t));
    const w1i = f64x2.splat(load<f64>(t, 8));
    const w2r = f64x2.splat(load<f64>(t, 16));
    const w2i = f64x2.splat(load<f64>(t, 24));
    const w3r = f64x2.splat(load<f64>(t, 32));
    const w3i = f64x2.splat(load<f64>(t, 40));
    const w4r = f64x2.splat(load<f64>(t, 48));
    const w4i = f64x2.splat(load<f64>(t, 56));
    let i0 = x + <usize>(16 * s * j);
    let o0 = y + <usize>(80 * s * j);
    const end = i0 + <usize>(16 * s);
    for (; i0 < end; i0 += 16, o0 += 16) {
      const a0 = v128.load(i0);
      const a1 = v128.load(i0 + is);
      const a2 = v128.load(i0 + 2 * is);
      const a3 = v128.load(i0 + 3 * is);
      const a4 = v128.load(i0 + 4 * is);
      const t1 = f64x2.add(a1, a4);
      const t2 = f64x2.add(a2, a3);
      const t3 = f64x2.sub(a1, a4);
      const t4 = f64x2.sub(a2, a3);
      v128.store(o0, f64x2.add(f64x2.add(a0, t1), t2));
      const e1 = f64x2.add(f64x2.add(a0, f64x2.mul(c1, t1)), f64x2.mul(c2, t2));
      const e2 = f64x2.add(f64x2.add(a0, f64x2.mul(c2, t1)), f64x2.mul(c1, t2));
      const f1 = swap(f64x2.add(f64x2.mul(s1, t3), f64x2.mul(s2, t4)));
      const f2 = swap(f64x2.sub(f64x2.mul(s2, t3), f64x2.mul(s1, t4)));
      // b1, b4 = e1 ± i·f1; b2, b3 = e2 ± i·f2
      v128.store(o0 + os, twiddle(f64x2.add(e1, f64x2.mul(f1, negRe)), w1r, w1i, negRe));
      v128.store(o0 + 2 * os, twiddle(f64x2.add(e2, f64x2.mul(f2, negRe)), w2r, w2i, negRe));
      v128.store(o0 + 3 * os, twiddle(f64x2.add(e2, f64x2.mul(f2, negIm)), w3r, w3i, negRe));
      v128.store(o0 + 4 * os, twiddle(f64x2.add(e1, f64x2.mul(f1, negIm)), w4r, w4i, negRe));
    }
  }
}

/**
 * ComplexFFT.runBatch for a plan whose radices are all 2, 3, 4 or 5: `batch` lines stored
 * [n][batch] in x, y scratch of the same size; `radices`, `twOffsets` (int32, `stages` of each)
 * and `tw` (the plan's twiddles for this sign); `consts`: sin 60°, cos 72°, cos 144°, sin 72°,
 * sin 144° as fft.ts computes them. Returns x or y, whichever holds the result.
 */
export function fftBatch(x: usize, y: usize, n: i32, batch: i32, radices: usize, twOffsets: usize, stages: i32, tw: usize, sign: f64, consts: usize): usize {
  let s = batch;
  let len = n;
  for (let t = 0; t < stages; t++) {
    const p = load<i32>(radices + (<usize>t << 2));
    const m = len / p;
    const to = load<i32>(twOffsets + (<usize>t << 2));
    if (p == 4) radix4(x, y, m, s, tw, to, sign);
    else if (p == 2) radix2(x, y, m, s, tw, to);
    else if (p == 3) radix3(x, y, m, s, tw, to, sign, consts);
    else radix5(x, y, m, s, tw, to, sign, consts);
    const tmp = x;
    x = y;
    y = tmp;
    s *= p;
    len = m;
  }
  return x;
}

/**
 * RealFFT.forwardBatch for even n = 2M: B real rows of n values at src (row l at src + l·n) to
 * B half spectra of nh = M + 1 values at dst (row l at dst + 2·l·nh), through one batched
 * complex FFT of length M (`a`, `b`: scratch of 2·M·B; plan as for fftBatch; `utw`: the
 * untangling twiddles e^{−2πik/n}, k ≤ M).
 */
export function realForwardBatch(
  src: usize,
  dst: usize,
  n: i32,
  B: i32,
  a: usize,
  b: usize,
  radices: usize,
  twOffsets: usize,
  stages: i32,
  tw: usize,
  utw: usize,
  consts: usize,
): void {
  const M = n >> 1;
  const nh = M + 1;
  const B2 = <usize>(16 * B);
  // a[j][l] = x_l[2j] + i·x_l[2j+1]: the pair as it lies in the row.
  for (let l = 0; l < B; l++) {
    const row = src + (<usize>(l * n) << 3);
    let o = a + (<usize>l << 4);
    for (let j = 0; j < M; j++, o += B2) v128.store(o, v128.load(row + (<usize>j << 4)));
  }
  const z = fftBatch(a, b, M, B, radices, twOffsets, stages, tw, -1, consts);
  const rowStep = <usize>(16 * nh);
  let out = dst;
  for (let l = 0; l < B; l++, out += rowStep) {
    const z0r = load<f64>(z + (<usize>l << 4));
    const z0i = load<f64>(z + (<usize>l << 4), 8);
    store<f64>(out, z0r + z0i);
    store<f64>(out, 0.0, 8);
    store<f64>(out + (<usize>M << 4), z0r - z0i);
    store<f64>(out + (<usize>M << 4), 0.0, 8);
  }
  for (let k = 1; k < M; k++) {
    const wr = load<f64>(utw + (<usize>k << 4));
    const wi = load<f64>(utw + (<usize>k << 4), 8);
    const zk = z + <usize>k * B2;
    const zm = z + <usize>(M - k) * B2;
    let o = dst + (<usize>k << 4);
    for (let l = 0; l < B; l++, o += rowStep) {
      const q = <usize>l << 4;
      const zr = load<f64>(zk + q);
      const zi = load<f64>(zk + q, 8);
      const cr = load<f64>(zm + q);
      const ci = -load<f64>(zm + q, 8);
      const er = 0.5 * (zr + cr);
      const ei = 0.5 * (zi + ci);
      const or = 0.5 * (zi - ci);
      const oi = -0.5 * (zr - cr);
      store<f64>(o, er + wr * or - wi * oi);
      store<f64>(o, ei + wr * oi + wi * or, 8);
    }
  }
}

/**
 * RealFFT.inverseBatch for even n = 2M: B half spectra of nh = M + 1 values at src (row l at
 * src + 2·l·nh) to B real rows of n values at dst (row l at dst + l·n), as the real part of the
 * inverse of the Hermitian extension (FFTW's c2r), through one batched complex FFT of length M
 * (plan and twiddles for sign +1; `utw` as for realForwardBatch). Reads every input row of the
 * batch before writing any output (dst may share src's memory from its start).
 */
export function realInverseBatch(
  src: usize,
  dst: usize,
  n: i32,
  B: i32,
  a: usize,
  b: usize,
  radices: usize,
  twOffsets: usize,
  stages: i32,
  tw: usize,
  utw: usize,
  consts: usize,
): void {
  const M = n >> 1;
  const nh = M + 1;
  const B2 = <usize>(16 * B);
  for (let l = 0; l < B; l++) {
    const row = src + <usize>(16 * l * nh);
    const x0 = load<f64>(row);
    const xm = load<f64>(row + (<usize>M << 4));
    store<f64>(a + (<usize>l << 4), x0 + xm);
    store<f64>(a + (<usize>l << 4), x0 - xm, 8);
    let o = a + (<usize>l << 4) + B2;
    for (let k = 1; k < M; k++, o += B2) {
      const xr = load<f64>(row + (<usize>k << 4));
      const xi = load<f64>(row + (<usize>k << 4), 8);
      // X_{k+M} of the Hermitian extension is conj(X_{M−k}).
      const yr = load<f64>(row + (<usize>(M - k) << 4));
      const yi = -load<f64>(row + (<usize>(M - k) << 4), 8);
      const sr = xr + yr;
      const si = xi + yi;
      const dr = xr - yr;
      const di = xi - yi;
      // D · W^{−k} (conjugate of the stored forward twiddle)
      const wr = load<f64>(utw + (<usize>k << 4));
      const wi = -load<f64>(utw + (<usize>k << 4), 8);
      const pr = dr * wr - di * wi;
      const pi = dr * wi + di * wr;
      store<f64>(o, sr - pi);
      store<f64>(o, si + pr, 8);
    }
  }
  const z = fftBatch(a, b, M, B, radices, twOffsets, stages, tw, 1, consts);
  for (let l = 0; l < B; l++) {
    const out = dst + (<usize>(l * n) << 3);
    let q = z + (<usize>l << 4);
    for (let j = 0; j < M; j++, q += B2) v128.store(out + (<usize>j << 4), v128.load(q));
  }
}
