/**
 * `simulate`: builds a synthetic RELION 5 dataset with a known answer, in the layout of the
 * conformance sets (/work/shared/conformance/V1):
 *
 *   optimisation_set.star        particles, tomograms (and motion) file names, relative
 *   tomograms.star               data_global, one row per tomogram
 *   tilt_series/TS_NN.star       data_TS_NN, one row per tilt (NNNNNN@tilt_series/TS_NN.mrcs)
 *   tilt_series/TS_NN.mrcs       the tilt images, float32
 *   particles.star               data_general, data_optics, data_particles
 *   motion.star                  with --motion: data_general + one block per particle
 *   ground_truth.mrc             box³ at the pixel size, centre at voxel box//2
 *   truth.json                   parameters, conventions, model, every pose
 *
 * Paths inside the STAR files are relative to the dataset folder: run reconstructions from there.
 * The same parameters (seed included) always give the same bytes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TomoError } from '../errors.js';
import { writeFileAtomic, fsReason } from '../formats/atomicWrite.js';
import { encodeMrc } from '../formats/mrc.js';
import { StarBlock, writeStarFile } from '../formats/star.js';
import { applyPoint4 } from '../geometry/matrix.js';
import { depthOffset } from '../geometry/projection.js';
import { ParticleModel, groundTruth, makeModel } from './model.js';
import { SimulationParams, validateSimulation } from './params.js';
import { Rng, deriveSeed } from './random.js';
import { Renderer, autoPatchSize } from './render.js';
import { Scene, SimParticle, SimTomogram, makeScene } from './scene.js';

export interface SimulationSummary {
  dir: string;
  tomograms: number;
  particles: number;
  frames: number;
  patchSize: number;
  signalPower: number;
  noiseSigma: number;
  files: string[];
  seconds: number;
}

export const CONVENTIONS = {
  projection:
    'P = T(xshift/px, yshift/px, 0) T(int(W/2), int(H/2), 0) Rz(zrot) Ry(ytilt) Rx(xtilt) T(-int(w0/2), -int(h0/2), -int(d0/2)); R(axis,a) right-handed; image point = (P q).xy, 0-based pixel index, x = fast (MRC column) axis',
  particle_to_tomogram:
    'q = pos + A (x - box//2), A = Euler(subtomo) * Euler(rot,tilt,psi) (RELION Euler_angles2matrix); with motion q_f = pos + shift_f/px + A (x - box//2)',
  position: 'pos = coordAngst/px + (w0/2, h0/2, d0/2) - A_subtomo originAngst/px',
  ctf: 'RELION CTF::getCTF (+sin(Q0 phase) at k=0) with DefocusU/V += hand*px*slope*depth(pos), depth = (P pos).z - (P centre).z',
  dose: 'exp(-0.5 PreExposure / (0.245 k^-1.665 + 2.81)), k in 1/A',
  image: 'tilt image = -IFT[scale * CTF * dose * FT(line-integral projection)] + N(0, noise_sigma^2)',
  ground_truth:
    'rho[z,y,x] = sum_b a_b exp(-|(x,y,z) - box//2 - c_b|^2 / (2 s_b^2)); projection amplitude = a_b s_b sqrt(2 pi)',
  snr: "noise_sigma^2 = signal_power / snr, signal_power = mean over all particles and tilts of the variance of the particle's noiseless CTF/dose-filtered signal in a box x box window at its projected centre (same noise sigma for all tilt images)",
  patch: 'each particle and tilt is rendered in a patch_size^2 patch centred at round(projected centre), filtered there (periodic), and added to the image',
  relion_scale_note:
    "relion_tomo_reconstruct_particle --b B returns about sqrt(B) * ground truth (FFT 'Both' normalisation); irrelevant for FSC/correlation",
};

const f6 = (v: number): string => (v === 0 ? 0 : v).toFixed(6);

function loop(name: string, labels: string[], rows: string[][], source: string): StarBlock {
  return { name, kind: 'loop', labels, rows, rowLines: [], source };
}

function list(name: string, pairs: [string, string][], source: string): StarBlock {
  return { name, kind: 'list', labels: pairs.map((p) => p[0]), rows: [pairs.map((p) => p[1])], rowLines: [], source };
}

/** Mode-2 MRC with a fixed text label instead of a date, so that the bytes are reproducible. */
function writeMrcLabelled(file: string, data: Float32Array, nx: number, ny: number, nz: number, px: number, label: string): void {
  const bytes = encodeMrc(data, nx, ny, nz, px);
  bytes.fill(0, 224, 224 + 800);
  for (let i = 0; i < label.length && i < 80; i++) bytes[224 + i] = label.charCodeAt(i) & 0x7f;
  writeFileAtomic(file, bytes);
}

function tiltSeriesBlock(tomo: SimTomogram, stackRel: string, file: string): StarBlock {
  const labels = [
    'rlnMicrographName',
    'rlnTomoNominalStageTiltAngle',
    'rlnTomoNominalTiltAxisAngle',
    'rlnMicrographPreExposure',
    'rlnTomoNominalDefocus',
    'rlnDefocusU',
    'rlnDefocusV',
    'rlnDefocusAngle',
    'rlnCtfScalefactor',
    'rlnTomoXTilt',
    'rlnTomoYTilt',
    'rlnTomoZRot',
    'rlnTomoXShiftAngst',
    'rlnTomoYShiftAngst',
  ];
  const rows = tomo.frames.map((fr) => [
    `${String(fr.index + 1).padStart(6, '0')}@${stackRel}`,
    f6(fr.nominalTilt),
    f6(tomo.nominalTiltAxis),
    f6(fr.preExposure),
    f6(tomo.nominalDefocus),
    f6(fr.defocusU),
    f6(fr.defocusV),
    f6(fr.defocusAngle),
    f6(fr.ctfScale),
    f6(fr.xTilt),
    f6(fr.yTilt),
    f6(fr.zRot),
    f6(fr.xShiftAngst),
    f6(fr.yShiftAngst),
  ]);
  return loop(tomo.name, labels, rows, file);
}

function tomogramsBlock(p: SimulationParams, scene: Scene): StarBlock {
  const labels = [
    'rlnTomoName',
    'rlnTomoTiltSeriesStarFile',
    'rlnVoltage',
    'rlnSphericalAberration',
    'rlnAmplitudeContrast',
    'rlnMicrographOriginalPixelSize',
    'rlnTomoHand',
    'rlnTomoTiltSeriesPixelSize',
    'rlnTomoTomogramBinning',
    'rlnTomoSizeX',
    'rlnTomoSizeY',
    'rlnTomoSizeZ',
    'rlnTomoFrameCount',
    'rlnTomoDefocusSlope',
    'rlnOpticsGroupName',
  ];
  const rows = scene.tomograms.map((t) => [
    t.name,
    `tilt_series/${t.name}.star`,
    f6(p.voltage),
    f6(p.cs),
    f6(p.q0),
    f6(p.pixel),
    f6(t.hand),
    f6(p.pixel),
    f6(1),
    String(t.size[0]),
    String(t.size[1]),
    String(t.size[2]),
    String(t.frames.length),
    f6(t.defocusSlope),
    t.name,
  ]);
  return loop('global', labels, rows, 'tomograms.star');
}

function particleBlocks(p: SimulationParams, scene: Scene): StarBlock[] {
  const src = 'particles.star';
  const general = list('general', [['rlnTomoSubTomosAre2DStacks', '0']], src);
  const optics = loop(
    'optics',
    [
      'rlnOpticsGroup',
      'rlnOpticsGroupName',
      'rlnSphericalAberration',
      'rlnVoltage',
      'rlnTomoTiltSeriesPixelSize',
      'rlnAmplitudeContrast',
      'rlnMicrographOriginalPixelSize',
      'rlnImagePixelSize',
      'rlnImageSize',
      'rlnImageDimensionality',
      'rlnTomoSubtomogramBinning',
      ...(p.evenZernike.length > 0 ? ['rlnEvenZernike'] : []),
      ...(p.oddZernike.length > 0 ? ['rlnOddZernike'] : []),
    ],
    scene.tomograms.map((t) => [
      String(t.index + 1),
      t.name,
      f6(p.cs),
      f6(p.voltage),
      f6(p.pixel),
      f6(p.q0),
      f6(p.pixel),
      f6(p.pixel),
      String(p.box),
      '3',
      f6(1),
      ...(p.evenZernike.length > 0 ? [`[${p.evenZernike.join(',')}]`] : []),
      ...(p.oddZernike.length > 0 ? [`[${p.oddZernike.join(',')}]`] : []),
    ]),
    src,
  );
  const labels = [
    'rlnTomoName',
    'rlnTomoParticleName',
    'rlnCenteredCoordinateXAngst',
    'rlnCenteredCoordinateYAngst',
    'rlnCenteredCoordinateZAngst',
    'rlnAngleRot',
    'rlnAngleTilt',
    'rlnAnglePsi',
    ...(p.subtomoAngles ? ['rlnTomoSubtomogramRot', 'rlnTomoSubtomogramTilt', 'rlnTomoSubtomogramPsi'] : []),
    'rlnOriginXAngst',
    'rlnOriginYAngst',
    'rlnOriginZAngst',
    'rlnRandomSubset',
    'rlnOpticsGroup',
    'rlnClassNumber',
  ];
  const rows = scene.particles.map((q) => [
    scene.tomograms[q.tomo].name,
    q.name,
    ...q.coordAngst.map(f6),
    ...q.angles.map(f6),
    ...(q.subtomoAngles ? q.subtomoAngles.map(f6) : []),
    ...q.originAngst.map(f6),
    String(q.randomSubset),
    String(q.opticsGroup),
    '1',
  ]);
  return [general, optics, loop('particles', labels, rows, src)];
}

function motionBlocks(scene: Scene): StarBlock[] {
  const src = 'motion.star';
  const blocks: StarBlock[] = [list('general', [['rlnParticleNumber', String(scene.particles.length)]], src)];
  for (const q of scene.particles) {
    const sh = q.shifts!;
    const rows: string[][] = [];
    for (let f = 0; f < sh.length / 3; f++) rows.push([f6(sh[3 * f]), f6(sh[3 * f + 1]), f6(sh[3 * f + 2])]);
    blocks.push(loop(q.name, ['rlnOriginXAngst', 'rlnOriginYAngst', 'rlnOriginZAngst'], rows, src));
  }
  return blocks;
}

function truthJson(
  p: SimulationParams,
  model: ParticleModel,
  scene: Scene,
  patchSize: number,
  signalPower: number,
  noiseSigma: number,
): string {
  const mat = (m: Float64Array, n: number): number[][] => Array.from({ length: n }, (_, i) => Array.from(m.subarray(i * n, i * n + n)));
  const triples = (a: Float64Array): number[][] => Array.from({ length: a.length / 3 }, (_, i) => Array.from(a.subarray(3 * i, 3 * i + 3)));
  const truth = {
    parameters: {
      seed: p.seed,
      tomos: p.tomos,
      particles_per_tomo: p.particles,
      tilt_range: p.tiltRange,
      tilt_step: p.tiltStep,
      image_size: p.image,
      tomo_size: p.tomoSize,
      pixel_size: p.pixel,
      box: p.box,
      symmetry: model.symmetry,
      blobs: model.sigmas.length,
      snr: p.noiseless ? null : p.snr,
      dose_per_tilt: p.dose,
      defocus: p.defocus,
      astig: p.astig,
      voltage: p.voltage,
      cs: p.cs,
      q0: p.q0,
      hand: p.hand,
      defocus_slope: p.defocusSlope,
      motion: p.motion,
      motion_amp: p.motionAmp,
      subtomo_angles: p.subtomoAngles,
      origin_shifts: p.originShifts,
      no_ctf: p.noCtf,
      no_dose: p.noDose,
      ctf_scale_cos: p.ctfScaleCos,
      patch: p.patch || null,
      min_distance: p.minDistance || p.box,
      paths: 'relative',
    },
    conventions: CONVENTIONS,
    model: {
      symmetry: model.symmetry,
      box: model.box,
      pixel_size: model.pixelSize,
      blob_centres_px: triples(model.centres),
      blob_sigmas_px: Array.from(model.sigmas),
      blob_amplitudes: Array.from(model.amplitudes),
    },
    noise_sigma: noiseSigma,
    signal_power: signalPower,
    patch_size: patchSize,
    tomograms: scene.tomograms.map((t) => ({
      name: t.name,
      size: t.size,
      centre: t.centre,
      image_size: [t.imageW, t.imageH],
      hand: t.hand,
      defocus_slope: t.defocusSlope,
      frames: t.frames.map((fr) => ({
        index: fr.index,
        nominal_tilt: fr.nominalTilt,
        xtilt: fr.xTilt,
        ytilt: fr.yTilt,
        zrot: fr.zRot,
        xshift: fr.xShiftAngst,
        yshift: fr.yShiftAngst,
        defocus_u: fr.defocusU,
        defocus_v: fr.defocusV,
        defocus_angle: fr.defocusAngle,
        pre_exposure: fr.preExposure,
        ctf_scale: fr.ctfScale,
        projection_matrix: mat(fr.projection, 4),
      })),
    })),
    particles: scene.particles.map((q) => {
      const t = scene.tomograms[q.tomo];
      return {
        name: q.name,
        tomo: t.name,
        random_subset: q.randomSubset,
        optics_group: q.opticsGroup,
        coord_angst: q.coordAngst,
        origin_angst: q.originAngst,
        position_px: q.position,
        angles: q.angles,
        subtomo_angles: q.subtomoAngles,
        particle_to_tomo: mat(q.rotation, 3),
        motion_shifts_angst: q.shifts ? triples(q.shifts) : null,
        frames: t.frames.map((fr, f) => {
          const sh = q.shifts;
          const traj = sh
            ? ([0, 1, 2].map((a) => q.position[a] + sh[3 * f + a] / p.pixel) as [number, number, number])
            : q.position;
          const c = applyPoint4(fr.projection, traj);
          const depth = depthOffset(fr.projection, q.position, t.centre);
          const dz = t.hand * p.pixel * t.defocusSlope * depth;
          return { frame: f, center_2d: [c[0], c[1]], depth_px: depth, defocus_u: fr.defocusU + dz, defocus_v: fr.defocusV + dz };
        }),
      };
    }),
  };
  return JSON.stringify(truth, null, 1) + '\n';
}

function prepareDir(dir: string): void {
  try {
    fs.mkdirSync(path.join(dir, 'tilt_series'), { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    throw new TomoError(`cannot create or write the output directory ${dir}: ${fsReason(e)}`);
  }
}

/** Simulates a dataset into `dir` (created if needed; existing files of the same names are replaced). */
export function simulateDataset(p: SimulationParams, dir: string, log: (line: string) => void = () => {}): SimulationSummary {
  const t0 = Date.now();
  validateSimulation(p);
  if (!dir) throw new TomoError('--o (output directory) is required');
  const model = makeModel(new Rng(deriveSeed(p.seed, 1)), p.box, p.pixel, p.sym);
  const scene = makeScene(new Rng(deriveSeed(p.seed, 2)), p);
  const patchSize = p.patch || autoPatchSize(p);
  const renderer = new Renderer(p, model, patchSize);
  const F = scene.tomograms[0].frames.length;

  // Noiseless signal of every tomogram first: the noise level depends on all of them.
  const stacks: Float32Array[] = [];
  let powerSum = 0;
  let powerCount = 0;
  for (const tomo of scene.tomograms) {
    const W = tomo.imageW, H = tomo.imageH;
    const stack = new Float32Array(W * H * F);
    const mine = scene.particles.filter((q: SimParticle) => q.tomo === tomo.index);
    for (const q of mine) {
      for (let f = 0; f < F; f++) {
        powerSum += renderer.renderFrame(tomo, f, q, stack, f * W * H);
        powerCount++;
      }
    }
    stacks.push(stack);
    log(`${tomo.name}: ${mine.length} particles × ${F} tilts rendered (patch ${patchSize} px)`);
  }
  const signalPower = powerCount > 0 ? powerSum / powerCount : 0;
  const noiseSigma = p.noiseless ? 0 : Math.sqrt(signalPower / p.snr);
  if (noiseSigma > 0) {
    scene.tomograms.forEach((t, i) => new Rng(deriveSeed(p.seed, 100 + t.index)).addNormal(stacks[i], noiseSigma));
  }

  prepareDir(dir);
  const files: string[] = [];
  const out = (rel: string): string => {
    files.push(rel);
    return path.join(dir, rel);
  };
  scene.tomograms.forEach((t, i) => {
    const stackRel = `tilt_series/${t.name}.mrcs`;
    writeMrcLabelled(out(stackRel), stacks[i], t.imageW, t.imageH, F, p.pixel, `tomorecon simulate: tilt series ${t.name}`);
    const starRel = `tilt_series/${t.name}.star`;
    writeStarFile(out(starRel), [tiltSeriesBlock(t, stackRel, starRel)]);
  });
  writeStarFile(out('tomograms.star'), [tomogramsBlock(p, scene)]);
  writeStarFile(out('particles.star'), particleBlocks(p, scene));
  const opt: [string, string][] = [
    ['rlnTomoParticlesFile', 'particles.star'],
    ['rlnTomoTomogramsFile', 'tomograms.star'],
  ];
  if (p.motion) {
    writeStarFile(out('motion.star'), motionBlocks(scene));
    opt.push(['rlnTomoTrajectoriesFile', 'motion.star']);
  }
  writeStarFile(out('optimisation_set.star'), [list('optimisation_set', opt, 'optimisation_set.star')]);
  writeMrcLabelled(out('ground_truth.mrc'), groundTruth(model), p.box, p.box, p.box, p.pixel, 'tomorecon simulate: ground truth (sum of Gaussians)');
  writeFileAtomic(out('truth.json'), truthJson(p, model, scene, patchSize, signalPower, noiseSigma));
  return {
    dir,
    tomograms: scene.tomograms.length,
    particles: scene.particles.length,
    frames: F,
    patchSize,
    signalPower,
    noiseSigma,
    files,
    seconds: (Date.now() - t0) / 1000,
  };
}
