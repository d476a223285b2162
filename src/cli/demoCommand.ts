/**
 * `tomorecon demo [--keep DIR]`: simulates a small dataset with a known answer, reconstructs it
 * with the local engine and reports how close the result is to the ground truth. A self-check
 * and a quick illustration of the whole pipeline (about 10 s on 2 cores).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { DEFAULTS } from '../engine/options.js';
import { reconstruct } from '../engine/reconstruct.js';
import { TomoError } from '../errors.js';
import { simulateDataset } from '../simulate/dataset.js';
import { SIM_DEFAULTS, SimulationParams } from '../simulate/params.js';
import type { CommandModule } from './commands.js';
import { compareMapFiles, formatResolution } from './fscCommand.js';
import { numberFlag, stringFlag } from './flags.js';

/** The demo dataset: like the conformance set V1 (box 48, 2 Å/px, ±60° in 4° steps, SNR 0.8), two tomograms with motion. */
export function demoParams(seed: number): SimulationParams {
  return { ...SIM_DEFAULTS, seed, tomos: 2, particles: 24, motion: true };
}

export const demoCommand: CommandModule = {
  name: 'demo',
  describe: 'Simulate a small dataset, reconstruct it and compare the map with the ground truth',
  builder: (y: Argv) =>
    y
      .option('keep', { type: 'string', describe: 'Simulate into this folder and keep it (default: a temporary folder, removed afterwards)' })
      .option('seed', { type: 'string', describe: 'Random seed of the simulated dataset; default 7' })
      .strict(),
  handler: async (args: ArgumentsCamelCase) => {
    const keep = stringFlag(args, 'keep', '');
    if (args.keep !== undefined && keep === '') throw new TomoError('--keep needs a folder name');
    const seed = numberFlag(args, 'seed', 7);
    const dir = keep ? path.resolve(keep) : fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-demo-'));
    const out = (line: string): boolean => process.stdout.write(`${line}\n`);
    const cwd = process.cwd();
    const t0 = Date.now();
    try {
      const p = demoParams(seed);
      const sim = simulateDataset(p, dir);
      out(
        `simulated ${sim.particles} particles (box ${p.box}, ${p.pixel} Å/px) in ${sim.tomograms} tomograms × ${sim.frames} tilts, ` +
          `SNR ${p.snr}, with motion, in ${sim.seconds.toFixed(1)} s: ${dir}`,
      );
      const commandLine = ['tomorecon', 'reconstruct', '--i', 'optimisation_set.star', '--b', String(p.box), '--o', 'recon'];
      out(`running (in ${dir}): ${commandLine.join(' ')}`);
      // STAR files name their files relative to the working directory, as in RELION.
      process.chdir(dir);
      const run = await reconstruct({ ...DEFAULTS, i: 'optimisation_set.star', b: p.box, o: 'recon', commandLine, progress: 'none' });
      out(`reconstruction: ${run.particles} particles, ${run.threads || 1} thread(s), ${run.seconds.toFixed(1)} s`);
      const truth = compareMapFiles(path.join(dir, 'recon', 'merged.mrc'), path.join(dir, 'ground_truth.mrc'));
      const halves = compareMapFiles(path.join(dir, 'recon', 'half1.mrc'), path.join(dir, 'recon', 'half2.mrc'));
      out('merged map vs ground truth:');
      out(`  ${formatResolution('FSC 0.5', truth.fsc05, truth.fsc05AtNyquist, 0.5)}`);
      out(`  ${formatResolution('FSC 0.143', truth.fsc0143, truth.fsc0143AtNyquist, 0.143)}`);
      out(`  Pearson r: ${truth.pearson.toFixed(4)}`);
      out('half1 vs half2 (gold standard):');
      out(`  ${formatResolution('half-map FSC 0.143', halves.fsc0143, halves.fsc0143AtNyquist, 0.143)}`);
      out(`Nyquist is ${(2 * p.pixel).toFixed(2)} Å; demo finished in ${((Date.now() - t0) / 1000).toFixed(1)} s.`);
      if (keep) out(`dataset and maps kept in ${dir}`);
    } finally {
      process.chdir(cwd);
      if (!keep) fs.rmSync(dir, { recursive: true, force: true });
    }
  },
};
