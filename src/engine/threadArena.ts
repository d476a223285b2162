/**
 * The WebAssembly arena of one of the local engine's compute threads (worker.ts): both halves'
 * accumulators, the slice buffers, the extraction's square and FFT, the even-aberration tables,
 * and the warm-up's. Reserved, not used, until written.
 */
import { accumulatorBytes } from '../recon/backproject.js';
import { KernelOptions, KernelWorkspace, evenAberrationTables } from '../recon/particleKernel.js';
import { WARM_UP_ARENA_BYTES } from '../recon/warmUp.js';

export function threadArenaBytes(kernel: KernelOptions): number {
  const { s, s0 } = kernel;
  return 2 * accumulatorBytes(s) + KernelWorkspace.arenaBytes(s, s0, evenAberrationTables(kernel)) + WARM_UP_ARENA_BYTES;
}
