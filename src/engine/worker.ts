/**
 * Worker thread of the local engine: owns one accumulator pair (two half sets), claims particles
 * of the current tomogram from a shared counter (dynamic balancing), and hands its sums back at
 * the end by transferring the buffers.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isTomoError } from '../errors.js';
import { createAccumulator } from '../recon/backproject.js';
import { KernelOptions, KernelWorkspace, TomogramGeometry, buildTomogramTables, processParticle } from '../recon/particleKernel.js';

export interface TomogramMessage {
  type: 'tomogram';
  geometry: TomogramGeometry;
  stack: Float32Array;
  noise: Float32Array | null;
  records: Float64Array;
  recordLength: number;
  count: number;
  counter: Int32Array;
}

const port = parentPort!;
const kernel = workerData.kernel as KernelOptions;
const ws = new KernelWorkspace(kernel);
const halves = [createAccumulator(kernel.s), createAccumulator(kernel.s)];

port.on('message', (msg: TomogramMessage | { type: 'finish' }) => {
  try {
    if (msg.type === 'tomogram') {
      const tables = buildTomogramTables(kernel, msg.geometry, msg.stack, msg.noise);
      let pending = 0;
      let last = Date.now();
      for (;;) {
        const k = Atomics.add(msg.counter, 0, 1);
        if (k >= msg.count) break;
        processParticle(ws, tables, msg.records, k * msg.recordLength, halves);
        pending++;
        const now = Date.now();
        if (now - last > 200) {
          port.postMessage({ type: 'progress', particles: pending });
          pending = 0;
          last = now;
        }
      }
      port.postMessage({ type: 'tomogramDone', particles: pending });
    } else if (msg.type === 'finish') {
      const buffers = halves.flatMap((h) => [h.data, h.weight]);
      port.postMessage({ type: 'result', buffers }, buffers.map((b) => b.buffer as ArrayBuffer));
    }
  } catch (e) {
    port.postMessage({ type: 'error', message: (e as Error).message, tomo: isTomoError(e), stack: (e as Error).stack });
  }
});
