/**
 * Mixed-radix FFTs with FFTW's (unnormalised) sign conventions: forward uses e^{-2πi kx/N},
 * backward e^{+2πi kx/N}; callers normalise.
 *
 * The core is a Stockham autosort FFT (ping-pong between two buffers, so no bit-reversal pass),
 * with hand-written radix-2/3/4/5 butterflies and a generic odd-prime butterfly. Lengths whose
 * largest prime factor is large go through Bluestein's chirp-z algorithm instead, so that every
 * n >= 1 costs O(n log n).
 *
 * Multi-dimensional passes along a strided axis gather a block of lines into a contiguous
 * [n][batch] buffer and run one *batched* Stockham over it: in Stockham indexing a batch of B
 * interleaved lines is exactly the same computation as starting the stage loop with stride B, so
 * the innermost loops run over contiguous memory with a shared twiddle.
 */

const TWO_PI = 2 * Math.PI;

/** Prime factors above this go through Bluestein; below it the O(p) generic butterfly is cheaper. */
const MAX_GENERIC_RADIX = 61;

/** Complex elements per gathered block in axis passes; two such buffers (~1 MiB) stay cache-resident. */
export const BLOCK_COMPLEX = 32768;

function checkLength(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${what} must be a positive integer, got ${n}`);
}

function factorize(n: number): number[] {
  const f: number[] = [];
  // Radix 4 first: it does the most work per memory sweep.
  while (n % 4 === 0) {
    f.push(4);
    n /= 4;
  }
  while (n % 2 === 0) {
    f.push(2);
    n /= 2;
  }
  for (let p = 3; p * p <= n; p += 2) {
    while (n % p === 0) {
      f.push(p);
      n /= p;
    }
  }
  if (n > 1) f.push(n);
  return f;
}

// ---------------------------------------------------------------------------------------------
// Stockham stages. Stage with radix p, sub-length m = len/p and stride s reads element
// (q + s*(j + r*m)) and writes (q + s*(p*j + k)), k-th output multiplied by ω_len^{jk}.
// Twiddles for a stage are stored as [j][k=1..p-1] complex pairs.

function radix2(x: Float64Array, y: Float64Array, m: number, s: number, tw: Float64Array, to: number): void {
  const is = 2 * s * m;
  const os = 2 * s;
  for (let j = 0; j < m; j++) {
    const wr = tw[to + 2 * j];
    const wi = tw[to + 2 * j + 1];
    let i0 = 2 * s * j;
    let o0 = 4 * s * j;
    const end = i0 + 2 * s;
    for (; i0 < end; i0 += 2, o0 += 2) {
      const ar = x[i0], ai = x[i0 + 1];
      const br = x[i0 + is], bi = x[i0 + is + 1];
      y[o0] = ar + br;
      y[o0 + 1] = ai + bi;
      const dr = ar - br, di = ai - bi;
      y[o0 + os] = dr * wr - di * wi;
      y[o0 + os + 1] = dr * wi + di * wr;
    }
  }
}

function radix4(x: Float64Array, y: Float64Array, m: number, s: number, tw: Float64Array, to: number, sign: number): void {
  const is = 2 * s * m;
  const os = 2 * s;
  for (let j = 0; j < m; j++) {
    const t = to + 6 * j;
    const w1r = tw[t], w1i = tw[t + 1], w2r = tw[t + 2], w2i = tw[t + 3], w3r = tw[t + 4], w3i = tw[t + 5];
    let i0 = 2 * s * j;
    let o0 = 8 * s * j;
    const end = i0 + 2 * s;
    for (; i0 < end; i0 += 2, o0 += 2) {
      const a0r = x[i0], a0i = x[i0 + 1];
      const a1r = x[i0 + is], a1i = x[i0 + is + 1];
      const a2r = x[i0 + 2 * is], a2i = x[i0 + 2 * is + 1];
      const a3r = x[i0 + 3 * is], a3i = x[i0 + 3 * is + 1];
      const s02r = a0r + a2r, s02i = a0i + a2i;
      const d02r = a0r - a2r, d02i = a0i - a2i;
      const s13r = a1r + a3r, s13i = a1i + a3i;
      // (a1 - a3) rotated by ω4 = sign*i
      const rr = -sign * (a1i - a3i), ri = sign * (a1r - a3r);
      y[o0] = s02r + s13r;
      y[o0 + 1] = s02i + s13i;
      const b1r = d02r + rr, b1i = d02i + ri;
      const b2r = s02r - s13r, b2i = s02i - s13i;
      const b3r = d02r - rr, b3i = d02i - ri;
      y[o0 + os] = b1r * w1r - b1i * w1i;
      y[o0 + os + 1] = b1r * w1i + b1i * w1r;
      y[o0 + 2 * os] = b2r * w2r - b2i * w2i;
      y[o0 + 2 * os + 1] = b2r * w2i + b2i * w2r;
      y[o0 + 3 * os] = b3r * w3r - b3i * w3i;
      y[o0 + 3 * os + 1] = b3r * w3i + b3i * w3r;
    }
  }
}

const SIN60 = Math.sqrt(3) / 2;

function radix3(x: Float64Array, y: Float64Array, m: number, s: number, tw: Float64Array, to: number, sign: number): void {
  const is = 2 * s * m;
  const os = 2 * s;
  const sn = sign * SIN60;
  for (let j = 0; j < m; j++) {
    const t = to + 4 * j;
    const w1r = tw[t], w1i = tw[t + 1], w2r = tw[t + 2], w2i = tw[t + 3];
    let i0 = 2 * s * j;
    let o0 = 6 * s * j;
    const end = i0 + 2 * s;
    for (; i0 < end; i0 += 2, o0 += 2) {
      const a0r = x[i0], a0i = x[i0 + 1];
      const a1r = x[i0 + is], a1i = x[i0 + is + 1];
      const a2r = x[i0 + 2 * is], a2i = x[i0 + 2 * is + 1];
      const t1r = a1r + a2r, t1i = a1i + a2i;
      const t2r = a0r - 0.5 * t1r, t2i = a0i - 0.5 * t1i;
      const t3r = sn * (a1r - a2r), t3i = sn * (a1i - a2i);
      y[o0] = a0r + t1r;
      y[o0 + 1] = a0i + t1i;
      const b1r = t2r - t3i, b1i = t2i + t3r;
      const b2r = t2r + t3i, b2i = t2i - t3r;
      y[o0 + os] = b1r * w1r - b1i * w1i;
      y[o0 + os + 1] = b1r * w1i + b1i * w1r;
      y[o0 + 2 * os] = b2r * w2r - b2i * w2i;
      y[o0 + 2 * os + 1] = b2r * w2i + b2i * w2r;
    }
  }
}

const C5_1 = Math.cos(TWO_PI / 5);
const C5_2 = Math.cos(2 * TWO_PI / 5);
const S5_1 = Math.sin(TWO_PI / 5);
const S5_2 = Math.sin(2 * TWO_PI / 5);

/** The radix-3 and radix-5 butterflies' constants, for the WebAssembly FFT (the same doubles). @internal */
export const BUTTERFLY_CONSTANTS = [SIN60, C5_1, C5_2, S5_1, S5_2];

function radix5(x: Float64Array, y: Float64Array, m: number, s: number, tw: Float64Array, to: number, sign: number): void {
  const is = 2 * s * m;
  const os = 2 * s;
  const s1 = sign * S5_1, s2 = sign * S5_2;
  for (let j = 0; j < m; j++) {
    const t = to + 8 * j;
    const w1r = tw[t], w1i = tw[t + 1], w2r = tw[t + 2], w2i = tw[t + 3];
    const w3r = tw[t + 4], w3i = tw[t + 5], w4r = tw[t + 6], w4i = tw[t + 7];
    let i0 = 2 * s * j;
    let o0 = 10 * s * j;
    const end = i0 + 2 * s;
    for (; i0 < end; i0 += 2, o0 += 2) {
      const a0r = x[i0], a0i = x[i0 + 1];
      const a1r = x[i0 + is], a1i = x[i0 + is + 1];
      const a2r = x[i0 + 2 * is], a2i = x[i0 + 2 * is + 1];
      const a3r = x[i0 + 3 * is], a3i = x[i0 + 3 * is + 1];
      const a4r = x[i0 + 4 * is], a4i = x[i0 + 4 * is + 1];
      const t1r = a1r + a4r, t1i = a1i + a4i;
      const t2r = a2r + a3r, t2i = a2i + a3i;
      const t3r = a1r - a4r, t3i = a1i - a4i;
      const t4r = a2r - a3r, t4i = a2i - a3i;
      y[o0] = a0r + t1r + t2r;
      y[o0 + 1] = a0i + t1i + t2i;
      const e1r = a0r + C5_1 * t1r + C5_2 * t2r, e1i = a0i + C5_1 * t1i + C5_2 * t2i;
      const e2r = a0r + C5_2 * t1r + C5_1 * t2r, e2i = a0i + C5_2 * t1i + C5_1 * t2i;
      const f1r = s1 * t3r + s2 * t4r, f1i = s1 * t3i + s2 * t4i;
      const f2r = s2 * t3r - s1 * t4r, f2i = s2 * t3i - s1 * t4i;
      // b1,b4 = e1 ± i f1 ; b2,b3 = e2 ± i f2
      const b1r = e1r - f1i, b1i = e1i + f1r;
      const b4r = e1r + f1i, b4i = e1i - f1r;
      const b2r = e2r - f2i, b2i = e2i + f2r;
      const b3r = e2r + f2i, b3i = e2i - f2r;
      y[o0 + os] = b1r * w1r - b1i * w1i;
      y[o0 + os + 1] = b1r * w1i + b1i * w1r;
      y[o0 + 2 * os] = b2r * w2r - b2i * w2i;
      y[o0 + 2 * os + 1] = b2r * w2i + b2i * w2r;
      y[o0 + 3 * os] = b3r * w3r - b3i * w3i;
      y[o0 + 3 * os + 1] = b3r * w3i + b3i * w3r;
      y[o0 + 4 * os] = b4r * w4r - b4i * w4i;
      y[o0 + 4 * os + 1] = b4r * w4i + b4i * w4r;
    }
  }
}

/**
 * Odd prime p. `roots` holds cos/sin(2πr/p) for r < p starting at ro. `buf` (>= 2p+2 doubles) holds
 * the symmetric sums a_r ± a_{p-r}, which halve the multiplications.
 */
function radixGeneric(
  x: Float64Array, y: Float64Array, m: number, s: number, tw: Float64Array, to: number, sign: number,
  p: number, roots: Float64Array, ro: number, buf: Float64Array,
): void {
  const is = 2 * s * m;
  const os = 2 * s;
  const half = (p - 1) >> 1;
  for (let j = 0; j < m; j++) {
    const t = to + 2 * (p - 1) * j;
    for (let q = 0; q < s; q++) {
      const i0 = 2 * (q + s * j);
      const o0 = 2 * (q + s * p * j);
      const a0r = x[i0], a0i = x[i0 + 1];
      let sr = a0r, si = a0i;
      for (let r = 1; r <= half; r++) {
        const ia = i0 + r * is, ib = i0 + (p - r) * is;
        const ar = x[ia], ai = x[ia + 1], br = x[ib], bi = x[ib + 1];
        const u = 4 * r;
        buf[u] = ar + br;
        buf[u + 1] = ai + bi;
        buf[u + 2] = ar - br;
        buf[u + 3] = ai - bi;
        sr += ar + br;
        si += ai + bi;
      }
      y[o0] = sr;
      y[o0 + 1] = si;
      for (let k = 1; k <= half; k++) {
        let er = a0r, ei = a0i, fr = 0, fi = 0;
        let idx = 0;
        for (let r = 1; r <= half; r++) {
          idx += k;
          if (idx >= p) idx -= p;
          const c = roots[ro + 2 * idx], sn = roots[ro + 2 * idx + 1];
          const u = 4 * r;
          er += c * buf[u];
          ei += c * buf[u + 1];
          fr += sn * buf[u + 2];
          fi += sn * buf[u + 3];
        }
        fr *= sign;
        fi *= sign;
        // b_k = e + i f, b_{p-k} = e - i f
        const bkr = er - fi, bki = ei + fr;
        const bpr = er + fi, bpi = ei - fr;
        const wk = t + 2 * (k - 1), wp = t + 2 * (p - k - 1);
        const wkr = tw[wk], wki = tw[wk + 1], wpr = tw[wp], wpi = tw[wp + 1];
        const ok = o0 + k * os, op = o0 + (p - k) * os;
        y[ok] = bkr * wkr - bki * wki;
        y[ok + 1] = bkr * wki + bki * wkr;
        y[op] = bpr * wpr - bpi * wpi;
        y[op + 1] = bpr * wpi + bpi * wpr;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** Bluestein chirp-z: a length-n DFT as a cyclic convolution of power-of-two length. */
class Bluestein {
  private readonly n: number;
  private readonly sub: ComplexFFT;
  private readonly chirp: Float64Array; // e^{-iπ j²/n}
  private readonly kernF: Float64Array; // FFT of the forward convolution kernel, pre-scaled by 1/M
  private readonly kernB: Float64Array;
  private readonly u: Float64Array;
  private readonly v: Float64Array;

  constructor(n: number) {
    this.n = n;
    let M = 1;
    while (M < 2 * n - 1) M *= 2;
    this.sub = complexPlan(M);
    this.chirp = new Float64Array(2 * n);
    const n2 = 2 * n;
    for (let j = 0; j < n; j++) {
      // j² mod 2n keeps the angle small, so large j do not lose precision.
      const a = (Math.PI * ((j * j) % n2)) / n;
      this.chirp[2 * j] = Math.cos(a);
      this.chirp[2 * j + 1] = -Math.sin(a);
    }
    this.u = new Float64Array(2 * M);
    this.v = new Float64Array(2 * M);
    this.kernF = this.kernel(M, -1);
    this.kernB = this.kernel(M, 1);
  }

  private kernel(M: number, sign: number): Float64Array {
    // Kernel b_m = conj(c_m) with chirp c = e^{sign·iπ m²/n}, laid out cyclically (b_{-m} = b_m).
    const k = new Float64Array(2 * M);
    const n = this.n;
    for (let m = 0; m < n; m++) {
      const br = this.chirp[2 * m];
      const bi = sign < 0 ? -this.chirp[2 * m + 1] : this.chirp[2 * m + 1];
      k[2 * m] = br;
      k[2 * m + 1] = bi;
      if (m > 0) {
        k[2 * (M - m)] = br;
        k[2 * (M - m) + 1] = bi;
      }
    }
    const r = this.sub.runBatch(k, this.u, 1, -1);
    const out = new Float64Array(2 * M);
    for (let i = 0; i < 2 * M; i++) out[i] = r[i] / M;
    return out;
  }

  /** Transforms `batch` interleaved lines of `a` ([n][batch] layout) in place. */
  run(a: Float64Array, batch: number, sign: number): void {
    const n = this.n;
    const u = this.u, v = this.v, c = this.chirp;
    const M2 = u.length;
    const kern = sign < 0 ? this.kernF : this.kernB;
    const cs = sign < 0 ? 1 : -1; // chirp for this direction is c or conj(c)
    for (let l = 0; l < batch; l++) {
      for (let j = 0; j < n; j++) {
        const p = 2 * (j * batch + l);
        const xr = a[p], xi = a[p + 1];
        const cr = c[2 * j], ci = cs * c[2 * j + 1];
        u[2 * j] = xr * cr - xi * ci;
        u[2 * j + 1] = xr * ci + xi * cr;
      }
      u.fill(0, 2 * n, M2);
      const f = this.sub.runBatch(u, v, 1, -1);
      for (let i = 0; i < M2; i += 2) {
        const fr = f[i], fi = f[i + 1], kr = kern[i], ki = kern[i + 1];
        f[i] = fr * kr - fi * ki;
        f[i + 1] = fr * ki + fi * kr;
      }
      const g = this.sub.runBatch(f, f === u ? v : u, 1, 1);
      for (let k = 0; k < n; k++) {
        const p = 2 * (k * batch + l);
        const gr = g[2 * k], gi = g[2 * k + 1];
        const cr = c[2 * k], ci = cs * c[2 * k + 1];
        a[p] = gr * cr - gi * ci;
        a[p + 1] = gr * ci + gi * cr;
      }
    }
  }
}

/** Precomputed plan for complex 1-D transforms of length n (twiddles, factorisation, scratch). */
export class ComplexFFT {
  readonly n: number;
  private readonly radices: Int32Array;
  private readonly twOffsets: Int32Array;
  private readonly rootOffsets: Int32Array;
  private readonly twF: Float64Array;
  private readonly twB: Float64Array;
  private readonly roots: Float64Array;
  private readonly gbuf: Float64Array;
  private readonly bluestein: Bluestein | null;
  private readonly sa: Float64Array;
  private readonly sb: Float64Array;

  constructor(n: number) {
    checkLength(n, 'FFT length');
    this.n = n;
    this.sa = new Float64Array(2 * n);
    this.sb = new Float64Array(2 * n);
    const factors = factorize(n);
    if (factors.length > 0 && factors[factors.length - 1] > MAX_GENERIC_RADIX) {
      this.radices = new Int32Array(0);
      this.twOffsets = new Int32Array(0);
      this.rootOffsets = new Int32Array(0);
      this.twF = this.twB = this.roots = this.gbuf = new Float64Array(0);
      this.bluestein = new Bluestein(n);
      return;
    }
    this.bluestein = null;
    this.radices = Int32Array.from(factors);
    this.twOffsets = new Int32Array(factors.length);
    this.rootOffsets = new Int32Array(factors.length);
    let twLen = 0;
    let rootLen = 0;
    let maxGeneric = 0;
    let len = n;
    for (let t = 0; t < factors.length; t++) {
      const p = factors[t];
      this.twOffsets[t] = twLen;
      twLen += 2 * (p - 1) * (len / p);
      len /= p;
      if (p > 5) {
        this.rootOffsets[t] = rootLen;
        rootLen += 2 * p;
        maxGeneric = Math.max(maxGeneric, p);
      }
    }
    this.twF = new Float64Array(twLen);
    this.twB = new Float64Array(twLen);
    this.roots = new Float64Array(rootLen);
    this.gbuf = new Float64Array(2 * maxGeneric + 2);
    len = n;
    for (let t = 0; t < factors.length; t++) {
      const p = factors[t];
      const m = len / p;
      let o = this.twOffsets[t];
      for (let j = 0; j < m; j++) {
        for (let k = 1; k < p; k++, o += 2) {
          const a = (TWO_PI * j * k) / len;
          const c = Math.cos(a), s = Math.sin(a);
          this.twF[o] = c;
          this.twF[o + 1] = -s;
          this.twB[o] = c;
          this.twB[o + 1] = s;
        }
      }
      if (p > 5) {
        const ro = this.rootOffsets[t];
        for (let r = 0; r < p; r++) {
          this.roots[ro + 2 * r] = Math.cos((TWO_PI * r) / p);
          this.roots[ro + 2 * r + 1] = Math.sin((TWO_PI * r) / p);
        }
      }
      len = m;
    }
  }

  /**
   * Transforms `batch` lines stored as [n][batch] interleaved complex in `a` (element j of line l
   * at 2*(j*batch + l)); `b` is scratch of the same size. Returns whichever of a/b holds the result.
   * @internal
   */
  runBatch(a: Float64Array, b: Float64Array, batch: number, sign: number): Float64Array {
    if (this.bluestein !== null) {
      this.bluestein.run(a, batch, sign);
      return a;
    }
    const tw = sign < 0 ? this.twF : this.twB;
    const radices = this.radices;
    let x = a, y = b;
    let s = batch;
    let len = this.n;
    for (let t = 0; t < radices.length; t++) {
      const p = radices[t];
      const m = len / p;
      const to = this.twOffsets[t];
      switch (p) {
        case 2: radix2(x, y, m, s, tw, to); break;
        case 3: radix3(x, y, m, s, tw, to, sign); break;
        case 4: radix4(x, y, m, s, tw, to, sign); break;
        case 5: radix5(x, y, m, s, tw, to, sign); break;
        default: radixGeneric(x, y, m, s, tw, to, sign, p, this.roots, this.rootOffsets[t], this.gbuf);
      }
      const tmp = x;
      x = y;
      y = tmp;
      s *= p;
      len = m;
    }
    return x;
  }

  /**
   * The plan's stages for `sign` (radices, offsets of their twiddles, the twiddles) when they
   * are all of radix 2, 3, 4 or 5, as the WebAssembly FFT (wasmFft.ts) takes them; null otherwise.
   * @internal
   */
  wasmStages(sign: number): { radices: Int32Array; twOffsets: Int32Array; tw: Float64Array } | null {
    if (this.bluestein !== null) return null;
    for (const p of this.radices) if (p > 5) return null;
    return { radices: this.radices, twOffsets: this.twOffsets, tw: sign < 0 ? this.twF : this.twB };
  }

  /** In-place transform of n complex values stored interleaved (re,im) in `data`, element j at data[offset + 2*j*stride], data[offset + 2*j*stride + 1]. sign -1 = forward, +1 = backward. No allocation per call. */
  transform(data: Float64Array, offset: number, stride: number, sign: -1 | 1): void {
    const n = this.n;
    const a = this.sa;
    const st = 2 * stride;
    for (let j = 0, p = offset; j < n; j++, p += st) {
      a[2 * j] = data[p];
      a[2 * j + 1] = data[p + 1];
    }
    const r = this.runBatch(a, this.sb, 1, sign);
    for (let j = 0, p = offset; j < n; j++, p += st) {
      data[p] = r[2 * j];
      data[p + 1] = r[2 * j + 1];
    }
  }
}

const complexPlans = new Map<number, ComplexFFT>();

/** Cached plan lookup. */
export function complexPlan(n: number): ComplexFFT {
  let p = complexPlans.get(n);
  if (p === undefined) {
    p = new ComplexFFT(n);
    complexPlans.set(n, p);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------

/** Rows transformed together by RealFFT (one batched Stockham over [n/2][rows]; ~32 KiB at n = 128). */
export const ROW_BATCH = 32;

/**
 * 1-D real transforms of length n. Even n packs even/odd samples into one complex FFT of n/2 and
 * untangles the halves with a twiddle pass; odd n falls back to a full complex FFT. Consecutive
 * rows go through one batched complex FFT (up to ROW_BATCH at a time): the same arithmetic per row
 * as one at a time, with the stage loops running over the batch instead of a single element.
 */
class RealFFT {
  readonly n: number;
  private readonly half: number;
  private readonly odd: boolean;
  private readonly plan: ComplexFFT;
  private readonly tw: Float64Array; // e^{-2πik/n}, k = 0..n/2
  private readonly a: Float64Array;
  private readonly b: Float64Array;

  constructor(n: number) {
    this.n = n;
    this.odd = n % 2 === 1;
    this.half = this.odd ? n : n / 2;
    this.plan = complexPlan(this.half);
    this.a = new Float64Array(2 * this.half * ROW_BATCH);
    this.b = new Float64Array(2 * this.half * ROW_BATCH);
    const M = n >> 1;
    this.tw = new Float64Array(2 * (M + 1));
    for (let k = 0; k <= M; k++) {
      const ang = (TWO_PI * k) / n;
      this.tw[2 * k] = Math.cos(ang);
      this.tw[2 * k + 1] = -Math.sin(ang);
    }
  }

  /** @internal See realForwardParts. */
  parts(): { tw: Float64Array; half: ComplexFFT } | null {
    return this.odd ? null : { tw: this.tw, half: this.plan };
  }

  /**
   * `count` rows: real src[so + r·n .. so + (r+1)·n) -> complex dst[d0 + 2r·nh ..), nh = floor(n/2)+1.
   * Each batch reads all its rows before writing any output.
   */
  forward(src: Float64Array | Float32Array, so: number, dst: Float64Array, d0: number, count = 1): void {
    const n = this.n;
    const nh = (n >> 1) + 1;
    for (let r0 = 0; r0 < count; r0 += ROW_BATCH) {
      const B = Math.min(ROW_BATCH, count - r0);
      this.forwardBatch(src, so + r0 * n, dst, d0 + 2 * r0 * nh, B);
    }
  }

  /** Like forward, last batch first (rows in place when dst starts where src does). */
  forwardReverse(src: Float64Array, so: number, dst: Float64Array, d0: number, count: number): void {
    const n = this.n;
    const nh = (n >> 1) + 1;
    for (let end = count; end > 0; end -= ROW_BATCH) {
      const r0 = Math.max(0, end - ROW_BATCH);
      this.forwardBatch(src, so + r0 * n, dst, d0 + 2 * r0 * nh, end - r0);
    }
  }

  private forwardBatch(src: Float64Array | Float32Array, so: number, dst: Float64Array, d0: number, B: number): void {
    const n = this.n;
    const a = this.a;
    const nh = (n >> 1) + 1;
    if (this.odd) {
      for (let l = 0; l < B; l++) {
        const row = so + l * n;
        for (let j = 0; j < n; j++) {
          a[2 * (j * B + l)] = src[row + j];
          a[2 * (j * B + l) + 1] = 0;
        }
      }
      const r = this.plan.runBatch(a, this.b, B, -1);
      for (let l = 0; l < B; l++) {
        const out = d0 + 2 * l * nh;
        for (let k = 0; k < nh; k++) {
          dst[out + 2 * k] = r[2 * (k * B + l)];
          dst[out + 2 * k + 1] = r[2 * (k * B + l) + 1];
        }
      }
      return;
    }
    const M = this.half;
    // a[j][l] = x_l[2j] + i·x_l[2j+1]
    const B2 = 2 * B;
    for (let l = 0; l < B; l++) {
      const row = so + l * n;
      for (let j = 0, o = 2 * l; j < M; j++, o += B2) {
        a[o] = src[row + 2 * j];
        a[o + 1] = src[row + 2 * j + 1];
      }
    }
    const z = this.plan.runBatch(a, this.b, B, -1);
    const tw = this.tw;
    const rowStep = 2 * nh;
    for (let l = 0, out = d0; l < B; l++, out += rowStep) {
      const z0r = z[2 * l], z0i = z[2 * l + 1];
      dst[out] = z0r + z0i;
      dst[out + 1] = 0;
      dst[out + 2 * M] = z0r - z0i;
      dst[out + 2 * M + 1] = 0;
    }
    // Frequency by frequency, the batch's rows in order: z is read along its contiguous rows
    // (reading it across them took a third of a 128² transform).
    for (let k = 1; k < M; k++) {
      const wr = tw[2 * k], wi = tw[2 * k + 1];
      const zkRow = k * B2;
      const zmRow = (M - k) * B2;
      for (let l2 = 0, out = d0 + 2 * k; l2 < B2; l2 += 2, out += rowStep) {
        const zr = z[zkRow + l2], zi = z[zkRow + l2 + 1];
        const cr = z[zmRow + l2], ci = -z[zmRow + l2 + 1];
        // E = (Z_k + conj Z_{M-k})/2 transforms the even samples, O = (Z_k - conj Z_{M-k})/(2i) the odd ones.
        const er = 0.5 * (zr + cr), ei = 0.5 * (zi + ci);
        const or = 0.5 * (zi - ci), oi = -0.5 * (zr - cr);
        dst[out] = er + wr * or - wi * oi;
        dst[out + 1] = ei + wr * oi + wi * or;
      }
    }
  }

  /**
   * `count` rows: complex src[s0 + 2r·nh ..) (floor(n/2)+1 values each) -> real dst[d0 + r·n ..),
   * as Re of the inverse of the Hermitian extension: only the real parts of the DC and (even n)
   * Nyquist terms contribute. Each batch reads all its rows before writing any output.
   */
  inverse(src: Float64Array, s0: number, dst: Float64Array, d0: number, count = 1): void {
    const n = this.n;
    const nh = (n >> 1) + 1;
    for (let r0 = 0; r0 < count; r0 += ROW_BATCH) {
      const B = Math.min(ROW_BATCH, count - r0);
      this.inverseBatch(src, s0 + 2 * r0 * nh, dst, d0 + r0 * n, B);
    }
  }

  private inverseBatch(src: Float64Array, s0: number, dst: Float64Array, d0: number, B: number): void {
    const n = this.n;
    const a = this.a;
    const nh = (n >> 1) + 1;
    if (this.odd) {
      for (let l = 0; l < B; l++) {
        const row = s0 + 2 * l * nh;
        a[2 * l] = src[row];
        a[2 * l + 1] = 0;
        for (let k = 1; k < nh; k++) {
          const re = src[row + 2 * k], im = src[row + 2 * k + 1];
          a[2 * (k * B + l)] = re;
          a[2 * (k * B + l) + 1] = im;
          a[2 * ((n - k) * B + l)] = re;
          a[2 * ((n - k) * B + l) + 1] = -im;
        }
      }
      const r = this.plan.runBatch(a, this.b, B, 1);
      for (let l = 0; l < B; l++) {
        const out = d0 + l * n;
        for (let j = 0; j < n; j++) dst[out + j] = r[2 * (j * B + l)];
      }
      return;
    }
    const M = this.half;
    const tw = this.tw;
    for (let l = 0; l < B; l++) {
      const row = s0 + 2 * l * nh;
      const x0 = src[row], xm = src[row + 2 * M];
      a[2 * l] = x0 + xm;
      a[2 * l + 1] = x0 - xm;
      for (let k = 1; k < M; k++) {
        const xr = src[row + 2 * k], xi = src[row + 2 * k + 1];
        // X_{k+M} of the Hermitian extension is conj(X_{M-k}).
        const yr = src[row + 2 * (M - k)], yi = -src[row + 2 * (M - k) + 1];
        const sr = xr + yr, si = xi + yi;
        const dr = xr - yr, di = xi - yi;
        // D · W^{-k} (conjugate of the stored forward twiddle)
        const wr = tw[2 * k], wi = -tw[2 * k + 1];
        const pr = dr * wr - di * wi, pi = dr * wi + di * wr;
        a[2 * (k * B + l)] = sr - pi;
        a[2 * (k * B + l) + 1] = si + pr;
      }
    }
    const z = this.plan.runBatch(a, this.b, B, 1);
    for (let l = 0; l < B; l++) {
      const out = d0 + l * n;
      for (let j = 0; j < M; j++) {
        dst[out + 2 * j] = z[2 * (j * B + l)];
        dst[out + 2 * j + 1] = z[2 * (j * B + l) + 1];
      }
    }
  }
}

/**
 * For the WebAssembly FFT (wasmFft.ts): the untangling twiddles of real transforms of even
 * length n (e^{−2πik/n}, k ≤ n/2, interleaved) and the plan of their half-length complex FFT.
 * @internal
 */
export function realForwardParts(n: number): { tw: Float64Array; half: ComplexFFT } | null {
  const p = realPlan(n);
  return p.parts();
}

const realPlans = new Map<number, RealFFT>();

function realPlan(n: number): RealFFT {
  let p = realPlans.get(n);
  if (p === undefined) {
    p = new RealFFT(n);
    realPlans.set(n, p);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------

let blockA = new Float64Array(0);
let blockB = new Float64Array(0);

/**
 * Complex transforms along an axis of length n in an array indexed (o*n + j)*inner + i (complex
 * units), for all o < outer and i < inner. Lines are gathered in blocks of contiguous i so every
 * memory access in the gather, the stages and the scatter runs along contiguous rows.
 */
function axisPass(data: Float64Array, n: number, inner: number, outer: number, sign: number): void {
  if (n === 1) return;
  const plan = complexPlan(n);
  const need = 2 * n * axisChunk(n, inner);
  if (blockA.length < need) {
    blockA = new Float64Array(need);
    blockB = new Float64Array(need);
  }
  axisPassWith(data, n, inner, outer, blockA, blockB, (x, y, lines) => plan.runBatch(x, y, lines, sign));
}

/** Lines axisPass transforms together along an axis of length n with `inner` lines per slab. @internal */
export function axisChunk(n: number, inner: number): number {
  return Math.max(1, Math.min(inner, Math.floor(BLOCK_COMPLEX / n)));
}

/**
 * axisPass's traversal, for any batched transform: `run(x, y, lines)` transforms `lines` lines
 * stored [n][lines] in x (y: scratch of the same size) and returns whichever holds the result;
 * `a` and `b` hold 2·n·axisChunk(n, inner) doubles each. The WebAssembly FFT (wasmFft.ts) runs
 * the same traversal over its own kernel and scratch.
 * @internal
 */
export function axisPassWith(
  data: Float64Array,
  n: number,
  inner: number,
  outer: number,
  a: Float64Array,
  b: Float64Array,
  run: (x: Float64Array, y: Float64Array, lines: number) => Float64Array,
): void {
  const chunk = axisChunk(n, inner);
  if (chunk === inner) {
    // Each o's lines already lie in the [n][batch] layout of runBatch, contiguous: transform them
    // where they are (the same arithmetic, without the gather and scatter copies).
    const len = 2 * n * inner;
    for (let o = 0; o < outer; o++) {
      const block = data.subarray(o * len, (o + 1) * len);
      const r = run(block, b, inner);
      if (r !== block) block.set(r.subarray(0, len));
    }
    return;
  }
  for (let o = 0; o < outer; o++) {
    for (let i0 = 0; i0 < inner; i0 += chunk) {
      const c = Math.min(chunk, inner - i0);
      const c2 = 2 * c;
      // Row by row as memory copies (a row is 2·c contiguous doubles on both sides).
      for (let j = 0; j < n; j++) {
        const src = 2 * ((o * n + j) * inner + i0);
        a.set(data.subarray(src, src + c2), j * c2);
      }
      const r = run(a, b, c);
      for (let j = 0; j < n; j++) data.set(r.subarray(j * c2, (j + 1) * c2), 2 * ((o * n + j) * inner + i0));
    }
  }
}

function checkSize(arr: { length: number }, need: number, what: string): void {
  if (arr.length < need) throw new RangeError(`${what} has length ${arr.length}, need ${need}`);
}

/** Real-to-half-complex 2-D: input real w*h (x fastest), output interleaved complex (w/2+1)*h (x fastest, wh = floor(w/2)+1). */
export function rfft2(input: Float64Array | Float32Array, w: number, h: number, out?: Float64Array): Float64Array {
  return rfft3(input, w, h, 1, out);
}

/** Half-complex to real 2-D with FFTW c2r semantics (see below); input not modified. */
export function irfft2(input: Float64Array, w: number, h: number, out?: Float64Array): Float64Array {
  return irfft3(input, w, h, 1, out);
}

/**
 * A faster rfft3/irfft3 for some arrays (wasmFft.ts's WasmRfft, which a finalisation thread sets
 * for the volumes in its WebAssembly arena): the same results bit for bit.
 * @internal
 */
export interface Fft3Engine {
  readonly w: number;
  readonly h: number;
  readonly d: number;
  holds(...arrays: Float64Array[]): boolean;
  forward(input: Float64Array, out: Float64Array): Float64Array;
  inverseDestroying(input: Float64Array, out: Float64Array): Float64Array;
}
let fft3Engine: Fft3Engine | null = null;

/** Sets (or clears) the engine rfft3 and irfft3 use for the arrays it holds, in this thread. @internal */
export function useFft3(engine: Fft3Engine | null): void {
  fft3Engine = engine;
}

function engineFor(w: number, h: number, d: number, ...arrays: Float64Array[]): Fft3Engine | null {
  const e = fft3Engine;
  return e && e.w === w && e.h === h && e.d === d && e.holds(...arrays) ? e : null;
}

/**
 * Same in 3-D: real w*h*d <-> interleaved complex (w/2+1)*h*d, x fastest then y then z. The
 * output may share the input's buffer from its start (in place; the buffer must hold the spectrum).
 */
export function rfft3(
  input: Float64Array | Float32Array, w: number, h: number, d: number, out?: Float64Array,
): Float64Array {
  checkLength(w, 'width');
  checkLength(h, 'height');
  checkLength(d, 'depth');
  const wh = (w >> 1) + 1;
  checkSize(input, w * h * d, 'rfft input');
  const res = out ?? new Float64Array(2 * wh * h * d);
  checkSize(res, 2 * wh * h * d, 'rfft output');
  const engine = input instanceof Float64Array ? engineFor(w, h, d, input, res) : null;
  if (engine) return engine.forward(input as Float64Array, res);
  const rp = realPlan(w);
  const rows = h * d;
  // Last rows first when `out` shares a Float64 `input`'s buffer from its start (in place): row
  // r's output [2·wh·r, 2·wh·(r+1)) only covers input rows ≥ r, which are read already.
  if (input instanceof Float64Array && input.buffer === res.buffer) rp.forwardReverse(input, 0, res, 0, rows);
  else rp.forward(input, 0, res, 0, rows);
  axisPass(res, h, wh, d, -1);
  axisPass(res, d, wh * h, 1, -1);
  return res;
}

/**
 * Half-complex to real 3-D with FFTW c2r semantics: the result is Re of the full inverse DFT of the
 * Hermitian extension, so imaginary parts on the x=0 and x=w/2 planes are effectively ignored
 * after the y/z transforms. Input not modified, unless `destroyInput` (then it is used as the
 * work array, which saves a copy of the whole spectrum).
 */
export function irfft3(input: Float64Array, w: number, h: number, d: number, out?: Float64Array, destroyInput = false): Float64Array {
  checkLength(w, 'width');
  checkLength(h, 'height');
  checkLength(d, 'depth');
  const wh = (w >> 1) + 1;
  checkSize(input, 2 * wh * h * d, 'irfft input');
  const res = out ?? new Float64Array(w * h * d);
  checkSize(res, w * h * d, 'irfft output');
  const engine = destroyInput ? engineFor(w, h, d, input, res) : null;
  if (engine) return engine.inverseDestroying(input, res);
  const rp = realPlan(w);
  const rows = h * d;
  if (h === 1 && d === 1) {
    rp.inverse(input, 0, res, 0);
    return res;
  }
  const work = destroyInput ? input : input.slice(0, 2 * wh * h * d);
  axisPass(work, d, wh * h, 1, 1);
  axisPass(work, h, wh, d, 1);
  // First row first: with destroyInput, `out` may share the input's buffer from its start (in
  // place): row r's output [w·r, w·(r+1)) lies below input row r + 1 (w ≤ 2·wh), and each row is
  // read whole before it is written.
  rp.inverse(work, 0, res, 0, rows);
  return res;
}

/** Full complex 2-D/3-D in place (interleaved), sign -1/+1. */
export function cfft2(data: Float64Array, w: number, h: number, sign: -1 | 1): void {
  cfft3(data, w, h, 1, sign);
}

export function cfft3(data: Float64Array, w: number, h: number, d: number, sign: -1 | 1): void {
  checkLength(w, 'width');
  checkLength(h, 'height');
  checkLength(d, 'depth');
  checkSize(data, 2 * w * h * d, 'cfft data');
  axisPass(data, w, 1, h * d, sign);
  axisPass(data, h, w, d, sign);
  axisPass(data, d, w * h, 1, sign);
}
