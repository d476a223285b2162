/**
 * Memory plans of the distributed processes. A worker's --mem covers, per compute thread, its
 * accumulators and the scratch volume set of a chunk awaiting its verdict, kernel scratch,
 * per-tomogram tables and tilt-image frames (one scratch frame plus a cache), and the reduction
 * buffers; Node's own baseline is not included (docs/distributed.md gives the measured figure).
 * The coordinator's cap (reconstruct's --mem) covers the committed sums, the sums of a round
 * being received, and the finalisation.
 */
import { TomoError } from '../errors.js';
import { accumulatorBytes } from '../recon/backproject.js';
import { finalisationBytes, finalisationIdleBytes, finalisationThreads } from '../engine/local.js';
import { KernelWorkspace } from '../recon/particleKernel.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** Segments a node may hold during a reduction: W unacknowledged sent ones, W per child, the sum and one received copy. */
export function reductionBytes(segmentDoubles: number, window: number): number {
  return (3 * window + 2) * segmentDoubles * 8;
}

export interface WorkerShape {
  s: number;
  s0: number;
  halves: number; // 1 or 2 accumulator pairs
  whiten: boolean;
  maxFrames: number;
  maxFramePixels: number;
  maxChunkRecordDoubles: number;
  segmentDoubles: number;
  window: number;
  /** Optics groups with even aberrations (evenAberrationTables); none if absent. */
  evenTables?: number;
}

export interface WorkerMemoryPlan {
  lanes: number;
  /** Frames each compute thread may keep cached (besides its scratch frame). */
  cacheFramesPerLane: number;
  perLaneBytes: number;
  reductionBytes: number;
  frameBytes: number;
  totalBytes: number;
}

export function planWorkerMemory(shape: WorkerShape, memGB: number, threads: number): WorkerMemoryPlan {
  const { s, s0 } = shape;
  const sh = (s >> 1) + 1;
  const frameBytes = shape.maxFramePixels * 4;
  const tables = shape.maxFrames * (sh * s * 4 + s * 4) * (shape.whiten ? 2 : 1);
  // Two volume sets per compute thread: the accumulators and the scratch set a held chunk is
  // back-projected into and kept in until the coordinator counts (folds in) or drops it.
  const perLaneBytes =
    2 * shape.halves * accumulatorBytes(s) + KernelWorkspace.bytes(s, s0, shape.evenTables ?? 0) + tables + shape.maxChunkRecordDoubles * 8 + frameBytes;
  const red = reductionBytes(shape.segmentDoubles, shape.window);
  let lanes = threads;
  let cache = shape.maxFrames;
  if (memGB > 0) {
    const budget = memGB * GiB;
    const minimum = perLaneBytes + red;
    if (budget < minimum) {
      throw new TomoError(
        `--mem ${memGB} GB cannot hold one accumulator set for --b ${s} (${(shape.halves * accumulatorBytes(s) / MiB).toFixed(1)} MiB, ` +
          `and as much for the chunk awaiting its verdict) with one ${(frameBytes / MiB).toFixed(1)} MiB tilt image and the reduction buffers: ` +
          `at least ${(minimum / GiB).toFixed(3)} GB is needed`,
      );
    }
    lanes = Math.max(1, Math.min(threads, Math.floor((budget - red) / perLaneBytes)));
    cache = Math.min(shape.maxFrames, Math.floor((budget - red - lanes * perLaneBytes) / lanes / frameBytes));
  }
  return {
    lanes,
    cacheFramesPerLane: cache,
    perLaneBytes,
    reductionBytes: red,
    frameBytes,
    totalBytes: lanes * (perLaneBytes + cache * frameBytes) + red,
  };
}

export interface CoordinatorMemoryPlan {
  finaliseThreads: number;
  totalBytes: number;
}

/**
 * The coordinator holds the committed sums and the sums of the round being received (two
 * volume sets), then finalises as the local engine does (finalisationBytes), with a finalisation
 * pool whose idle isolates are there from the start. `fixedBytes`: what it holds throughout, the
 * Node runtime and the run's plan (local.ts RUNTIME_BYTES + planBytes).
 */
export function planCoordinatorMemory(
  s: number,
  hasHalfSets: boolean,
  symmetric: boolean,
  memGB: number,
  j: number,
  segmentDoubles: number,
  window: number,
  fixedBytes = 0,
): CoordinatorMemoryPlan {
  const acc = accumulatorBytes(s);
  const budget = memGB > 0 ? memGB * GiB : 0;
  const reduce = fixedBytes + 2 * 2 * acc + reductionBytes(segmentDoubles, window);
  const symmetry = symmetric ? fixedBytes + 6 * acc : 0;
  if (budget > 0) {
    const minimum = Math.max(reduce, fixedBytes + finalisationBytes(s, hasHalfSets, 0), symmetry);
    if (budget < minimum) {
      throw new TomoError(
        `--mem ${memGB} GB cannot hold the coordinator's sums for --b ${s} (committed and incoming, then finalisation): at least ${(minimum / GiB).toFixed(3)} GB is needed`,
      );
    }
  }
  // The pool's idle isolates are there while the rounds are received and during symmetrisation;
  // a budget that holds none finalises in the main thread.
  let finaliseThreads = finalisationThreads(s, hasHalfSets, j, budget > 0 ? budget - fixedBytes : 0);
  if (budget > 0) finaliseThreads = Math.min(finaliseThreads, Math.floor((budget - Math.max(reduce, symmetry)) / finalisationIdleBytes(1)));
  const idle = finalisationIdleBytes(finaliseThreads);
  const finalise = fixedBytes + finalisationBytes(s, hasHalfSets, finaliseThreads);
  return { finaliseThreads, totalBytes: Math.max(reduce + idle, finalise, symmetric ? symmetry + idle : 0) };
}
