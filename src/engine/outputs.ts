/**
 * Finalisation and output files (numerics.md §8–§9, formats.md §7.4): half1/half2/merged maps,
 * data_* and weight_* terms, *_full maps when cropping. Every file is written under a temporary
 * name and renamed, so an existing map is only ever replaced by a complete one.
 */
import path from 'node:path';
import { writeMrc } from '../formats/mrc.js';
import { Accumulator } from '../recon/backproject.js';
import type { LayoutRuns } from '../recon/insertion.js';
import { wasmVolume } from '../recon/wasmVolume.js';
import type { FinalisationPool } from './finalisePool.js';
import { collectGarbageAfter } from './collectGarbage.js';
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

type WriteMrc = (...args: Parameters<typeof writeMrc>) => void;

/** weight_<tag>.mrc: the weight in RELION's centred full layout (weight not modified). */
export function writeWeightFile(tag: string, weight: Float64Array, o: FinaliseOptions, write: WriteMrc = writeMrc): void {
  const { s } = o;
  write(path.join(o.outDir, `weight_${tag}.mrc`), weightToCentredFull(weight, s, fileBufferFor(s * s * s)), s, s, s, o.pixelSize);
}

/**
 * data_<tag>.mrc, <tag>.mrc (and <tag>_full.mrc when cropping) from the tag's sums; the data sums
 * are consumed: every step runs in place in their array (which holds 2·(s/2+1)·s² ≥ s³ doubles),
 * so a tag needs only its sums plus one float32 volume (each file's float32 values). The weight is
 * only read.
 */
export function writeMaps(tag: string, acc: Accumulator, o: FinaliseOptions, write: WriteMrc = writeMrc): void {
  const { s } = o;
  const out = (name: string): string => path.join(o.outDir, name);
  const f32 = fileBufferFor(s * s * s);
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

/** Every file of one tag; `acc.data` is consumed (writeMaps). */
export function writeTag(tag: string, acc: Accumulator, o: FinaliseOptions, write: WriteMrc = writeMrc): void {
  writeWeightFile(tag, acc.weight, o, write);
  writeMaps(tag, acc, o, write);
}

export interface WriteOutputsOptions {
  /**
   * Writes the checkpoint of the summed halves (not symmetrised, as accumulated) before they are
   * consumed (half1's and half2's finalisation uses their sums as work space). With a pool it runs
   * while a thread finalises the merged map, off the critical path. It may leave the fsync and
   * rename to a promise: the sums must be written when it returns; writeOutputs waits for the rest.
   */
  saveSums?: () => void | Promise<void>;
  /** Called as each tag's files are all written (e.g. to start the FSC of the half maps). */
  onWritten?: (tag: string) => void;
  /**
   * The halves are zero outside these pieces (insertionRuns for one half: sums as accumulated,
   * not symmetrised): the merged sums are added there only (mergedSums).
   */
  sphere?: LayoutRuns;
}

const isShared = (a: Float64Array): boolean => a.buffer instanceof SharedArrayBuffer;

/**
 * Writes all tags. With half sets the merged sums are half1 + half2, and weight_merged is that
 * sum (RELION writes half 1's weight there, [Q1]; decisions.md fixes it).
 *
 * With a pool each tag is two jobs, its weight file and its maps (the long one), so that two
 * threads share three tags evenly: one makes the merged maps while the other writes the weight
 * files, then each makes the maps of a half set. Buffers are handed over, not copied: the merged
 * weight is made in shared memory, which both of its jobs read; an ordinary half-set weight goes
 * to its weight job and comes back for the maps. Merged comes first: it is the only tag that does
 * not consume the sums, so the checkpoint is written meanwhile. Returns once every job has
 * finished, even when one failed (no thread is then still writing).
 */
export async function writeOutputs(
  halves: [Accumulator, Accumulator],
  hasHalfSets: boolean,
  o: FinaliseOptions,
  pool: FinalisationPool | null,
  w: WriteOutputsOptions = {},
): Promise<void> {
  const merged = hasHalfSets ? mergedSums(halves, pool !== null, w.sphere, pool !== null ? o.s : 0) : halves[0];
  const tags: [string, Accumulator][] = hasHalfSets ? [['half1', halves[0]], ['half2', halves[1]]] : [];
  if (!pool) {
    await w.saveSums?.();
    for (const [tag, acc] of [['merged', merged] as [string, Accumulator], ...tags]) {
      writeTag(tag, acc, o);
      w.onWritten?.(tag);
    }
    return;
  }
  const tasks: Promise<unknown>[] = [];
  // The data sums go to their maps job for good: an ordinary buffer is transferred (the caller's
  // array is then detached, empty), and one in shared memory (wasmVolume.ts) is dropped from the
  // caller's accumulator the same way, so that it is freed when its job is done rather than when
  // the caller lets go of its sums (at box 256, 136 MiB per tag).
  const handOver = (tag: string, acc: Accumulator, weight: Float64Array): Promise<unknown> => {
    const data = acc.data;
    acc.data = new Float64Array(0);
    const job = pool.maps(tag, { data, weight }, o);
    const bytes = data.buffer instanceof SharedArrayBuffer ? data.byteLength : 0;
    return bytes > 0 ? job.finally(() => collectGarbageAfter(bytes)) : job;
  };
  const finalise = (tag: string, acc: Accumulator): void => {
    const weightJob = pool.weight(tag, acc.weight, o);
    // A shared weight is read by both jobs at once; an ordinary one comes back from the first.
    const maps = isShared(acc.weight) ? handOver(tag, acc, acc.weight) : weightJob.then((weight) => handOver(tag, acc, weight));
    const written = Promise.all([weightJob, maps]).then(() => w.onWritten?.(tag));
    tasks.push(weightJob, maps, written);
  };
  if (hasHalfSets) finalise('merged', merged);
  try {
    const saved = w.saveSums?.();
    if (saved) tasks.push(saved);
    if (!hasHalfSets) finalise('merged', merged);
    for (const [tag, acc] of tags) finalise(tag, acc);
  } finally {
    const failed = (await Promise.allSettled(tasks)).find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
}

/**
 * half1 + half2 in new arrays (the halves stay as they are); the weight in shared memory if asked,
 * the data in a WebAssembly memory for box `wasmBox` if given (and possible).
 * With `sphere` (the halves are zero elsewhere) only its pieces are added: the rest of the new
 * arrays is zero already and is not even paged in here. The main thread does this while the
 * finalisation threads wait for the merged tag: 20–46 ms at box 128 over whole arrays.
 */
export function mergedSums(halves: [Accumulator, Accumulator], sharedWeight: boolean, sphere?: LayoutRuns, wasmBox = 0): Accumulator {
  const [a, b] = halves;
  const n = a.weight.length;
  // For a finalisation pool (wasmBox: the box), in a WebAssembly memory its FFT works in (wasmVolume.ts).
  const data = (wasmBox > 0 ? wasmVolume(wasmBox) : null) ?? new Float64Array(a.data.length);
  const weight = new Float64Array(sharedWeight ? new SharedArrayBuffer(8 * n) : new ArrayBuffer(8 * n));
  if (sphere) {
    for (let r = 0; r < sphere.count; r++) {
      const isData = sphere.a[r] === 0;
      const m = isData ? data : weight;
      const x = isData ? a.data : a.weight;
      const y = isData ? b.data : b.weight;
      const to = sphere.from[r] + sphere.len[r];
      for (let i = sphere.from[r]; i < to; i++) m[i] = x[i] + y[i];
    }
    return { data, weight };
  }
  for (let i = 0; i < data.length; i++) data[i] = a.data[i] + b.data[i];
  for (let i = 0; i < n; i++) weight[i] = a.weight[i] + b.weight[i];
  return { data, weight };
}
