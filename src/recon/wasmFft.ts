/**
 * The extraction's 2-D real FFT (rfft2 of fft.ts) with the WebAssembly kernels of
 * assembly/fft.ts, for power-of-two sizes: the same stages in the same order on the same values,
 * so the spectrum is rfft2's bit for bit (test/wasm.test.ts), in about half its time. Input,
 * output and every table and scratch buffer live in the thread's WasmArena. Other sizes (or no
 * arena) keep the JavaScript FFT: create() returns null.
 */
import { BLOCK_COMPLEX, ROW_BATCH, complexPlan, realForwardParts } from './fft.js';
import type { WasmArena } from './wasmArena.js';

interface Stages {
  radices: Int32Array;
  twOffsets: Int32Array;
  count: number;
  tw: Float64Array;
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n >= 2 && (n & (n - 1)) === 0;
}

/** Columns fft.ts's axisPass transforms together (all of them: in place; fewer: gathered in blocks). */
function columnChunk(w: number, h: number): number {
  const wh = (w >> 1) + 1;
  return Math.max(1, Math.min(wh, Math.floor(BLOCK_COMPLEX / h)));
}

/** Arena bytes of a WasmRfft2 for w × h (tables and scratch; not its input and output). */
export function wasmRfft2Bytes(w: number, h: number): number {
  const wh = (w >> 1) + 1;
  const m = w >> 1;
  const chunk = columnChunk(w, h);
  // Row scratch (2), column scratch (the whole spectrum, or two blocks), untangling and stage
  // twiddles (at most 2 per element), radices and offsets, and 64-byte alignment of 12 pieces.
  const columns = chunk === wh ? 2 * wh * h : 2 * 2 * h * chunk;
  return 8 * (2 * 2 * m * ROW_BATCH + columns + 2 * (m + 1) + 4 * m + 4 * h) + 4 * 4 * 32 + 64 * 12;
}

export class WasmRfft2 {
  private constructor(
    private readonly arena: WasmArena,
    private readonly w: number,
    private readonly h: number,
    private readonly rows: Stages,
    private readonly cols: Stages,
    private readonly utw: Float64Array,
    private readonly a: Float64Array,
    private readonly b: Float64Array,
    /** Columns per batch (see columnChunk) and their scratch: the spectrum's size, or two blocks. */
    private readonly chunk: number,
    private readonly colA: Float64Array,
    private readonly colB: Float64Array,
  ) {}

  /** For w × h real images; null unless both are powers of two (w ≥ 4). */
  static create(arena: WasmArena, w: number, h: number): WasmRfft2 | null {
    const wh = (w >> 1) + 1;
    if (!isPow2(w) || w < 4 || !isPow2(h)) return null;
    const real = realForwardParts(w);
    const rowStages = real?.half.pow2Stages(-1);
    const colStages = complexPlan(h).pow2Stages(-1);
    if (!real || !rowStages || !colStages) return null;
    const copy = (st: { radices: Int32Array; twOffsets: Int32Array; tw: Float64Array }): Stages => {
      const radices = arena.i32(Math.max(1, st.radices.length));
      radices.set(st.radices);
      const twOffsets = arena.i32(Math.max(1, st.twOffsets.length));
      twOffsets.set(st.twOffsets);
      const tw = arena.f64(Math.max(1, st.tw.length));
      tw.set(st.tw);
      return { radices, twOffsets, count: st.radices.length, tw };
    };
    const rows = copy(rowStages);
    const cols = copy(colStages);
    const utw = arena.f64(real.tw.length);
    utw.set(real.tw);
    const m = w >> 1;
    const chunk = columnChunk(w, h);
    const colA = arena.f64(chunk === wh ? 2 * wh * h : 2 * h * chunk);
    const colB = chunk === wh ? colA : arena.f64(2 * h * chunk);
    return new WasmRfft2(arena, w, h, rows, cols, utw, arena.f64(2 * m * ROW_BATCH), arena.f64(2 * m * ROW_BATCH), chunk, colA, colB);
  }

  /** rfft2(input, w, h, out): both in the arena, not overlapping. Returns out. */
  forward(input: Float64Array, out: Float64Array): Float64Array {
    const { w, h, rows, cols, arena } = this;
    const wh = (w >> 1) + 1;
    const k = arena.fft;
    // Rows: RealFFT.forward, ROW_BATCH rows at a time.
    for (let r0 = 0; r0 < h; r0 += ROW_BATCH) {
      const B = Math.min(ROW_BATCH, h - r0);
      k.realForwardBatch(
        input.byteOffset + 8 * r0 * w,
        out.byteOffset + 16 * r0 * wh,
        w,
        B,
        this.a.byteOffset,
        this.b.byteOffset,
        rows.radices.byteOffset,
        rows.twOffsets.byteOffset,
        rows.count,
        rows.tw.byteOffset,
        this.utw.byteOffset,
      );
    }
    const { chunk, colA, colB } = this;
    const column = (x: number, y: number, c: number): number =>
      k.fftBatch(x, y, h, c, cols.radices.byteOffset, cols.twOffsets.byteOffset, cols.count, cols.tw.byteOffset, -1);
    if (chunk === wh) {
      // Columns: axisPass's one batch over all of them, in place.
      if (column(out.byteOffset, colA.byteOffset, wh) !== out.byteOffset) out.set(colA.subarray(0, 2 * wh * h));
      return out;
    }
    // axisPass's blocks of `chunk` columns: gathered into [h][c], transformed, scattered back.
    for (let i0 = 0; i0 < wh; i0 += chunk) {
      const c2 = 2 * Math.min(chunk, wh - i0);
      for (let j = 0; j < h; j++) {
        const src = 2 * (j * wh + i0);
        const dst = j * c2;
        for (let q = 0; q < c2; q++) colA[dst + q] = out[src + q];
      }
      const res = column(colA.byteOffset, colB.byteOffset, c2 / 2) === colA.byteOffset ? colA : colB;
      for (let j = 0; j < h; j++) {
        const dst = 2 * (j * wh + i0);
        const src = j * c2;
        for (let q = 0; q < c2; q++) out[dst + q] = res[src + q];
      }
    }
    return out;
  }
}
