/**
 * Finalisation and output files (numerics.md §8–§9, formats.md §7.4): half1/half2/merged maps,
 * data_* and weight_* terms, *_full maps when cropping. Every file is written under a temporary
 * name and renamed, so an existing map is only ever replaced by a complete one.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { TomoError } from '../errors.js';
import { writeMrc } from '../formats/mrc.js';
import { Accumulator } from '../recon/backproject.js';
import { centreCrop, divideByWeight, griddingCorrect, taper, weightToCentredFull } from '../recon/finalise.js';

export interface FinaliseOptions {
  s: number;
  crop: number;
  taper: number;
  snr: number;
  pixelSize: number;
  outDir: string;
}

/**
 * Reconstructs and writes one tag from its data and weight sums; `acc` is consumed (its data
 * array is reused as work space), so a tag needs only its sums plus one s³ volume.
 */
export function writeTag(tag: string, acc: Accumulator, o: FinaliseOptions): void {
  const { s } = o;
  const out = (name: string): string => path.join(o.outDir, name);
  writeMrc(out(`weight_${tag}.mrc`), weightToCentredFull(acc.weight, s), s, s, s, o.pixelSize);
  const V = griddingCorrect(acc.data, s, true);
  writeMrc(out(`data_${tag}.mrc`), V, s, s, s, o.pixelSize);
  const corrected = divideByWeight(V, acc.weight, s, o.snr, acc.data, V);
  if (o.crop > 0 && o.crop < s) {
    writeMrc(out(`${tag}_full.mrc`), corrected, s, s, s, o.pixelSize);
    const { map, n } = centreCrop(corrected, s, o.crop);
    taper(map, n, o.taper);
    writeMrc(out(`${tag}.mrc`), map, n, n, n, o.pixelSize);
    return;
  }
  taper(corrected, s, o.taper);
  writeMrc(out(`${tag}.mrc`), corrected, s, s, s, o.pixelSize);
}

/**
 * Writes all tags. With half sets the merged sums are half1 + half2, and weight_merged is that
 * sum (RELION writes half 1's weight there, [Q1]; decisions.md fixes it). With threads > 1 the
 * tags are finalised concurrently in worker threads (the buffers are handed over, not copied).
 */
export async function writeOutputs(
  halves: [Accumulator, Accumulator],
  hasHalfSets: boolean,
  o: FinaliseOptions,
  threads: number,
): Promise<void> {
  const jobs: [string, Accumulator][] = [];
  if (hasHalfSets) {
    const merged: Accumulator = { data: halves[0].data.slice(), weight: halves[0].weight.slice() };
    for (let i = 0; i < merged.data.length; i++) merged.data[i] += halves[1].data[i];
    for (let i = 0; i < merged.weight.length; i++) merged.weight[i] += halves[1].weight[i];
    jobs.push(['half1', halves[0]], ['half2', halves[1]], ['merged', merged]);
  } else {
    jobs.push(['merged', halves[0]]);
  }
  if (threads <= 1 || jobs.length === 1) {
    for (const [tag, acc] of jobs) writeTag(tag, acc, o);
    return;
  }
  const queue = [...jobs];
  const runOne = async (): Promise<void> => {
    for (let job = queue.shift(); job; job = queue.shift()) await writeTagInWorker(job[0], job[1], o);
  };
  await Promise.all(Array.from({ length: Math.min(threads, jobs.length) }, runOne));
}

function writeTagInWorker(tag: string, acc: Accumulator, options: FinaliseOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./finaliseWorker.js', import.meta.url), {
      workerData: { tag, data: acc.data, weight: acc.weight, options },
      // Ordinary buffers are handed over; shared ones (from symmetrisation) need no transfer.
      transferList: [acc.data.buffer, acc.weight.buffer].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer),
    });
    w.once('message', (m: { ok: boolean; message?: string; tomo?: boolean; stack?: string }) => {
      if (m.ok) resolve();
      else reject(m.tomo ? new TomoError(m.message!) : Object.assign(new Error(m.message), { stack: m.stack }));
    });
    w.once('error', reject);
    w.once('exit', (code) => {
      if (code !== 0) reject(new Error(`finalisation thread for ${tag} exited with code ${code}`));
    });
  });
}
