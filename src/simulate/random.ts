/**
 * Seeded pseudo-random numbers for the simulator: mulberry32 (32-bit state, fast, good enough for
 * synthetic data) with Box–Muller normals. The same seed always gives the same sequence, on every
 * platform (only 32-bit integer arithmetic and IEEE doubles are involved).
 */
export class Rng {
  private state: number;
  private spare: number | null = null;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [a, b). */
  uniform(a: number, b: number): number {
    return a + (b - a) * this.next();
  }

  /** Standard normal (Box–Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = this.next();
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    const a = 2 * Math.PI * v;
    this.spare = r * Math.sin(a);
    return r * Math.cos(a);
  }

  /** Fills `out` with `mean + sigma·N(0,1)` added to what is there (no allocation). */
  addNormal(out: Float32Array | Float64Array, sigma: number): void {
    const n = out.length;
    let i = 0;
    for (; i + 1 < n; i += 2) {
      let u = this.next();
      while (u === 0) u = this.next();
      const r = sigma * Math.sqrt(-2 * Math.log(u));
      const a = 2 * Math.PI * this.next();
      out[i] += r * Math.cos(a);
      out[i + 1] += r * Math.sin(a);
    }
    if (i < n) out[i] += sigma * this.normal();
  }
}

/** An independent stream derived from a seed and a stream number (splitmix-style mixing). */
export function deriveSeed(seed: number, stream: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
