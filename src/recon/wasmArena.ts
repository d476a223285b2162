/**
 * The WebAssembly back-projection (assembly/backproject.ts, compiled into backprojectWasm.ts) and
 * the memory it works in. WebAssembly reads and writes only its own linear memory, so a compute
 * thread that uses it keeps its accumulators and its slice buffers in a WasmArena: one shared
 * WebAssembly.Memory (a SharedArrayBuffer, so the main thread reads and folds the accumulators as
 * before) handed out in aligned pieces. Its pages are reserved, not used, until written.
 *
 * insert() is backprojectSlice, bit for bit (test/wasm.test.ts), in less time (the bench's
 * stage, box 128, warm: 0.23–0.27 against 0.34–0.52 ms per slice). Arrays that do not live in
 * the arena (or a host without WebAssembly, or a box whose arena would pass 4 GiB) use the
 * JavaScript function. The same module has the extraction's FFT kernels (wasmFft.ts) and the
 * CTF·dose premultiplication of the slices (ctfDose).
 */
import { Accumulator, backprojectSlice } from './backproject.js';
import { BACKPROJECT_WASM_BASE64 } from './backprojectWasm.js';
import type { Mat3 } from '../geometry/matrix.js';
import type { CtfConstants } from '../physics/ctf.js';

type Backproject = (
  data: number,
  weight: number,
  s: number,
  P: number,
  Wt: number,
  m0: number,
  m1: number,
  m2: number,
  m3: number,
  m4: number,
  m5: number,
  m6: number,
  m7: number,
  m8: number,
  maxFreq: number,
) => void;

type CtfDose = (P: number, Wt: number, dose: number, ranges: number, gamma0: number, s: number, inv: number, k1: number, axx: number, axy: number, ayy: number, k2: number, k5: number, k3: number, scale: number) => void;

/** The FFT kernels of assembly/fft.ts (see wasmFft.ts), byte offsets into the arena. */
export interface FftKernels {
  fftBatch(x: number, y: number, n: number, batch: number, radices: number, twOffsets: number, stages: number, tw: number, sign: number, consts: number): number;
  realForwardBatch(src: number, dst: number, n: number, B: number, a: number, b: number, radices: number, twOffsets: number, stages: number, tw: number, utw: number, consts: number): void;
  realInverseBatch(src: number, dst: number, n: number, B: number, a: number, b: number, radices: number, twOffsets: number, stages: number, tw: number, utw: number, consts: number): void;
}

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB: what a 32-bit WebAssembly memory can address

let compiled: WebAssembly.Module | null | undefined;
function backprojectModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(Buffer.from(BACKPROJECT_WASM_BASE64, 'base64'));
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

export class WasmArena {
  private next = 64; // offset 0 is never handed out
  private constructor(
    readonly memory: WebAssembly.Memory,
    readonly buffer: SharedArrayBuffer,
    private readonly backproject: Backproject,
    private readonly ctfDoseKernel: CtfDose,
    private readonly sinesKernel: (x: number, out: number, n: number) => void,
    /** @internal For wasmFft.ts. */
    readonly fft: FftKernels,
  ) {}

  /** An arena of at least `bytes`, or null when WebAssembly cannot provide one. */
  static create(bytes: number): WasmArena | null {
    const pages = pagesFor(bytes);
    if (!backprojectModule() || pages > MAX_PAGES) return null;
    try {
      return WasmArena.wrap(new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }), 64);
    } catch {
      return null;
    }
  }

  /**
   * The arena over `memory` made by another thread (a shared WebAssembly.Memory goes through
   * postMessage), handing out from byte `from` on (what that thread took, `used`).
   */
  static wrap(memory: WebAssembly.Memory, from: number): WasmArena | null {
    const module = backprojectModule();
    if (!module) return null;
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    const e = instance.exports;
    const fft: FftKernels = {
      fftBatch: e.fftBatch as FftKernels['fftBatch'],
      realForwardBatch: e.realForwardBatch as FftKernels['realForwardBatch'],
      realInverseBatch: e.realInverseBatch as FftKernels['realInverseBatch'],
    };
    const arena = new WasmArena(memory, memory.buffer as unknown as SharedArrayBuffer, e.backproject as Backproject, e.ctfDose as CtfDose, e.sines as (x: number, out: number, n: number) => void, fft);
    arena.next = from;
    return arena;
  }

  /** Bytes handed out so far (where another thread's wrap goes on). */
  get used(): number {
    return this.next;
  }

  private take(bytes: number): number {
    const at = this.next;
    if (at + bytes > this.buffer.byteLength) throw new RangeError(`WebAssembly arena of ${this.buffer.byteLength} bytes is full`);
    this.next = align64(at + bytes); // 64-byte aligned pieces
    return at;
  }

  f64(n: number): Float64Array {
    return new Float64Array(this.buffer, this.take(8 * n), n);
  }

  f32(n: number): Float32Array {
    return new Float32Array(this.buffer, this.take(4 * n), n);
  }

  i32(n: number): Int32Array {
    return new Int32Array(this.buffer, this.take(4 * n), n);
  }

  /** An accumulator pair for box s (data, then weight), zero. */
  accumulator(s: number): Accumulator {
    const n = ((s >> 1) + 1) * s * s;
    return { data: this.f64(2 * n), weight: this.f64(n) };
  }

  /** backprojectSlice in WebAssembly when the accumulator and the slice live here; false (nothing done) otherwise. */
  insert(acc: Accumulator, s: number, P: Float32Array, Wt: Float32Array, M: Mat3, maxFreq: number): boolean {
    const b = this.buffer;
    if (acc.data.buffer !== b || acc.weight.buffer !== b || P.buffer !== b || Wt.buffer !== b) return false;
    this.backproject(acc.data.byteOffset, acc.weight.byteOffset, s, P.byteOffset, Wt.byteOffset, M[0], M[1], M[2], M[3], M[4], M[5], M[6], M[7], M[8], maxFreq);
    return true;
  }

  /**
   * The CTF·dose premultiplication of a slice (assembly/ctf.ts): for each row y and
   * x < ranges[y], cw = f32(−ctf · dose), P *= cw, Wt = cw²; zero beyond. `k`: the CTF's
   * constants (without B-factor: k4 = 0; the caller checks), drawn at X = x·inv, Y = σ(y)·inv
   * with the even aberrations' phase `gamma0` (sh×s) if any. All arrays must live here (false,
   * nothing done, otherwise).
   */
  ctfDose(P: Float32Array, Wt: Float32Array, dose: Float32Array, ranges: Int32Array, gamma0: Float64Array | null, s: number, inv: number, k: CtfConstants): boolean {
    const b = this.buffer;
    if (P.buffer !== b || Wt.buffer !== b || dose.buffer !== b || ranges.buffer !== b || (gamma0 && gamma0.buffer !== b)) return false;
    this.ctfDoseKernel(P.byteOffset, Wt.byteOffset, dose.byteOffset, ranges.byteOffset, gamma0 ? gamma0.byteOffset : 0, s, inv, k.k1, k.axx, k.axy, k.ayy, k.k2, k.k5, k.k3, k.scale);
    return true;
  }

  /** out = sine(x) elementwise with the CTF kernel's WebAssembly sine (for tests); both here, even length. */
  sines(x: Float64Array, out: Float64Array): void {
    const b = this.buffer;
    if (x.buffer !== b || out.buffer !== b || x.length !== out.length || x.length % 2 !== 0) throw new RangeError('sines: two arrays of one even length in the arena');
    this.sinesKernel(x.byteOffset, out.byteOffset, x.length);
  }
}

/**
 * n rounded up to a multiple of 64. Not with `& ~63`: bit operations work on 32-bit signed
 * integers, and offsets in a memory of up to 4 GiB pass 2³¹ (box ≥ ~476 locally: a negative offset).
 */
export function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
}

/** Whether an arena of `bytes` can be made here (the module compiles and the size fits in 4 GiB). */
export function wasmArenaPossible(bytes: number): boolean {
  return backprojectModule() !== null && pagesFor(bytes) <= MAX_PAGES;
}

/** Pages of an arena of `bytes` (with room for the alignment of its pieces). */
function pagesFor(bytes: number): number {
  return Math.ceil((bytes + 64 * 16) / PAGE);
}

/** Inserts with the arena's WebAssembly when it can, else with backprojectSlice. */
export function insertSlice(arena: WasmArena | null, acc: Accumulator, s: number, P: Float32Array, Wt: Float32Array, M: Mat3, maxFreq: number): void {
  if (!arena || !arena.insert(acc, s, P, Wt, M, maxFreq)) backprojectSlice(acc, s, P, Wt, M, maxFreq);
}
