/**
 * Float64 arrays in a WebAssembly.Memory of their own, with room after them for the WebAssembly
 * FFT's tables and scratch: a finalisation thread given such an array (with its memory, see
 * memoryOf) transforms it there in place (wasmFft.ts), with no copy into an arena of its own and
 * no more memory than an ordinary array of the same size (the room after it is ~1 MiB). The run's
 * half-set sums and the merged sums are made so when a finalisation pool will take them.
 */
import { WasmArena, align64 } from './wasmArena.js';
import { wasmRfftBytes, wasmRfftSize } from './wasmFft.js';

const memories = new WeakMap<ArrayBufferLike, WebAssembly.Memory>();

/**
 * Zero data sums of box s (a half spectrum, 2·(s/2+1)·s² doubles; also room for an s³ map
 * transformed in place) in a WebAssembly memory with room for the FFT of box s after them; null
 * when that cannot be made (the caller then uses an ordinary array).
 */
export function wasmVolume(s: number): Float64Array | null {
  if (!wasmRfftSize(s, s, s)) return null;
  const n = 2 * ((s >> 1) + 1) * s * s;
  const arena = WasmArena.create(8 * n + wasmRfftBytes(s, s, s) + 1024);
  if (!arena) return null;
  const a = arena.f64(n);
  memories.set(a.buffer, arena.memory);
  return a;
}

/** The WebAssembly memory an array of wasmVolume lives in, or null. */
export function memoryOf(a: Float64Array): WebAssembly.Memory | null {
  return memories.get(a.buffer) ?? null;
}

/** Where the room after a wasmVolume array starts (a WasmArena over its memory hands out from there). */
export function tailOf(a: Float64Array): number {
  return align64(a.byteOffset + a.byteLength);
}
