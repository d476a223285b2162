/**
 * The WebAssembly arena of one of the local engine's compute threads (worker.ts): both halves'
 * accumulators, the slice buffers, the extraction's square and FFT, and the warm-up's. Reserved, not used, until written.
 */
import { accumulatorBytes } from '../recon/backproject.js';
import { KernelWorkspace } from '../recon/particleKernel.js';
import { WARM_UP_ARENA_BYTES } from '../recon/warmUp.js';

export function threadArenaBytes(s: number, s0: number): number {
  return 2 * accumulatorBytes(s) + KernelWorkspace.arenaBytes(s, s0) + WARM_UP_ARENA_BYTES;
}
