/**
 * Particle sets (formats.md §4): optics table, particles with centred Ångström (RELION 5) or
 * decentred pixel (RELION 4) coordinates, origins, subtomogram and particle Euler angles, half sets.
 */
import { TomoError } from '../errors.js';
import { StarTable, findBlock, readStar } from '../formats/star.js';
import { Mat3, Vec3, apply3, eulerToMatrix, identity3, mul3 } from '../geometry/matrix.js';
import { TomogramEntry, TomogramSet } from './tomogramSet.js';

export interface OpticsGroup {
  pixelSize: number;
  voltage: number | null;
  cs: number | null;
  q0: number | null;
  evenZernike: number[] | null;
  oddZernike: number[] | null;
}

export interface Particle {
  row: number; // 0-based row in data_particles
  name: string; // rlnTomoParticleName, or RELION's generated <tomo>/<k>
  tomoName: string;
  optics: number; // 0-based optics row
  coord: Vec3; // centred Å (centred = true) or decentred pixels
  centred: boolean;
  originAngst: Vec3;
  subtomo: Mat3; // A_sub
  rotation: Mat3; // A = A_sub · A_part
  half: 0 | 1;
}

export interface ParticleSet {
  source: string;
  optics: OpticsGroup[];
  particles: Particle[];
  hasHalfSets: boolean;
  warnings: string[];
}

export function readParticleSet(file: string, tomograms: TomogramSet): ParticleSet {
  const blocks = readStar(file);
  const warnings: string[] = [];
  const general = findBlock(blocks, 'general');
  if (general && !new StarTable(general).has('rlnTomoSubTomosAre2DStacks')) {
    throw new TomoError(`${file}: data_general has no _rlnTomoSubTomosAre2DStacks`);
  }
  const pb = findBlock(blocks, 'particles');
  if (!pb || pb.rows.length === 0) throw new TomoError(`${file}: there are no particles (data_particles is missing or empty)`);
  const p = new StarTable(pb);
  if (!p.has('rlnTomoName')) throw new TomoError(`${file}: data_particles has no _rlnTomoName column`);

  const centred = ['X', 'Y', 'Z'].every((a) => p.has(`rlnCenteredCoordinate${a}Angst`));
  if (!centred && !['X', 'Y', 'Z'].every((a) => p.has(`rlnCoordinate${a}`))) {
    throw new TomoError(
      `${file}: data_particles has no coordinates (needs rlnCenteredCoordinateX/Y/ZAngst or rlnCoordinateX/Y/Z)`,
    );
  }

  const ob = findBlock(blocks, 'optics');
  let optics: OpticsGroup[];
  let groupOf: (row: number) => number;
  if (ob) {
    const o = new StarTable(ob);
    if (!o.has('rlnTomoTiltSeriesPixelSize')) {
      throw new TomoError(`${file}: data_optics has no _rlnTomoTiltSeriesPixelSize column`);
    }
    optics = [];
    for (let i = 0; i < o.rowCount; i++) {
      if (o.has('rlnOpticsGroup') && o.int(i, 'rlnOpticsGroup') !== i + 1) {
        throw new TomoError(
          `${file}: data_optics row ${i + 1} has rlnOpticsGroup ${o.int(i, 'rlnOpticsGroup')}; groups must be numbered 1, 2, … in order`,
        );
      }
      optics.push({
        pixelSize: o.num(i, 'rlnTomoTiltSeriesPixelSize'),
        voltage: o.has('rlnVoltage') ? o.num(i, 'rlnVoltage') : null,
        cs: o.has('rlnSphericalAberration') ? o.num(i, 'rlnSphericalAberration') : null,
        q0: o.has('rlnAmplitudeContrast') ? o.num(i, 'rlnAmplitudeContrast') : null,
        evenZernike: o.has('rlnEvenZernike') ? o.vec(i, 'rlnEvenZernike') : null,
        oddZernike: o.has('rlnOddZernike') ? o.vec(i, 'rlnOddZernike') : null,
      });
    }
    if (!p.has('rlnOpticsGroup')) throw new TomoError(`${file}: data_particles has no _rlnOpticsGroup column`);
    groupOf = (row) => {
      const g = p.int(row, 'rlnOpticsGroup');
      if (g < 1 || g > optics.length) {
        throw new TomoError(
          `${file}: particle on line ${pb.rowLines[row]} has rlnOpticsGroup ${g}, but data_optics has ${optics.length} group(s)`,
        );
      }
      return g - 1;
    };
  } else {
    // No optics table: one group per tomogram optics-group name, in order of first appearance (§4.3).
    optics = [];
    const ids = new Map<string, number>();
    groupOf = (row) => {
      const tomo = tomograms.byName.get(p.str(row, 'rlnTomoName'));
      if (!tomo) return 0;
      const key = tomo.opticsGroupName ?? tomo.name;
      let id = ids.get(key);
      if (id === undefined) {
        id = optics.length;
        ids.set(key, id);
        optics.push({ pixelSize: tomo.pixelSize, voltage: tomo.voltage, cs: tomo.cs, q0: tomo.q0, evenZernike: null, oddZernike: null });
      }
      return id;
    };
  }

  const hasHalfSets = p.has('rlnRandomSubset');
  if (!hasHalfSets) {
    warnings.push(`the particles in ${file} have no rlnRandomSubset: all particles go to one set and only merged maps are written`);
  }
  const hasNames = p.has('rlnTomoParticleName');
  const counters = new Map<string, number>();
  const seenNames = new Map<string, number>();
  const particles: Particle[] = [];
  for (let i = 0; i < p.rowCount; i++) {
    const tomoName = p.str(i, 'rlnTomoName');
    const k = (counters.get(tomoName) ?? 0) + 1;
    counters.set(tomoName, k);
    const name = hasNames ? p.str(i, 'rlnTomoParticleName') : `${tomoName}/${k}`;
    // RELION reconstructs both (with trajectories, both take the block of that name, the later
    // one if it is there twice); said once per name.
    const prev = seenNames.get(name);
    if (prev !== undefined && prev >= 0) {
      warnings.push(`${file}: particle ${name} appears twice (lines ${pb.rowLines[prev]} and ${pb.rowLines[i]}); both are reconstructed${hasNames ? ', with the same trajectory if there are trajectories' : ''}`);
      seenNames.set(name, -1);
    } else if (prev === undefined) seenNames.set(name, i);
    const coord: Vec3 = centred
      ? [p.num(i, 'rlnCenteredCoordinateXAngst'), p.num(i, 'rlnCenteredCoordinateYAngst'), p.num(i, 'rlnCenteredCoordinateZAngst')]
      : [p.num(i, 'rlnCoordinateX'), p.num(i, 'rlnCoordinateY'), p.num(i, 'rlnCoordinateZ')];
    const originAngst: Vec3 = [p.num(i, 'rlnOriginXAngst', 0), p.num(i, 'rlnOriginYAngst', 0), p.num(i, 'rlnOriginZAngst', 0)];
    const subtomo = p.has('rlnTomoSubtomogramRot')
      ? eulerToMatrix(p.num(i, 'rlnTomoSubtomogramRot'), p.num(i, 'rlnTomoSubtomogramTilt', 0), p.num(i, 'rlnTomoSubtomogramPsi', 0))
      : identity3();
    const part = p.has('rlnAngleRot')
      ? eulerToMatrix(p.num(i, 'rlnAngleRot'), p.num(i, 'rlnAngleTilt', 0), p.num(i, 'rlnAnglePsi', 0))
      : identity3();
    let half: 0 | 1 = 0;
    if (hasHalfSets) {
      const r = p.int(i, 'rlnRandomSubset');
      if (r !== 1 && r !== 2) {
        throw new TomoError(`${file}: particle ${name} (line ${pb.rowLines[i]}) has rlnRandomSubset ${r}; expected 1 or 2`);
      }
      half = r === 1 ? 0 : 1;
    }
    particles.push({
      row: i,
      name,
      tomoName,
      optics: groupOf(i),
      coord,
      centred,
      originAngst,
      subtomo,
      rotation: mul3(subtomo, part),
      half,
    });
  }
  return { source: file, optics, particles, hasHalfSets, warnings };
}

/** Particle position in decentred tomogram pixels (ParticleSet::getPosition, numerics.md §4.1). */
export function particlePosition(p: Particle, optics: OpticsGroup, tomo: TomogramEntry): Vec3 {
  const px = optics.pixelSize;
  const q: Vec3 = p.centred
    ? [p.coord[0] / px + tomo.centre[0], p.coord[1] / px + tomo.centre[1], p.coord[2] / px + tomo.centre[2]]
    : [p.coord[0], p.coord[1], p.coord[2]];
  const o = apply3(p.subtomo, p.originAngst);
  return [q[0] - o[0] / px, q[1] - o[1] / px, q[2] - o[2] / px];
}

/**
 * Particle rows grouped by tomogram in tomogram-set order (ParticleSet::splitByTomogram).
 * Particles in unknown tomograms are dropped with a warning; no particle at all is an error.
 */
export function splitByTomogram(ps: ParticleSet, ts: TomogramSet): number[][] {
  const groups: number[][] = ts.tomograms.map(() => []);
  const unknown = new Set<string>();
  for (let i = 0; i < ps.particles.length; i++) {
    const t = ts.byName.get(ps.particles[i].tomoName);
    if (!t) unknown.add(ps.particles[i].tomoName);
    else groups[t.index].push(i);
  }
  if (unknown.size > 0) {
    ps.warnings.push(`particles in ${ps.source} belong to tomograms not in ${ts.source}, and are ignored: ${[...unknown].join(', ')}`);
  }
  const empty = ts.tomograms.filter((t) => groups[t.index].length === 0).map((t) => t.name);
  if (empty.length === ts.tomograms.length) {
    throw new TomoError(
      `no particle in ${ps.source} belongs to a tomogram of ${ts.source}; compare the rlnTomoName values of the two files`,
    );
  }
  if (empty.length > 0) ps.warnings.push(`no particles were found for tomograms: ${empty.join(', ')}`);
  return groups;
}

/** Tomogram::validateParticleOptics: optics columns present must match the tomogram within 1e-3. */
export function validateOptics(ps: ParticleSet, tomo: TomogramEntry, particleIdx: number[]): void {
  const checked = new Set<number>();
  for (const i of particleIdx) {
    const g = ps.particles[i].optics;
    if (checked.has(g)) continue;
    checked.add(g);
    const o = ps.optics[g];
    const pairs: [string, number | null, number][] = [
      ['rlnSphericalAberration', o.cs, tomo.cs],
      ['rlnAmplitudeContrast', o.q0, tomo.q0],
      ['rlnVoltage', o.voltage, tomo.voltage],
      ['rlnTomoTiltSeriesPixelSize', o.pixelSize, tomo.pixelSize],
    ];
    for (const [label, a, b] of pairs) {
      if (a !== null && Math.abs(a - b) > 1e-3) {
        throw new TomoError(
          `${ps.source}: optics group ${g + 1} has ${label} ${a} but tomogram ${tomo.name} has ${b} (they must agree within 1e-3)`,
        );
      }
    }
  }
}
