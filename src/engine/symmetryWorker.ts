/**
 * Worker thread for symmetrisation: computes its z-slabs of both half sets over shared memory.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SymmetryOp } from '../geometry/symmetry.js';
import { symmetriseSlab } from '../recon/symmetrise.js';

interface Job {
  half: number;
  z0: number;
  z1: number;
}
const { s, ops, inputs, outputs, jobs } = workerData as {
  s: number;
  ops: SymmetryOp[];
  inputs: { data: Float64Array; weight: Float64Array }[];
  outputs: { data: Float64Array; weight: Float64Array }[];
  jobs: Job[];
};
try {
  for (const j of jobs) {
    symmetriseSlab(inputs[j.half].data, inputs[j.half].weight, s, ops, outputs[j.half].data, outputs[j.half].weight, j.z0, j.z1);
  }
  parentPort!.postMessage({ ok: true });
} catch (e) {
  parentPort!.postMessage({ ok: false, message: (e as Error).message, stack: (e as Error).stack });
}
