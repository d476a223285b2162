/**
 * A fresh thread for symmetrisation (when the finalisation pool has fewer threads than would be
 * used): computes its z-slabs of both half sets over shared memory.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runSymmetryWork, type SymmetryWork } from './symmetry.js';

try {
  runSymmetryWork(workerData as SymmetryWork);
  parentPort!.postMessage({ ok: true });
} catch (e) {
  parentPort!.postMessage({ ok: false, message: (e as Error).message, stack: (e as Error).stack });
}
