/**
 * The end of a run, shared by the local engine and the distributed coordinator: symmetrise the
 * summed half sets, write the maps, drop the checkpoint, write the run report and note.txt.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TomoError } from '../errors.js';
import { removeStaleTempFiles, writeFileAtomic } from '../formats/atomicWrite.js';
import { compareSpectra, type FscComparison, type MapSpectrum } from '../analysis/fsc.js';
import { symmetryOps } from '../geometry/symmetry.js';
import { Accumulator } from '../recon/backproject.js';
import { insertionRuns } from '../recon/insertion.js';
import { writeRunReport } from '../report/runReport.js';
import { ReconstructOptions } from './options.js';
import { writeOutputs } from './outputs.js';
import { collectGarbage } from './collectGarbage.js';
import type { FinalisationPool } from './finalisePool.js';
import { PhaseTimes } from './phases.js';
import { RunPlan } from './plan.js';
import { symmetriseHalves } from './symmetry.js';

/**
 * Creates <dir>/temp if needed and checks that dir is writable; removes the temporary files an
 * interrupted run left in both (returns how many).
 */
export function prepareOutputDir(dir: string): number {
  try {
    fs.mkdirSync(path.join(dir, 'temp'), { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    throw new TomoError(`cannot create or write the output directory ${dir}: ${(e as Error).message}`);
  }
  return removeStaleTempFiles(dir) + removeStaleTempFiles(path.join(dir, 'temp'));
}

export interface FinishOptions {
  /** Threads for symmetrisation (0 = the calling thread). */
  symmetryThreads: number;
  /**
   * Threads started at the beginning of the run (a FinalisationPool) that symmetrise and finalise
   * the tags and compute the half-map FSC; null: all of it in the calling thread (and symmetrisation
   * on threads of its own). The caller closes it.
   */
  pool: FinalisationPool | null;
  checkpointFile: string;
  /**
   * Writes the checkpoint of the final sums, called before finalisation consumes them and, with a
   * pool, while a thread finalises the merged map; so that a run that fails while finalising
   * resumes without back-projecting again, at no cost to the run's wall time.
   */
  saveSums?: () => void | Promise<void>;
  phases: PhaseTimes;
  log: (line: string) => void;
}

/** Maps, report and note from the accumulated sums; returns the half-map FSC 0.143 resolution (Å) if any. */
export async function finishRun(
  o: ReconstructOptions,
  plan: RunPlan,
  halves: [Accumulator, Accumulator],
  f: FinishOptions,
): Promise<number | null> {
  let resolution: number | null = null;
  if (!o.noRecon) {
    // What the accumulation left behind (tilt-series buffer, threads' accumulators, a round's
    // incoming sums) is freed before the finalisation allocates.
    collectGarbage();
    const ops = symmetryOps(o.sym, o.nrHelicalAsu, o.helicalTwist, o.helicalRise, plan.outputPixelSize);
    if (ops.length > 0) f.log(`symmetrising with ${ops.length + 1} operators (${o.sym}${o.nrHelicalAsu > 1 ? `, ${o.nrHelicalAsu} helical units` : ''})`);
    const s = plan.kernel.s;
    // The checkpoint holds the sums as accumulated; symmetrisation leaves them as they are. Timed
    // as 'checkpoints' although, with a pool, it overlaps the finalisation of the merged map.
    let saveSums = f.saveSums && ((): void | Promise<void> => f.phases.time('checkpoints', f.saveSums!));
    // With symmetry, written before symmetrising (seconds to minutes for large groups at large
    // boxes), so that a run stopped meanwhile resumes without back-projecting again; its fsync
    // and rename overlap the symmetrisation. Awaited before the checkpoint is removed.
    let saved: Promise<void> | undefined;
    if (saveSums && ops.length > 0) {
      saved = Promise.resolve(saveSums());
      saved.catch(() => {}); // awaited below
      saveSums = undefined;
    }
    // The half-map FSC starts as soon as a half map is written: its spectrum, on a free pool
    // thread, each half map's as it comes (the two halves usually end together, on the two
    // threads); this thread compares them once both are here (they come over, not copied).
    const spectra: { half1?: Promise<MapSpectrum>; half2?: Promise<MapSpectrum> } = {};
    const onWritten = (tag: string): void => {
      const pool = f.pool;
      if (!pool || (tag !== 'half1' && tag !== 'half2')) return;
      const spectrum = pool.spectrum(path.join(o.o, `${tag}.mrc`));
      spectrum.catch(() => {}); // awaited below; must not be unhandled before
      spectra[tag] = spectrum;
    };
    try {
      const symmetrised = await f.phases.timeAsync('symmetrisation', () => symmetriseHalves(halves, s, ops, f.symmetryThreads, plan.hasHalfSets, f.pool));
      if (symmetrised !== halves) collectGarbage(); // the shared copies of the sums
      const finalise = { s, crop: o.crop, taper: o.taper, snr: o.snr, pixelSize: plan.outputPixelSize, outDir: o.o };
      // Sums as accumulated are zero outside the insertion sphere; symmetrised ones may not be.
      const sphere = symmetrised === halves ? insertionRuns(s, 1) : undefined;
      await f.phases.timeAsync('finalisation', () => writeOutputs(symmetrised, plan.hasHalfSets, finalise, f.pool, { saveSums, onWritten, sphere }));
    } catch (e) {
      // The checkpoint written before symmetrising is put in place even so: a resume starts there.
      await saved?.catch(() => {});
      throw e;
    }
    if (saved) await f.phases.timeAsync('checkpoints', () => saved!);
    // The maps are complete; the sums are no longer needed (with --no_recon they are kept to resume).
    fs.rmSync(f.checkpointFile, { force: true });
    const { half1, half2 } = spectra;
    const half: FscComparison | undefined =
      half1 && half2 ? await f.phases.timeAsync('report', async () => compareSpectra(await half1, await half2)) : undefined;
    // Without half sets no half maps were written: any in o.o are an earlier run's.
    resolution = f.phases.time('report', () => writeRunReport(o.o, half, { halfMaps: plan.hasHalfSets })).resolution0143;
    if (resolution !== null) f.log(`half-map FSC 0.143: ${resolution.toFixed(2)} Å (fsc.json, fsc.star, report.png)`);
  }
  // Written last, so that a run that fails leaves the previous run's note.txt as it was.
  if (!o.pipelineControl) {
    writeFileAtomic(path.join(o.o, 'note.txt'), `Command:\n\n${o.commandLine.map((a) => a + ' ').join('')}\n`);
  }
  return resolution;
}
