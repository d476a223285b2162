/**
 * A whole reconstruct run with the local engine: validate, read inputs, accumulate, finalise,
 * write. Used by the CLI and by tests (threads = 0 runs in the calling thread).
 */
import fs from 'node:fs';
import path from 'node:path';
import { TomoError } from '../errors.js';
import { writeFileAtomic } from '../formats/atomicWrite.js';
import { accumulate, planMemory, zeroHalves } from './local.js';
import { checkpointPath, readCheckpoint, runFingerprint, writeCheckpoint } from './checkpoint.js';
import { ReconstructOptions, validateOptions } from './options.js';
import { planRun } from './plan.js';
import { Progress } from './progress.js';
import { writeOutputs } from './outputs.js';
import { symmetriseHalves } from './symmetry.js';
import { symmetryOps } from '../geometry/symmetry.js';
import { PhaseTimes } from './phases.js';
import { writeRunReport } from '../report/runReport.js';

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
  for (const w of plan.warnings) log(`warning: ${w}`);
  const mem = planMemory(plan, o);
  log(
    `${plan.totalParticles} particles in ${plan.work.length} tomograms, box ${plan.kernel.s} (extraction ${plan.kernel.s0}), ` +
      `${mem.threads || 1} thread(s), estimated peak memory ${(mem.totalBytes / 1024 ** 2).toFixed(0)} MiB`,
  );
  prepareOutputDir(o.o);
  const ckptFile = checkpointPath(o.o);
  const fingerprint = runFingerprint(o, plan);
  let halves = zeroHalves(plan.kernel.s);
  const done = new Set<number>();
  if (o.onlyDoUnfinished) {
    const c = readCheckpoint(ckptFile, plan.kernel.s);
    if (!c) {
      log(`--only_do_unfinished: no checkpoint in ${path.dirname(ckptFile)}, starting from the beginning`);
    } else if (c.fingerprint !== fingerprint) {
      throw new TomoError(
        `--only_do_unfinished: the checkpoint ${ckptFile} was made with other options or input files; ` +
          'run without --only_do_unfinished to start again (it will be replaced)',
      );
    } else {
      halves = c.halves;
      for (const t of c.done) done.add(t);
      log(`resuming: ${done.size} of ${plan.work.length} tomograms already done`);
    }
  }
  const progress = new Progress(plan.totalParticles, 'particles', o.progress ?? 'auto');
  const result = await accumulate(plan, mem.threads, progress, {
    halves,
    done,
    phases,
    // No checkpoint after the last tomogram when the maps follow at once (a crash while writing
    // them redoes one tomogram); with --no_recon the sums are the result, so they are written.
    onTomogramDone: o.noBackup
      ? undefined
      : () => {
          if (o.noRecon || done.size < plan.work.length) writeCheckpoint(ckptFile, { fingerprint, done: [...done], halves });
        },
  });
  progress.finish();
  log(`back-projected ${result.tomogramsProcessed} tomogram(s) in this run`);
  if (!o.noRecon) {
    const ops = symmetryOps(o.sym, o.nrHelicalAsu, o.helicalTwist, o.helicalRise, plan.outputPixelSize);
    if (ops.length > 0) log(`symmetrising with ${ops.length + 1} operators (${o.sym}${o.nrHelicalAsu > 1 ? `, ${o.nrHelicalAsu} helical units` : ''})`);
    const symmetrised = await phases.timeAsync('symmetrisation', () =>
      symmetriseHalves(result.halves, plan.kernel.s, ops, mem.threads > 0 ? o.j : 0, plan.hasHalfSets),
    );
    await phases.timeAsync('finalisation', () => writeOutputs(
      symmetrised,
      plan.hasHalfSets,
      {
      s: plan.kernel.s,
      crop: o.crop,
      taper: o.taper,
      snr: o.snr,
      pixelSize: plan.outputPixelSize,
        outDir: o.o,
      },
      mem.threads > 0 ? mem.finaliseThreads : 0,
    ));
    // The maps are complete; the sums are no longer needed (with --no_recon they are kept to resume).
    fs.rmSync(ckptFile, { force: true });
    const report = phases.time('report', () => writeRunReport(o.o));
    if (report.resolution0143 !== null) log(`half-map FSC 0.143: ${report.resolution0143.toFixed(2)} Å (fsc.json, fsc.star, report.png)`);
  }
  // Written last, so that a run that fails leaves the previous run's note.txt as it was.
  if (!o.pipelineControl) {
    writeFileAtomic(path.join(o.o, 'note.txt'), `Command:\n\n${o.commandLine.map((a) => a + ' ').join('')}\n`);
  }
  log(`time per phase: ${phases}; peak memory (RSS) ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  return {
    phases: phases.toJSON(),
    particles: plan.totalParticles,
    tomograms: plan.work.length,
    threads: mem.threads,
    memoryBytes: mem.totalBytes,
    seconds: (Date.now() - t0) / 1000,
  };
}

function prepareOutputDir(dir: string): void {
  try {
    fs.mkdirSync(path.join(dir, 'temp'), { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    throw new TomoError(`cannot create or write the output directory ${dir}: ${(e as Error).message}`);
  }
}
