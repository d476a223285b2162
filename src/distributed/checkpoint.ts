/**
 * The coordinator's checkpoint: the committed double-precision sums of both half sets and the
 * ids of the committed chunks (with the worker and round that committed each), guarded by a
 * fingerprint of the options, the inputs and the chunk plan. Written after every commit round
 * to <o>/temp/ in the format of src/engine/sumsFile.ts (atomically, straight from the arrays, so
 * the coordinator's memory cap holds while writing).
 */
import path from 'node:path';
import { Accumulator } from '../recon/backproject.js';
import { readSumsFile, writeSumsFile, writeSumsFileDeferred } from '../engine/sumsFile.js';
import { CommittedRecord } from './ledger.js';

const MAGIC = 'TRDIST01';

export interface DistributedCheckpointMeta {
  fingerprint: string;
  chunkCount: number;
  committed: CommittedRecord[];
  /** Commit rounds so far over all coordinator processes of this run. */
  rounds: number;
  /** Coordinator processes (epochs) that worked on this output, oldest first. */
  epochs: { epoch: string; started: string }[];
  /** Commit rounds (committed and aborted) of every epoch, for the run report. */
  roundLog: unknown[];
}

export interface DistributedCheckpoint {
  meta: DistributedCheckpointMeta;
  /** Null when the fingerprint asked for is not the checkpoint's (its sums are then not read). */
  halves: [Accumulator, Accumulator] | null;
}

export function distributedCheckpointPath(outDir: string): string {
  return path.join(outDir, 'temp', 'tomorecon_distributed.ckpt');
}

export function writeDistributedCheckpoint(file: string, meta: DistributedCheckpointMeta, halves: [Accumulator, Accumulator]): void {
  writeSumsFile(file, MAGIC, meta, halves);
}

/** As writeDistributedCheckpoint, with the fsync and rename left to libuv's thread pool (see writeSumsFileDeferred). */
export function writeDistributedCheckpointDeferred(file: string, meta: DistributedCheckpointMeta, halves: [Accumulator, Accumulator]): Promise<void> {
  return writeSumsFileDeferred(file, MAGIC, meta, halves);
}

/**
 * Null when there is none; a TomoError when it is damaged or made for another box size. With
 * `fingerprint`, the sums are read only if the checkpoint has it (one of other options, maybe of
 * another box, is to be replaced, not read).
 */
export function readDistributedCheckpoint(file: string, s: number, wasmData = false, fingerprint?: string): DistributedCheckpoint | null {
  return readSumsFile<DistributedCheckpointMeta>(file, MAGIC, s, wasmData, fingerprint);
}
