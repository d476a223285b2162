/**
 * rfft3 / irfft3 (and rfft2, d = 1) of fft.ts with the WebAssembly kernels of assembly/fft.ts,
 * for sizes with no prime factor above 5 (and an even width): the same stages in the same order on the same values, so the results
 * are the JavaScript's bit for bit (test/wasm.test.ts), in about half its time. Input, output and
 * every table and scratch buffer live in one WasmArena. Used by the extraction (its square's
 * spectrum) and by the finalisation threads (useFft3 in fft.ts); other sizes, or arrays outside
 * the arena, keep the JavaScript FFT.
 */
import { BUTTERFLY_CONSTANTS, ROW_BATCH, axisChunk, axisPassWith, complexPlan, realForwardParts } from './fft.js';
import type { WasmArena } from './wasmArena.js';

/** A complex plan's stages copied into the arena, for one sign. */
interface Stages {
  radices: Int32Array;
  twOffsets: Int32Array;
  count: number;
  tw: Float64Array;
}

/** Whether the WebAssembly FFT does lengths n (its plan's stages are all of radix 2 to 5). */
export function wasmFftLength(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && complexPlan(n).wasmStages(-1) !== null;
}

/** Whether WasmRfft does w × h × d real volumes: w even (≥ 4), no size with a prime factor above 5. */
export function wasmRfftSize(w: number, h: number, d = 1): boolean {
  return Number.isInteger(w) && w >= 4 && w % 2 === 0 && wasmFftLength(w / 2) && wasmFftLength(h) && wasmFftLength(d);
}

/** Doubles of each of the two axis-pass scratch buffers for w × h × d (see axisPassWith). */
function axisScratchDoubles(w: number, h: number, d: number): number {
  const wh = (w >> 1) + 1;
  let most = 0;
  for (const [n, inner] of [
    [h, wh],
    [d, wh * h],
  ]) {
    if (n > 1) most = Math.max(most, 2 * n * axisChunk(n, inner));
  }
  return most;
}

/** Arena bytes of a WasmRfft for w × h × d (tables and scratch; not its input and output). */
export function wasmRfftBytes(w: number, h: number, d = 1): number {
  const m = w >> 1;
  // Row scratch (2), axis scratch (2), twiddles of both signs (rows: ≤ 2 per element of m; axes:
  // ≤ 2 per element of h and d; untangling: m + 1 complex), the butterflies' constants, radices
  // and offsets (6 × ≤ 32 int32), 64-byte alignment of 22 pieces.
  return 8 * (2 * 2 * m * ROW_BATCH + 2 * axisScratchDoubles(w, h, d) + 2 * (2 * m + 2 * h + 2 * d) + 2 * (m + 1) + 8) + 6 * 4 * 32 + 64 * 22;
}

export class WasmRfft {
  private constructor(
    readonly arena: WasmArena,
    readonly w: number,
    readonly h: number,
    readonly d: number,
    /** Rows (complex length w/2) and the two axes, for sign −1 (forward) and +1. */
    private readonly rows: [Stages, Stages],
    private readonly ys: [Stages, Stages] | null,
    private readonly zs: [Stages, Stages] | null,
    private readonly utw: Float64Array,
    private readonly a: Float64Array,
    private readonly b: Float64Array,
    private readonly sA: Float64Array,
    private readonly sB: Float64Array,
    /** BUTTERFLY_CONSTANTS in the arena. */
    private readonly consts: Float64Array,
  ) {}

  /** For w × h × d real volumes; null unless w is even (≥ 4) and no size has a prime factor above 5. */
  static create(arena: WasmArena, w: number, h: number, d = 1): WasmRfft | null {
    if (!wasmRfftSize(w, h, d)) return null;
    const real = realForwardParts(w);
    if (!real) return null;
    const both = (plan: ReturnType<typeof complexPlan>): [Stages, Stages] | null => {
      const f = plan.wasmStages(-1);
      const b = plan.wasmStages(1);
      if (!f || !b) return null;
      const copy = (st: { radices: Int32Array; twOffsets: Int32Array; tw: Float64Array }): Stages => {
        const radices = arena.i32(Math.max(1, st.radices.length));
        radices.set(st.radices);
        const twOffsets = arena.i32(Math.max(1, st.twOffsets.length));
        twOffsets.set(st.twOffsets);
        const tw = arena.f64(Math.max(1, st.tw.length));
        tw.set(st.tw);
        return { radices, twOffsets, count: st.radices.length, tw };
      };
      return [copy(f), copy(b)];
    };
    const rows = both(real.half);
    const ys = h > 1 ? both(complexPlan(h)) : null;
    const zs = d > 1 ? both(complexPlan(d)) : null;
    if (!rows || (h > 1 && !ys) || (d > 1 && !zs)) return null;
    const utw = arena.f64(real.tw.length);
    utw.set(real.tw);
    const m = w >> 1;
    const scratch = Math.max(1, axisScratchDoubles(w, h, d));
    const consts = arena.f64(BUTTERFLY_CONSTANTS.length);
    consts.set(BUTTERFLY_CONSTANTS);
    return new WasmRfft(arena, w, h, d, rows, ys, zs, utw, arena.f64(2 * m * ROW_BATCH), arena.f64(2 * m * ROW_BATCH), arena.f64(scratch), arena.f64(scratch), consts);
  }

  /** Whether the arrays are this arena's (else the JavaScript FFT must do it). */
  holds(...arrays: Float64Array[]): boolean {
    return arrays.every((x) => x.buffer === this.arena.buffer);
  }

  /** rfft3(input, w, h, d, out) for arrays in the arena (out may share input's memory from its start). Returns out. */
  forward(input: Float64Array, out: Float64Array): Float64Array {
    const { w, h, d, rows } = this;
    const wh = (w >> 1) + 1;
    const count = h * d;
    const k = this.arena.fft;
    const batch = (r0: number, B: number): void =>
      k.realForwardBatch(input.byteOffset + 8 * r0 * w, out.byteOffset + 16 * r0 * wh, w, B, this.a.byteOffset, this.b.byteOffset, rows[0].radices.byteOffset, rows[0].twOffsets.byteOffset, rows[0].count, rows[0].tw.byteOffset, this.utw.byteOffset, this.consts.byteOffset);
    // As rfft3: last batch first when the output shares the input's buffer (in place).
    if (input.buffer === out.buffer) {
      for (let end = count; end > 0; end -= ROW_BATCH) {
        const r0 = Math.max(0, end - ROW_BATCH);
        batch(r0, end - r0);
      }
    } else {
      for (let r0 = 0; r0 < count; r0 += ROW_BATCH) batch(r0, Math.min(ROW_BATCH, count - r0));
    }
    if (this.ys) this.axis(out, h, wh, d, this.ys[0], -1);
    if (this.zs) this.axis(out, d, wh * h, 1, this.zs[0], -1);
    return out;
  }

  /**
   * irfft3(input, w, h, d, out, destroyInput = true) for arrays in the arena: the input is the
   * work array (out may share its memory from its start). Returns out.
   */
  inverseDestroying(input: Float64Array, out: Float64Array): Float64Array {
    const { w, h, d, rows } = this;
    const wh = (w >> 1) + 1;
    const count = h * d;
    const k = this.arena.fft;
    if (h > 1 || d > 1) {
      if (this.zs) this.axis(input, d, wh * h, 1, this.zs[1], 1);
      if (this.ys) this.axis(input, h, wh, d, this.ys[1], 1);
    }
    // First row first (see irfft3).
    for (let r0 = 0; r0 < count; r0 += ROW_BATCH) {
      const B = Math.min(ROW_BATCH, count - r0);
      k.realInverseBatch(input.byteOffset + 16 * r0 * wh, out.byteOffset + 8 * r0 * w, w, B, this.a.byteOffset, this.b.byteOffset, rows[1].radices.byteOffset, rows[1].twOffsets.byteOffset, rows[1].count, rows[1].tw.byteOffset, this.utw.byteOffset, this.consts.byteOffset);
    }
    return out;
  }

  /** axisPass of fft.ts (its own traversal, axisPassWith) with the WebAssembly kernel. */
  private axis(data: Float64Array, n: number, inner: number, outer: number, st: Stages, sign: number): void {
    const k = this.arena.fft;
    const consts = this.consts.byteOffset;
    axisPassWith(data, n, inner, outer, this.sA, this.sB, (x, y, lines) =>
      k.fftBatch(x.byteOffset, y.byteOffset, n, lines, st.radices.byteOffset, st.twOffsets.byteOffset, st.count, st.tw.byteOffset, sign, consts) === x.byteOffset ? x : y,
    );
  }
}
