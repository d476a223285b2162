/**
 * Reads the inputs of a run and turns them into per-tomogram work: geometry for the kernel and
 * packed particle records (position, orientation, trajectory, half set).
 */
import { TomoError } from '../errors.js';
import { Vec3 } from '../geometry/matrix.js';
import { resolveInputs } from '../model/optimisationSet.js';
import { particlePosition, readParticleSet, splitByTomogram, validateOptics, ParticleSet } from '../model/particleSet.js';
import { readTomogramSet, Tomogram, TomogramSet } from '../model/tomogramSet.js';
import { readTrajectories, Trajectories } from '../model/trajectories.js';
import { KernelOptions, TomogramGeometry, packParticle, particleRecordLength } from '../recon/particleKernel.js';
import { aberrationTables } from '../physics/aberrations.js';
import { ReconstructOptions, boxSizes } from './options.js';

export interface TomogramWork {
  tomogram: Tomogram;
  geometry: TomogramGeometry;
  particleCount: number;
  /** particleCount records of particleRecordLength(frameCount) numbers each. */
  records: Float64Array;
}

export interface RunPlan {
  kernel: KernelOptions;
  tomograms: TomogramSet;
  particles: ParticleSet;
  trajectories: Trajectories | null;
  work: TomogramWork[];
  totalParticles: number;
  hasHalfSets: boolean;
  outputPixelSize: number;
  warnings: string[];
}

export function planRun(o: ReconstructOptions): RunPlan {
  const inputs = resolveInputs({ i: o.i, p: o.p, t: o.t, mot: o.mot });
  const tomograms = readTomogramSet(inputs.tomograms);
  const particles = readParticleSet(inputs.particles, tomograms);
  const trajectories = inputs.trajectories ? readTrajectories(inputs.trajectories, particles) : null;
  const groups = splitByTomogram(particles, tomograms);
  const { s, s0 } = boxSizes(o.b, o.bin);
  const outputPixelSize = tomograms.tomograms[0].pixelSize * o.bin;
  // Aberration tables use p_out for every tomogram, as RELION does ([Q20]).
  const aberrations = particles.optics.some((g) => g.evenZernike || g.oddZernike)
    ? particles.optics.map((g) => aberrationTables(g.evenZernike, g.oddZernike, s, outputPixelSize))
    : [];
  const kernel: KernelOptions = {
    s,
    s0,
    bin: o.bin,
    doCtf: !o.noCtf,
    circleCrop: !o.noCircleCrop,
    cutoffFraction: o.cutoffFract,
    outputPixelSize,
    whiten: o.whiten,
    aberrations,
  };
  const work: TomogramWork[] = [];
  let total = 0;
  // Only tomograms with particles are loaded (their tilt tables and image headers read and
  // checked), and tomogram 0, as RELION does (formats.md §3.7): the others' images may be gone.
  if (tomograms.tomograms.length > 0) tomograms.load(tomograms.tomograms[0]);
  for (const entry of tomograms.tomograms) {
    const idx = groups[entry.index];
    if (idx.length === 0) continue;
    validateOptics(particles, entry, idx);
    const tomo = tomograms.load(entry);
    const F = tomo.frameCount;
    const len = particleRecordLength(F);
    const records = new Float64Array(idx.length * len);
    const traj = new Float64Array(3 * F);
    idx.forEach((pi, k) => {
      const p = particles.particles[pi];
      const pos: Vec3 = particlePosition(p, particles.optics[p.optics], tomo);
      let trajPx: Float64Array | null = null;
      if (trajectories) {
        const sh = trajectories.shifts[pi]!;
        if (sh.length !== 3 * F) {
          throw new TomoError(
            `${trajectories.source}: particle ${p.name} has ${sh.length / 3} trajectory rows; expected ${F} (the frame count of ${tomo.name})`,
          );
        }
        for (let f = 0; f < F; f++) {
          for (let a = 0; a < 3; a++) traj[3 * f + a] = pos[a] + sh[3 * f + a] / tomo.pixelSize;
        }
        trajPx = traj;
      }
      packParticle(records, k * len, p.half, p.optics, pos, p.rotation, trajPx, F);
    });
    total += idx.length;
    work.push({ tomogram: tomo, geometry: geometryOf(tomo), particleCount: idx.length, records });
  }
  const warnings = [...particles.warnings, ...(trajectories?.warnings ?? [])];
  return {
    kernel,
    tomograms,
    particles,
    trajectories,
    work,
    totalParticles: total,
    hasHalfSets: particles.hasHalfSets,
    outputPixelSize,
    warnings,
  };
}

export function geometryOf(t: Tomogram): TomogramGeometry {
  return {
    name: t.name,
    imageW: t.imageW,
    imageH: t.imageH,
    frameCount: t.frameCount,
    pixelSize: t.pixelSize,
    hand: t.hand,
    defocusSlope: t.defocusSlope,
    bPerDose: t.bPerDose,
    centre: t.centre,
    projections: t.projections,
    ctf: t.ctf,
    dose: t.dose,
    deformation: t.deformation,
  };
}
