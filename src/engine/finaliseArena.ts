/**
 * The WebAssembly arena of a finalisation thread (finaliseWorker.ts): one tag's data sums and the
 * 3-D FFT's tables and scratch (wasmFft.ts), so that the tag's inverse and forward transforms run
 * in WebAssembly (each 128³ transform 12 ms against 25 ms warm in JavaScript, 46 ms cold). For
 * sums that are not in a WebAssembly memory of their own already (wasmVolume.ts: the local run's
 * and the coordinator's half sets, symmetrised halves and merged sums are; sums read from a
 * checkpoint, or symmetrised in the calling thread, are not). A maps job copies such sums in
 * (the transferred ones are then freed), so a thread holds one more set of data sums than
 * without: only for boxes the
 * WebAssembly FFT does (even, no prime factor above 5) whose data sums take at most
 * FINALISE_WASM_MAX_DATA_BYTES (box 128: 17 MiB, 192: 57 MiB); larger boxes keep the JavaScript
 * FFT for those sums and their memory as it was. finalisationThreadBytes (local.ts) counts the
 * arena.
 */
import { wasmArenaPossible, WasmArena } from '../recon/wasmArena.js';
import { WasmRfft, wasmRfftBytes } from '../recon/wasmFft.js';
import { wasmVolumeBox } from '../recon/wasmVolume.js';

export const FINALISE_WASM_MAX_DATA_BYTES = 64 * 2 ** 20;


function dataBytes(s: number): number {
  return 16 * ((s >> 1) + 1) * s * s;
}

/** Bytes of a finalisation thread's arena for box s; 0 where the JavaScript FFT is used. */
export function finaliseArenaBytes(s: number): number {
  if (!wasmVolumeBox(s) || dataBytes(s) > FINALISE_WASM_MAX_DATA_BYTES) return 0;
  const bytes = dataBytes(s) + wasmRfftBytes(s, s, s) + 4096;
  return wasmArenaPossible(bytes) ? bytes : 0;
}

let cached: { s: number; fft: WasmRfft; data: Float64Array } | null = null;

/** This thread's arena for box s (made at the first call for s), or null: use the JavaScript FFT. */
export function finaliseVolume(s: number): { fft: WasmRfft; data: Float64Array } | null {
  if (cached?.s === s) return cached;
  const bytes = finaliseArenaBytes(s);
  if (bytes === 0) return null;
  const arena = WasmArena.create(bytes);
  const fft = arena && WasmRfft.create(arena, s, s, s);
  if (!arena || !fft) return null;
  cached = { s, fft, data: arena.f64(dataBytes(s) / 8) };
  return cached;
}
