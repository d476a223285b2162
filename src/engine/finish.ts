/**
 * The end of a run, shared by the local engine and the distributed coordinator: symmetrise the
 * summed half sets, write the maps, drop the checkpoint, write the run report and note.txt.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TomoError } from '../errors.js';
import { writeFileAtomic } from '../formats/atomicWrite.js';
import { symmetryOps } from '../geometry/symmetry.js';
import { Accumulator } from '../recon/backproject.js';
import { writeRunReport } from '../report/runReport.js';
import { ReconstructOptions } from './options.js';
import { writeOutputs } from './outputs.js';
import { PhaseTimes } from './phases.js';
import { RunPlan } from './plan.js';
import { symmetriseHalves } from './symmetry.js';

export function prepareOutputDir(dir: string): void {
  try {
    fs.mkdirSync(path.join(dir, 'temp'), { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    throw new TomoError(`cannot create or write the output directory ${dir}: ${(e as Error).message}`);
  }
}

export interface FinishOptions {
  /** Threads for symmetrisation (0 = the calling thread) and tags finalised at once. */
  symmetryThreads: number;
  finaliseThreads: number;
  checkpointFile: string;
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
    const ops = symmetryOps(o.sym, o.nrHelicalAsu, o.helicalTwist, o.helicalRise, plan.outputPixelSize);
    if (ops.length > 0) f.log(`symmetrising with ${ops.length + 1} operators (${o.sym}${o.nrHelicalAsu > 1 ? `, ${o.nrHelicalAsu} helical units` : ''})`);
    const s = plan.kernel.s;
    const symmetrised = await f.phases.timeAsync('symmetrisation', () => symmetriseHalves(halves, s, ops, f.symmetryThreads, plan.hasHalfSets));
    const finalise = { s, crop: o.crop, taper: o.taper, snr: o.snr, pixelSize: plan.outputPixelSize, outDir: o.o };
    await f.phases.timeAsync('finalisation', () => writeOutputs(symmetrised, plan.hasHalfSets, finalise, f.finaliseThreads));
    // The maps are complete; the sums are no longer needed (with --no_recon they are kept to resume).
    fs.rmSync(f.checkpointFile, { force: true });
    resolution = f.phases.time('report', () => writeRunReport(o.o)).resolution0143;
    if (resolution !== null) f.log(`half-map FSC 0.143: ${resolution.toFixed(2)} Å (fsc.json, fsc.star, report.png)`);
  }
  // Written last, so that a run that fails leaves the previous run's note.txt as it was.
  if (!o.pipelineControl) {
    writeFileAtomic(path.join(o.o, 'note.txt'), `Command:\n\n${o.commandLine.map((a) => a + ' ').join('')}\n`);
  }
  return resolution;
}
