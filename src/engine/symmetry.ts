/**
 * Symmetrisation of the accumulated half sets (numerics.md §7), before they are merged and
 * finalised. With threads > 1 the z-slabs of both halves are spread over threads that read and
 * write shared memory: the finalisation pool's, already running, when it has as many threads as
 * would be used (min(--j, cores)); otherwise fresh ones.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { SymmetryOp } from '../geometry/symmetry.js';
import { Accumulator } from '../recon/backproject.js';
import { symmetriseDataAndWeight, symmetriseSlab } from '../recon/symmetrise.js';
import type { FinalisationPool } from './finalisePool.js';
import { wasmVolume } from '../recon/wasmVolume.js';

/** One thread's share of a symmetrisation: z-slabs [z0, z1) of half `half`, shared inputs and outputs. */
export interface SymmetryWork {
  s: number;
  ops: SymmetryOp[];
  inputs: { data: Float64Array; weight: Float64Array }[];
  outputs: { data: Float64Array; weight: Float64Array }[];
  jobs: { half: number; z0: number; z1: number }[];
}

export function runSymmetryWork(w: SymmetryWork): void {
  for (const j of w.jobs) {
    symmetriseSlab(w.inputs[j.half].data, w.inputs[j.half].weight, w.s, w.ops, w.outputs[j.half].data, w.outputs[j.half].weight, j.z0, j.z1);
  }
}

export async function symmetriseHalves(
  halves: [Accumulator, Accumulator],
  s: number,
  ops: SymmetryOp[],
  threads: number,
  hasHalfSets: boolean,
  pool: FinalisationPool | null = null,
): Promise<[Accumulator, Accumulator]> {
  if (ops.length === 0) return halves;
  // Without half sets the second accumulator is empty: symmetrising zeros gives zeros.
  const used = hasHalfSets ? [0, 1] : [0];
  if (threads <= 1) {
    const out = halves.slice() as [Accumulator, Accumulator];
    // With a pool, the data where its threads transform them in place (wasmVolume.ts).
    for (const h of used) out[h] = symmetriseDataAndWeight(halves[h].data, halves[h].weight, s, ops, (pool && wasmVolume(s)) || undefined);
    return out;
  }
  const onPool = pool !== null && pool.size >= Math.min(threads, os.availableParallelism());
  if (onPool) threads = pool.size;
  const share = (a: Float64Array): Float64Array => {
    if (a.buffer instanceof SharedArrayBuffer) return a;
    const b = new Float64Array(new SharedArrayBuffer(a.byteLength));
    b.set(a);
    return b;
  };
  const inputs = halves.map((h) => ({ data: share(h.data), weight: share(h.weight) }));
  // The data in WebAssembly memories of their own (shared too), which the finalisation threads
  // then transform in place (wasmVolume.ts).
  const outputs = halves.map((h) => ({
    data: wasmVolume(s) ?? new Float64Array(new SharedArrayBuffer(h.data.byteLength)),
    weight: new Float64Array(new SharedArrayBuffer(h.weight.byteLength)),
  }));
  // Thin slabs dealt round-robin, so that every thread gets a similar share of both halves.
  const jobs: SymmetryWork['jobs'][] = Array.from({ length: threads }, () => []);
  const slab = Math.max(1, Math.ceil(s / (4 * threads)));
  let k = 0;
  for (const half of used) for (let z0 = 0; z0 < s; z0 += slab) jobs[k++ % threads].push({ half, z0, z1: Math.min(s, z0 + slab) });
  const work = jobs.map((mine): SymmetryWork => ({ s, ops, inputs, outputs, jobs: mine }));
  await Promise.all(work.map((w) => (onPool ? pool.run({ type: 'symmetrise', work: w }).then(() => {}) : symmetriseInThread(w))));
  const out = halves.slice() as [Accumulator, Accumulator];
  for (const h of used) out[h] = outputs[h];
  return out;
}

function symmetriseInThread(work: SymmetryWork): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const w = new Worker(new URL('./symmetryWorker.js', import.meta.url), { workerData: work });
    w.once('message', (m: { ok: boolean; message?: string; stack?: string }) =>
      m.ok ? resolve() : reject(Object.assign(new Error(m.message), { stack: m.stack })),
    );
    w.once('error', reject);
  });
}
