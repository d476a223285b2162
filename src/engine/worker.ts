/**
 * Worker thread of the local engine: claims particles of the current tomogram from a shared
 * counter (dynamic balancing), sums them into its own accumulator pair (two half sets), and hands
 * the sums back when the tomogram is done by transferring the buffers.
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

export type WorkerReply =
  | { type: 'progress'; particles: number }
  | { type: 'tomogramDone'; particles: number; buffers: Float64Array[] }
  | { type: 'error'; message: string; tomo: boolean; stack?: string };

const port = parentPort!;
const kernel = workerData.kernel as KernelOptions;
const ws = new KernelWorkspace(kernel);

port.on('message', (msg: TomogramMessage) => {
  try {
    if (msg.type === 'tomogram') {
      const halves = [createAccumulator(kernel.s), createAccumulator(kernel.s)];
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
      // Hand this tomogram's sums over (transferred, not copied) so they can be checkpointed.
      const buffers = halves.flatMap((h) => [h.data, h.weight]);
      port.postMessage({ type: 'tomogramDone', particles: pending, buffers }, buffers.map((b) => b.buffer as ArrayBuffer));
    }
  } catch (e) {
    port.postMessage({ type: 'error', message: (e as Error).message, tomo: isTomoError(e), stack: (e as Error).stack });
  }
});
