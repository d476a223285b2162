/**
 * A whole reconstruct run with the local engine: validate, read inputs, accumulate, finalise,
 * write. Used by the CLI and by tests (threads = 0 runs in the calling thread).
 */
import path from 'node:path';
import { TomoError, pipelineAbortFile } from '../errors.js';
import { accumulate, planMemory, zeroHalves } from './local.js';
import { threadArenaBytes } from './threadArena.js';
import { wasmArenaPossible } from '../recon/wasmArena.js';
import { checkpointPath, readCheckpoint, runFingerprint, writeCheckpointDeferred } from './checkpoint.js';
import { finishRun, prepareOutputDir } from './finish.js';
import { FinalisationPool, worthWarmingUp } from './finalisePool.js';
import { ReconstructOptions, optionWarnings, validateOptions } from './options.js';
import { planRun } from './plan.js';
import { Progress } from './progress.js';
import { PhaseTimes } from './phases.js';

export interface RunSummary {
  phases: Record<string, number>;
  particles: number;
  tomograms: number;
  threads: number;
  memoryBytes: number;
  seconds: number;
}

export type Logger = (line: string) => void;

export async function reconstruct(o: ReconstructOptions, log: Logger = () => {}): Promise<RunSummary> {
  const t0 = Date.now();
  validateOptions(o);
  const phases = new PhaseTimes();
  const plan = phases.time('read inputs', () => planRun(o));
  for (const w of [...optionWarnings(o), ...plan.warnings]) log(`warning: ${w}`);
  const mem = planMemory(plan, o);
  log(
    `${plan.totalParticles} particles in ${plan.work.length} tomograms, box ${plan.kernel.s} (extraction ${plan.kernel.s0}), ` +
      `${mem.threads || 1} thread(s), estimated peak memory ${(mem.totalBytes / 1024 ** 2).toFixed(0)} MiB, ` +
      `insertion in ${mem.threads > 0 && wasmArenaPossible(threadArenaBytes(plan.kernel)) ? 'WebAssembly' : 'JavaScript'}`,
  );
  const stale = prepareOutputDir(o.o);
  if (stale > 0) log(`removed ${stale} temporary file(s) that an interrupted run left in ${o.o}`);
  const ckptFile = checkpointPath(o.o);
  const fingerprint = runFingerprint(o, plan);
  // With a finalisation pool, the data sums live where its threads' WebAssembly FFT works in place.
  let halves = zeroHalves(plan.kernel.s, mem.finaliseThreads > 0);
  const done = new Set<number>();
  if (o.onlyDoUnfinished) {
    const c = readCheckpoint(ckptFile, plan.kernel.s, mem.finaliseThreads > 0, fingerprint);
    if (!c) {
      log(`--only_do_unfinished: no checkpoint in ${path.dirname(ckptFile)}, starting from the beginning`);
    } else if (c.fingerprint !== fingerprint) {
      throw new TomoError(
        `--only_do_unfinished: the checkpoint ${ckptFile} was made with other options or input files; ` +
          'run without --only_do_unfinished to start again (it will be replaced)',
      );
    } else {
      halves = c.halves!;
      for (const t of c.done) done.add(t);
      log(`resuming: ${done.size} of ${plan.work.length} tomograms already done`);
    }
  }
  // Started now, so that its threads start up while the tomograms are back-projected.
  // Its kernels may warm up meanwhile (worthWarmingUp).
  const warmUp = worthWarmingUp(plan.kernel.s, done.size < plan.work.length);
  const pool = mem.finaliseThreads > 0 ? new FinalisationPool(mem.finaliseThreads, { warmUp }) : null;
  try {
    const progress = new Progress(plan.totalParticles, 'particles', o.progress ?? 'auto');
    // Checkpoints are written when asked (the sums change with the next tomogram) and made durable
    // (fsync, rename) in libuv's thread pool while the run goes on; each waits for the previous
    // one to be in place, so that they land in order, and a failure fails the run at the next.
    let saving: Promise<void> = Promise.resolve();
    // --checkpoint_interval: a checkpoint only once that much back-projection would be lost (a
    // box-128 set is 49 MiB: writing it took 0.10–0.14 s of a 2.3 s run, twice, for nothing).
    let lastSaved = Date.now();
    const worthSaving = (): boolean => (Date.now() - lastSaved) / 1000 >= o.checkpointInterval;
    const saveSums = async (): Promise<void> => {
      await saving;
      lastSaved = Date.now();
      saving = writeCheckpointDeferred(ckptFile, { fingerprint, done: [...done], halves });
      saving.catch(() => {}); // awaited by the next checkpoint or below
    };
    const result = await accumulate(plan, mem.threads, progress, {
      halves,
      done,
      phases,
      // After the last tomogram the maps follow at once: that checkpoint is written by finishRun,
      // while a thread finalises the merged map. With --no_recon the sums are the result.
      checkpointDue: o.noBackup ? undefined : worthSaving,
      // The RELION pipeliner's abort (its GUI's Abort button), looked for before each tomogram.
      abortRequested: () => {
        const file = pipelineAbortFile(o.pipelineControl);
        return file && `${file} found`;
      },
      onFolded: o.noBackup
        ? undefined
        : async (last) => {
            if (!last || o.noRecon) await saveSums();
          },
    });
    await phases.timeAsync('checkpoints', () => saving);
    progress.finish();
    log(`back-projected ${result.tomogramsProcessed} tomogram(s) in this run`);
    await finishRun(o, plan, result.halves, {
      symmetryThreads: mem.threads > 0 ? o.j : 0,
      pool,
      checkpointFile: ckptFile,
      // A resumed run that had nothing left to back-project has these sums on disk already. The
      // previous checkpoint is in place (awaited above), so this one is written at once, as
      // finishRun needs; its fsync and rename overlap the finalisation.
      saveSums:
        o.noBackup || result.tomogramsProcessed === 0 || !worthSaving() ? undefined : () => writeCheckpointDeferred(ckptFile, { fingerprint, done: [...done], halves }),
      phases,
      log,
    });
  } finally {
    await pool?.close();
  }
  const ru = process.resourceUsage();
  log(
    `time per phase: ${phases}; peak memory (RSS) ${(ru.maxRSS / 1024).toFixed(0)} MiB; CPU ${((ru.userCPUTime + ru.systemCPUTime) / 1e6).toFixed(2)} s (user ${(ru.userCPUTime / 1e6).toFixed(2)}, system ${(ru.systemCPUTime / 1e6).toFixed(2)})`,
  );
  return {
    phases: phases.toJSON(),
    particles: plan.totalParticles,
    tomograms: plan.work.length,
    threads: mem.threads,
    memoryBytes: mem.totalBytes,
    seconds: (Date.now() - t0) / 1000,
  };
}
