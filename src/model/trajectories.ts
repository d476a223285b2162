/**
 * Per-particle motion trajectories (formats.md §5): shifts in Å, tomogram axes, one row per frame,
 * added to the particle position.
 */
import { TomoError } from '../errors.js';
import { StarTable, readStar } from '../formats/star.js';
import { ParticleSet } from './particleSet.js';

export interface Trajectories {
  source: string;
  /** Shifts per particle (index into ParticleSet.particles): 3 numbers per frame, Å. */
  shifts: (Float64Array | null)[];
  warnings: string[];
}

export function readTrajectories(file: string, ps: ParticleSet): Trajectories {
  const blocks = readStar(file);
  const warnings: string[] = [];
  const general = blocks[0];
  if (!general || general.name !== 'general') {
    throw new TomoError(`${file}: a trajectory file must start with data_general`);
  }
  const g = new StarTable(general);
  if (!g.has('rlnParticleNumber')) throw new TomoError(`${file}: data_general has no _rlnParticleNumber`);
  const n = g.int(0, 'rlnParticleNumber');
  if (n < ps.particles.length) {
    throw new TomoError(`${file}: rlnParticleNumber is ${n} but ${ps.source} has ${ps.particles.length} particles`);
  }
  const parse = (bi: number): Float64Array => {
    const t = new StarTable(blocks[bi]);
    const out = new Float64Array(t.rowCount * 3);
    for (let f = 0; f < t.rowCount; f++) {
      out[3 * f] = t.num(f, 'rlnOriginXAngst');
      out[3 * f + 1] = t.num(f, 'rlnOriginYAngst');
      out[3 * f + 2] = t.num(f, 'rlnOriginZAngst');
    }
    return out;
  };
  const shifts: (Float64Array | null)[] = new Array(ps.particles.length).fill(null);
  if (blocks.length > 1 && blocks[1].name === '0') {
    warnings.push(`the trajectories in ${file} have no particle names; they are matched to particles by position`);
    for (let i = 0; i < ps.particles.length; i++) {
      if (!blocks[i + 1]) throw new TomoError(`${file}: no trajectory for particle ${ps.particles[i].name} (block ${i + 2})`);
      shifts[i] = parse(i + 1);
    }
  } else {
    const byName = new Map<string, number>();
    for (let b = 1; b < blocks.length; b++) byName.set(blocks[b].name, b); // later duplicates win, as in RELION
    for (let i = 0; i < ps.particles.length; i++) {
      const b = byName.get(ps.particles[i].name);
      if (b === undefined) throw new TomoError(`${file}: no trajectory found for particle '${ps.particles[i].name}'`);
      shifts[i] = parse(b);
    }
  }
  return { source: file, shifts, warnings };
}
