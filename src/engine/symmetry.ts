/**
 * Symmetrisation of the accumulated half sets (numerics.md §7), before they are merged and
 * finalised. With threads > 1 the z-slabs of both halves are spread over worker threads that
 * read and write shared memory.
 */
import { Worker } from 'node:worker_threads';
import { SymmetryOp } from '../geometry/symmetry.js';
import { Accumulator } from '../recon/backproject.js';
import { symmetriseDataAndWeight } from '../recon/symmetrise.js';

export async function symmetriseHalves(
  halves: [Accumulator, Accumulator],
  s: number,
  ops: SymmetryOp[],
  threads: number,
  hasHalfSets: boolean,
): Promise<[Accumulator, Accumulator]> {
  if (ops.length === 0) return halves;
  // Without half sets the second accumulator is empty: symmetrising zeros gives zeros.
  const used = hasHalfSets ? [0, 1] : [0];
  if (threads <= 1) {
    const out = halves.slice() as [Accumulator, Accumulator];
    for (const h of used) out[h] = symmetriseDataAndWeight(halves[h].data, halves[h].weight, s, ops);
    return out;
  }
  const share = (a: Float64Array): Float64Array => {
    const b = new Float64Array(new SharedArrayBuffer(a.byteLength));
    b.set(a);
    return b;
  };
  const inputs = halves.map((h) => ({ data: share(h.data), weight: share(h.weight) }));
  const outputs = halves.map((h) => ({
    data: new Float64Array(new SharedArrayBuffer(h.data.byteLength)),
    weight: new Float64Array(new SharedArrayBuffer(h.weight.byteLength)),
  }));
  // Thin slabs dealt round-robin, so that every thread gets a similar share of both halves.
  const jobs: { half: number; z0: number; z1: number }[][] = Array.from({ length: threads }, () => []);
  const slab = Math.max(1, Math.ceil(s / (4 * threads)));
  let k = 0;
  for (const half of used) for (let z0 = 0; z0 < s; z0 += slab) jobs[k++ % threads].push({ half, z0, z1: Math.min(s, z0 + slab) });
  await Promise.all(
    jobs.map(
      (mine) =>
        new Promise<void>((resolve, reject) => {
          const w = new Worker(new URL('./symmetryWorker.js', import.meta.url), { workerData: { s, ops, inputs, outputs, jobs: mine } });
          w.once('message', (m: { ok: boolean; message?: string; stack?: string }) =>
            m.ok ? resolve() : reject(Object.assign(new Error(m.message), { stack: m.stack })),
          );
          w.once('error', reject);
        }),
    ),
  );
  const out = halves.slice() as [Accumulator, Accumulator];
  for (const h of used) out[h] = outputs[h];
  return out;
}
