/**
 * Finalisation and output files (numerics.md §8–§9, formats.md §7.4): half1/half2/merged maps,
 * data_* and weight_* terms, *_full maps when cropping. Every file is written under a temporary
 * name and renamed, so an existing map is only ever replaced by a complete one.
 */
import path from 'node:path';
import { writeMrc } from '../formats/mrc.js';
import { Accumulator } from '../recon/backproject.js';
import { FinalisationPool, transferables } from './finalisePool.js';
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
 * The float32 buffer of the files being written (and of the maps a pool thread reads back for the
 * FSC), kept per thread: no garbage between tags.
 */
let fileBuffer = new Float32Array(0);
export function fileBufferFor(n: number): Float32Array {
  if (fileBuffer.length < n) fileBuffer = new Float32Array(n);
  return fileBuffer.subarray(0, n);
}

/**
 * Reconstructs and writes one tag from its data and weight sums; `acc` is consumed: every step
 * runs in place in its data array (which holds 2·(s/2+1)·s² ≥ s³ doubles), so a tag needs only its
 * sums plus one float32 volume (the weight map, then each file's float32 values).
 */
export function writeTag(
  tag: string,
  acc: Accumulator,
  o: FinaliseOptions,
  write: (...args: Parameters<typeof writeMrc>) => void = writeMrc,
): void {
  const { s } = o;
  const out = (name: string): string => path.join(o.outDir, name);
  const f32 = fileBufferFor(s * s * s);
  write(out(`weight_${tag}.mrc`), weightToCentredFull(acc.weight, s, f32), s, s, s, o.pixelSize);
  const V = griddingCorrect(acc.data, s, true);
  write(out(`data_${tag}.mrc`), V, s, s, s, o.pixelSize, f32);
  const corrected = divideByWeight(V, acc.weight, s, o.snr, acc.data, V);
  if (o.crop > 0 && o.crop < s) {
    write(out(`${tag}_full.mrc`), corrected, s, s, s, o.pixelSize, f32);
    const { map, n } = centreCrop(corrected, s, o.crop, corrected);
    taper(map, n, o.taper);
    write(out(`${tag}.mrc`), map, n, n, n, o.pixelSize, f32);
    return;
  }
  taper(corrected, s, o.taper);
  write(out(`${tag}.mrc`), corrected, s, s, s, o.pixelSize, f32);
}

export interface WriteOutputsOptions {
  /**
   * Writes the checkpoint of the summed halves (not symmetrised, as accumulated) before they are
   * consumed (half1's and half2's finalisation uses their sums as work space). With a pool it runs
   * while a thread finalises the merged map, off the critical path.
   */
  saveSums?: () => void;
  /** Called as each tag's files are all written (e.g. to start the FSC of the half maps). */
  onWritten?: (tag: string) => void;
}

/**
 * Writes all tags. With half sets the merged sums are half1 + half2, and weight_merged is that
 * sum (RELION writes half 1's weight there, [Q1]; decisions.md fixes it). With a pool the tags are
 * finalised concurrently on its threads (the buffers are handed over, not copied), merged first:
 * it is the only tag that does not consume the sums, so the checkpoint can be written meanwhile.
 * Returns once every job has finished, even when one failed (no thread is then still writing).
 */
export async function writeOutputs(
  halves: [Accumulator, Accumulator],
  hasHalfSets: boolean,
  o: FinaliseOptions,
  pool: FinalisationPool | null,
  w: WriteOutputsOptions = {},
): Promise<void> {
  const merged = hasHalfSets ? mergedSums(halves) : halves[0];
  const jobs: [string, Accumulator][] = hasHalfSets ? [['half1', halves[0]], ['half2', halves[1]]] : [];
  if (!pool) {
    w.saveSums?.();
    for (const [tag, acc] of [['merged', merged] as [string, Accumulator], ...jobs]) {
      writeTag(tag, acc, o);
      w.onWritten?.(tag);
    }
    return;
  }
  const run = (tag: string, acc: Accumulator): Promise<void> =>
    pool.run({ type: 'tag', tag, data: acc.data, weight: acc.weight, options: o }, transferables(acc.data, acc.weight)).then(() => w.onWritten?.(tag));
  const tasks: Promise<void>[] = [];
  if (hasHalfSets) tasks.push(run('merged', merged));
  try {
    w.saveSums?.();
    if (!hasHalfSets) tasks.push(run('merged', merged));
    for (const [tag, acc] of jobs) tasks.push(run(tag, acc));
  } finally {
    const failed = (await Promise.allSettled(tasks)).find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
}

/** half1 + half2 in new arrays (the halves stay as they are). */
function mergedSums(halves: [Accumulator, Accumulator]): Accumulator {
  const [a, b] = halves;
  const data = new Float64Array(a.data.length);
  const weight = new Float64Array(a.weight.length);
  for (let i = 0; i < data.length; i++) data[i] = a.data[i] + b.data[i];
  for (let i = 0; i < weight.length; i++) weight[i] = a.weight[i] + b.weight[i];
  return { data, weight };
}
