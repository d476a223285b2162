/**
 * A fresh thread (V8 isolate) runs the particle kernel unoptimised at first: measured on the
 * benchmark at box 128, a thread's first particle took 164–183 ms and its second 58–85 ms,
 * against 25–30 ms afterwards. warmUpParticleKernel runs the whole kernel (tables, extraction,
 * FFT, CTF and dose, insertion) on a small synthetic tomogram, so that a thread started before
 * its work arrives (a worker's compute thread waiting to join, the local engine's threads while
 * the tilt series loads) has it compiled by then. Nothing it computes is kept.
 */
import { eulerToMatrix } from '../geometry/matrix.js';
import { accumulatorBytes, createAccumulator } from './backproject.js';
import type { WasmArena } from './wasmArena.js';
import { KernelOptions, KernelWorkspace, TomogramGeometry, buildTomogramTables, packParticle, particleRecordLength, processParticle } from './particleKernel.js';

/** Bytes warmUpParticleKernel takes from an arena (its accumulators and slice buffers at box 32). */
export const WARM_UP_ARENA_BYTES = 2 * accumulatorBytes(32) + KernelWorkspace.arenaBytes(32, 32) + 1024;

/**
 * Runs `particles` particles × 3 tilts at box 32 through the kernel; returns the tilt images
 * inserted. With an arena (WARM_UP_ARENA_BYTES of it are used for good) the insertion is the
 * WebAssembly one, which V8 also compiles in tiers.
 */
export function warmUpParticleKernel(particles = 8, arena: WasmArena | null = null): number {
  const s = 32;
  const W = 96;
  const F = 3;
  const opts: KernelOptions = {
    s,
    s0: s,
    bin: 1,
    doCtf: true,
    circleCrop: true,
    cutoffFraction: 0.01,
    outputPixelSize: 2,
    whiten: false,
    aberrations: [],
  };
  const projections = [-30, 0, 30].map((tilt) => {
    // Image = tilted tomogram, centred: x' = cos·x + sin·z + W/2 − …, as a 4×4 (rows x', y', z').
    const c = Math.cos((tilt * Math.PI) / 180);
    const si = Math.sin((tilt * Math.PI) / 180);
    return Float64Array.of(c, 0, si, W / 2 - (c * W) / 2 - si * 16, 0, 1, 0, 0, -si, 0, c, 0, 0, 0, 0, 1);
  });
  const geometry: TomogramGeometry = {
    name: 'warm-up',
    imageW: W,
    imageH: W,
    frameCount: F,
    pixelSize: 2,
    hand: 1,
    defocusSlope: 1,
    bPerDose: 4,
    centre: [W / 2, W / 2, 16],
    projections,
    ctf: projections.map(() => ({ defocusU: 20000, defocusV: 19000, defocusAngle: 30, voltage: 300, cs: 2.7, q0: 0.1, bfactor: 0, scale: 1, phaseShift: 0 })),
    dose: [0, 3, 6],
    deformation: null,
  };
  const stack = new Float32Array(W * W * F);
  for (let i = 0; i < stack.length; i++) stack[i] = Math.sin(i * 0.37) + Math.cos(i * 0.011);
  const tables = buildTomogramTables(opts, geometry, stack, null);
  const ws = new KernelWorkspace(opts, arena);
  const halves = arena ? [arena.accumulator(s), arena.accumulator(s)] : [createAccumulator(s), createAccumulator(s)];
  const len = particleRecordLength(F);
  const records = new Float64Array(particles * len);
  for (let p = 0; p < particles; p++) {
    packParticle(records, p * len, p % 2, 0, [W / 2 + (p % 3), W / 2 - (p % 5), 16], eulerToMatrix(37 * p, 11 * p + 20, 53 * p), null, F);
  }
  let images = 0;
  for (let p = 0; p < particles; p++) images += processParticle(ws, tables, records, p * len, halves);
  return images;
}
