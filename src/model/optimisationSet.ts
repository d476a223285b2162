/**
 * Optimisation set (`--i`) with `--p`, `--t`, `--mot` overrides (formats.md §2).
 */
import { TomoError } from '../errors.js';
import { StarTable, readStar } from '../formats/star.js';

export interface InputFiles {
  particles: string;
  tomograms: string;
  trajectories: string | null;
}

export function resolveInputs(opts: { i?: string; p?: string; t?: string; mot?: string }): InputFiles {
  let particles = opts.p ?? '';
  let tomograms = opts.t ?? '';
  let trajectories = opts.mot ?? '';
  if (opts.i) {
    const blocks = readStar(opts.i);
    if (blocks.length === 0 || blocks[0].rows.length === 0) {
      throw new TomoError(`${opts.i}: the optimisation set is empty (expected _rlnTomoParticlesFile and _rlnTomoTomogramsFile)`);
    }
    const t = new StarTable(blocks[0]);
    if (!particles && t.has('rlnTomoParticlesFile')) particles = t.str(0, 'rlnTomoParticlesFile');
    if (!tomograms && t.has('rlnTomoTomogramsFile')) tomograms = t.str(0, 'rlnTomoTomogramsFile');
    if (!trajectories && t.has('rlnTomoTrajectoriesFile')) trajectories = t.str(0, 'rlnTomoTrajectoriesFile');
    if (!particles) throw new TomoError(`no particles file in the optimisation set ${opts.i} nor given with --p`);
    if (!tomograms) throw new TomoError(`no tomograms file in the optimisation set ${opts.i} nor given with --t`);
  } else {
    if (!particles) throw new TomoError('no particles file: give --p or an optimisation set with --i');
    if (!tomograms) throw new TomoError('no tomograms file: give --t or an optimisation set with --i');
  }
  return { particles, tomograms, trajectories: trajectories || null };
}
