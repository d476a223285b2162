/**
 * Exact resume: after each tomogram the running double-precision sums of both half sets and the
 * list of finished tomograms go to <o>/temp/ in one file, written atomically. `--only_do_unfinished`
 * reloads them (no float32 rounding, unlike RELION's checkpoints, [Q18]) if they were made by the
 * same options and inputs; the fingerprint says so.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Accumulator } from '../recon/backproject.js';
import { readSumsFile, writeSumsFile, writeSumsFileDeferred } from './sumsFile.js';
import { ReconstructOptions } from './options.js';
import { RunPlan } from './plan.js';

const MAGIC = 'TRCKPT01';

export interface Checkpoint {
  fingerprint: string;
  done: number[]; // tomogram indices (tomogram-set order) already summed
  halves: [Accumulator, Accumulator];
}

/** A checkpoint as read: its sums only when its fingerprint was the one asked for. */
export interface CheckpointRead {
  fingerprint: string;
  done: number[];
  halves: [Accumulator, Accumulator] | null;
}

export function checkpointPath(outDir: string): string {
  return path.join(outDir, 'temp', 'tomorecon_sums.ckpt');
}

/** What the sums depend on: accumulation options and the identity (size, mtime) of every input file. */
export function runFingerprint(o: ReconstructOptions, plan: RunPlan): string {
  // The tilt-series STAR files too: their per-tilt CTF and geometry go into the sums.
  const files = new Set<string>([...plan.tomograms.files, plan.particles.source]);
  if (plan.trajectories) files.add(plan.trajectories.source);
  for (const w of plan.work) for (const f of w.tomogram.frames) files.add(f.path);
  const stamps = [...files].sort().map((f) => {
    const st = fs.statSync(f);
    return [path.resolve(f), st.size, st.mtimeMs];
  });
  return JSON.stringify({
    b: o.b,
    bin: o.bin,
    noCtf: o.noCtf,
    noCircleCrop: o.noCircleCrop,
    cutoffFract: o.cutoffFract,
    whiten: o.whiten,
    files: stamps,
  });
}

export function writeCheckpoint(file: string, c: Checkpoint): void {
  writeSumsFile(file, MAGIC, { fingerprint: c.fingerprint, done: c.done }, c.halves);
}

/** writeCheckpoint whose fsync and rename happen in libuv's thread pool (the sums are free on return). */
export function writeCheckpointDeferred(file: string, c: Checkpoint): Promise<void> {
  return writeSumsFileDeferred(file, MAGIC, { fingerprint: c.fingerprint, done: c.done }, c.halves);
}

/**
 * Null when there is no checkpoint; a TomoError when the file is damaged. `wasmData`: see
 * readSumsFile. With `fingerprint`, the sums are read only if the checkpoint has it (a checkpoint
 * of other options may be for another box: not an error, not worth reading).
 */
export function readCheckpoint(file: string, s: number, wasmData = false, fingerprint?: string): CheckpointRead | null {
  const r = readSumsFile<{ fingerprint: string; done: number[] }>(file, MAGIC, s, wasmData, fingerprint);
  return r && { fingerprint: r.meta.fingerprint, done: r.meta.done, halves: r.halves };
}
