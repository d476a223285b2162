/**
 * Worker thread of the local engine: claims particles of the current tomogram from shared
 * counters (dynamic balancing) and sums them into its own accumulators, which live in shared
 * memory: after each tomogram the main thread adds them to the run's sums and zeroes them while
 * the threads wait, so nothing is copied or reallocated between tomograms.
 *
 * Each thread has a home half set and takes that half's particles first: with two or more threads
 * most threads then touch one half accumulator instead of two, which halves their memory and the
 * cache traffic of the insertion. A thread whose half runs out helps with the other one, creating
 * that accumulator only then.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isTomoError } from '../errors.js';
import { Accumulator } from '../recon/backproject.js';
import { WasmArena } from '../recon/wasmArena.js';
import { KernelOptions, KernelWorkspace, TomogramGeometry, buildTomogramTables, processParticle, processParticleFrame } from '../recon/particleKernel.js';
import { warmUpParticleKernel } from '../recon/warmUp.js';
import { threadArenaBytes } from './threadArena.js';

export interface TomogramMessage {
  type: 'tomogram';
  geometry: TomogramGeometry;
  stack: Float32Array;
  noise: Float32Array | null;
  records: Float64Array;
  recordLength: number;
  /** Particle indices, half-1 particles first: order[0, split) are half 1, order[split, count) half 2. */
  order: Int32Array;
  split: number;
  count: number;
  /** Next unclaimed position in each half's list. */
  counters: Int32Array;
  home: 0 | 1;
  /**
   * While the main thread is still reading the stack: [frames in place, load failed]. A thread
   * uses frame f only once more than f frames are in place. Null: the whole stack is there.
   */
  loaded: Int32Array | null;
}

class LoadFailed extends Error {}

/** Waits until frame f is in place (returns the frames in place), or throws if the load failed. */
function waitForFrame(loaded: Int32Array, f: number): number {
  for (;;) {
    const n = Atomics.load(loaded, 0);
    if (n > f) return n;
    if (Atomics.load(loaded, 1) !== 0) throw new LoadFailed('the tilt series could not be read');
    Atomics.wait(loaded, 0, n, 1000);
  }
}

export type WorkerReply =
  | { type: 'progress'; particles: number }
  /** `created`: accumulators this thread allocated during the tomogram (shared memory), by half. */
  | { type: 'tomogramDone'; particles: number; created: (Accumulator | null)[] }
  | { type: 'error'; message: string; tomo: boolean; stack?: string };

const port = parentPort!;
const kernel = workerData.kernel as KernelOptions;
// The thread's accumulators (both halves, created when first needed) and slice buffers live in
// one WebAssembly arena, so that slices are inserted by the WebAssembly kernel (wasmArena.ts).
// Its pages are only reserved until written: memory use is as with separate buffers.
const arena = WasmArena.create(threadArenaBytes(kernel));
// Compiled while the main thread loads the first tilt series (see warmUp.ts).
warmUpParticleKernel(8, arena);
const ws = new KernelWorkspace(kernel, arena);
const halves: (Accumulator | null)[] = [null, null];

function sharedAccumulator(s: number): Accumulator {
  if (arena) return arena.accumulator(s);
  const n = ((s >> 1) + 1) * s * s;
  return {
    data: new Float64Array(new SharedArrayBuffer(16 * n)),
    weight: new Float64Array(new SharedArrayBuffer(8 * n)),
  };
}

port.on('message', (msg: TomogramMessage) => {
  const created: (Accumulator | null)[] = [null, null];
  try {
    if (msg.type === 'tomogram') {
      const tables = buildTomogramTables(kernel, msg.geometry, msg.stack, msg.noise);
      const ranges = [
        [0, msg.split],
        [msg.split, msg.count],
      ];
      let pending = 0;
      let last = Date.now();
      const frames = msg.geometry.frameCount;
      const frameSize = msg.geometry.imageW * msg.geometry.imageH;
      let inPlace = 0;
      for (const h of [msg.home, 1 - msg.home]) {
        const [begin, end] = ranges[h];
        for (;;) {
          const k = begin + Atomics.add(msg.counters, h, 1);
          if (k >= end) break;
          if (!halves[h]) halves[h] = created[h] = sharedAccumulator(kernel.s);
          const offset = msg.order[k] * msg.recordLength;
          if (msg.loaded) {
            // Frame by frame as the stack arrives (processParticle's loop).
            for (let f = 0; f < frames; f++) {
              if (f >= inPlace) inPlace = waitForFrame(msg.loaded, f);
              processParticleFrame(ws, tables, msg.records, offset, f, halves as Accumulator[], msg.stack, f * frameSize);
            }
            if (inPlace >= frames) msg.loaded = null;
          } else processParticle(ws, tables, msg.records, offset, halves as Accumulator[]);
          pending++;
          const now = Date.now();
          if (now - last > 200) {
            port.postMessage({ type: 'progress', particles: pending });
            pending = 0;
            last = now;
          }
        }
      }
      port.postMessage({ type: 'tomogramDone', particles: pending, created });
    }
  } catch (e) {
    // A failed load is reported by the main thread, which read the stack.
    if (e instanceof LoadFailed) port.postMessage({ type: 'tomogramDone', particles: 0, created });
    else port.postMessage({ type: 'error', message: (e as Error).message, tomo: isTomoError(e), stack: (e as Error).stack });
  }
});
