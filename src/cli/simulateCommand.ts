/**
 * `tomorecon simulate --o DIR [...]`: writes a synthetic RELION 5 dataset with a known ground
 * truth (src/simulate/dataset.ts). Defaults are those of the conformance set V1 (2 tomograms of
 * 24 particles, 31 tilts ±60°, 320² images, 2 Å/px, box 48, SNR 0.8), without motion.
 */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { TomoError } from '../errors.js';
import { simulateDataset } from '../simulate/dataset.js';
import { SIM_DEFAULTS, SimulationParams } from '../simulate/params.js';
import type { CommandModule } from './commands.js';
import { FlagSpec, boolFlag, defineFlags, numberFlag, stringFlag } from './flags.js';

const D = SIM_DEFAULTS;

export const SIMULATE_FLAGS: FlagSpec[] = [
  { name: 'o', kind: 'string', describe: 'Output directory (required; created if needed, files of the same names are replaced)' },
  { name: 'seed', kind: 'number', describe: `Random seed; the same seed and flags give the same bytes; default ${D.seed}` },
  { name: 'tomos', kind: 'number', describe: `Number of tomograms (tilt series TS_01, TS_02, …); default ${D.tomos}` },
  { name: 'particles', kind: 'number', describe: `Particles per tomogram; default ${D.particles}` },
  { name: 'tilt-range', kind: 'number', describe: `Largest tilt in degrees: tilts are 0, ±step, ±2·step, … up to ±range; default ${D.tiltRange}` },
  { name: 'tilt-step', kind: 'number', describe: `Tilt increment in degrees (dose-symmetric acquisition order); default ${D.tiltStep}` },
  { name: 'image', kind: 'string', describe: `Tilt-image size in pixels, W or W,H; default ${D.image.join(',')}` },
  { name: 'tomo-size', kind: 'string', describe: `Tomogram size in pixels, X,Y,Z; default ${D.tomoSize.join(',')}` },
  { name: 'pixel', kind: 'number', describe: `Pixel size in Å; default ${D.pixel}` },
  { name: 'box', kind: 'number', describe: `Particle box in pixels (even); ground_truth.mrc is box³, reconstruct with --b box; default ${D.box}` },
  { name: 'snr', kind: 'number', describe: `Per-tilt signal-to-noise ratio (signal variance in a box² window / noise variance); default ${D.snr}` },
  { name: 'noiseless', kind: 'boolean', describe: 'No noise (overrides --snr)' },
  { name: 'dose', kind: 'number', describe: `Electron dose per tilt in e/Å²; default ${D.dose}` },
  { name: 'defocus', kind: 'number', describe: `Mean defocus in Å (underfocus positive); default ${D.defocus}` },
  { name: 'astig', kind: 'number', describe: `Astigmatism DefocusU − DefocusV in Å; default ${D.astig}` },
  { name: 'voltage', kind: 'number', describe: `Acceleration voltage in kV; default ${D.voltage}` },
  { name: 'cs', kind: 'number', describe: `Spherical aberration in mm; default ${D.cs}` },
  { name: 'q0', kind: 'number', describe: `Amplitude contrast; default ${D.q0}` },
  { name: 'hand', kind: 'number', describe: `rlnTomoHand (±1), used for the depth-dependent defocus; default ${D.hand}` },
  { name: 'defocus-slope', kind: 'number', describe: `rlnTomoDefocusSlope; default ${D.defocusSlope}` },
  { name: 'motion', kind: 'boolean', describe: 'Per-particle motion between tilts, written to motion.star' },
  { name: 'motion-amp', kind: 'number', describe: `Motion amplitude in Å; default ${D.motionAmp}` },
  { name: 'no-subtomo', kind: 'boolean', describe: 'No rlnTomoSubtomogramRot/Tilt/Psi columns (only particle angles)' },
  { name: 'origin-shifts', kind: 'number', describe: `Random rlnOriginX/Y/ZAngst within ± this many Å (0 = none); default ${D.originShifts}` },
  { name: 'sym', kind: 'string', describe: `Particle symmetry: C1 (asymmetric, chiral) or Cn (blobs repeated about z); default ${D.sym}` },
  { name: 'no-ctf', kind: 'boolean', describe: 'Render images without CTF (reconstruct them with --no_ctf)' },
  { name: 'no-dose', kind: 'boolean', describe: 'Render images without dose weighting' },
  { name: 'ctf-scale-cos', kind: 'boolean', describe: 'rlnCtfScalefactor = cos(tilt) (applied to the images and written) instead of 1' },
  { name: 'min-distance', kind: 'number', describe: 'Minimum distance between particle centres in pixels; default = box' },
  { name: 'patch', kind: 'number', describe: 'Render patch size in pixels (even); default automatic, from the CTF delocalisation' },
  { name: 'even-zernike', kind: 'string', describe: 'Even Zernike coefficients (RELION order, comma-separated) applied to the images and written as rlnEvenZernike' },
  { name: 'odd-zernike', kind: 'string', describe: 'Odd Zernike coefficients (RELION order, comma-separated) applied to the images and written as rlnOddZernike' },
];


function intList(args: Record<string, unknown>, name: string, fallback: number[], lengths: number[]): number[] {
  const raw = stringFlag(args, name, '');
  if (raw === '') {
    if (args[name] !== undefined) throw new TomoError(`--${name} needs a value`);
    return fallback;
  }
  const parts = raw.split(',').map((s) => s.trim());
  const vals = parts.map(Number);
  if (!lengths.includes(parts.length) || vals.some((v) => !Number.isInteger(v) || v < 1)) {
    throw new TomoError(`--${name} '${raw}': expected ${lengths.join(' or ')} whole numbers separated by commas`);
  }
  return vals;
}

export function simulationFromArgs(args: Record<string, unknown>): SimulationParams {
  const image = intList(args, 'image', D.image, [1, 2]);
  const tomo = intList(args, 'tomo-size', D.tomoSize, [3]);
  return {
    seed: numberFlag(args, 'seed', D.seed),
    tomos: numberFlag(args, 'tomos', D.tomos),
    particles: numberFlag(args, 'particles', D.particles),
    tiltRange: numberFlag(args, 'tilt-range', D.tiltRange),
    tiltStep: numberFlag(args, 'tilt-step', D.tiltStep),
    image: [image[0], image[1] ?? image[0]],
    tomoSize: [tomo[0], tomo[1], tomo[2]],
    pixel: numberFlag(args, 'pixel', D.pixel),
    box: numberFlag(args, 'box', D.box),
    snr: numberFlag(args, 'snr', D.snr),
    noiseless: boolFlag(args, 'noiseless'),
    dose: numberFlag(args, 'dose', D.dose),
    defocus: numberFlag(args, 'defocus', D.defocus),
    astig: numberFlag(args, 'astig', D.astig),
    voltage: numberFlag(args, 'voltage', D.voltage),
    cs: numberFlag(args, 'cs', D.cs),
    q0: numberFlag(args, 'q0', D.q0),
    hand: numberFlag(args, 'hand', D.hand),
    defocusSlope: numberFlag(args, 'defocus-slope', D.defocusSlope),
    motion: boolFlag(args, 'motion'),
    motionAmp: numberFlag(args, 'motion-amp', D.motionAmp),
    subtomoAngles: !boolFlag(args, 'no-subtomo'),
    originShifts: numberFlag(args, 'origin-shifts', D.originShifts),
    sym: stringFlag(args, 'sym', D.sym),
    noCtf: boolFlag(args, 'no-ctf'),
    noDose: boolFlag(args, 'no-dose'),
    ctfScaleCos: boolFlag(args, 'ctf-scale-cos'),
    minDistance: numberFlag(args, 'min-distance', D.minDistance),
    patch: numberFlag(args, 'patch', D.patch),
    evenZernike: listFlag(args, 'even-zernike'),
    oddZernike: listFlag(args, 'odd-zernike'),
  };
}

function listFlag(args: Record<string, unknown>, name: string): number[] {
  const v = stringFlag(args, name, '');
  if (!v) return [];
  return v.split(',').map((t) => {
    const n = Number(t);
    if (t.trim() === '' || !Number.isFinite(n)) throw new TomoError(`--${name}: '${t}' is not a number (give comma-separated numbers)`);
    return n;
  });
}

export const simulateCommand: CommandModule = {
  name: 'simulate',
  describe: 'Write a synthetic RELION 5 dataset (tilt series, particles, ground truth) with a known answer',
  builder: (y: Argv) => defineFlags(y, SIMULATE_FLAGS).strict(),
  handler: async (args: ArgumentsCamelCase) => {
    const dir = stringFlag(args, 'o', '');
    if (!dir) throw new TomoError('--o (output directory) is required');
    const p = simulationFromArgs(args);
    const s = simulateDataset(p, dir, (line) => process.stderr.write(`${line}\n`));
    const noise = p.noiseless ? 'no noise' : `noise σ ${s.noiseSigma.toFixed(4)} for SNR ${p.snr}`;
    process.stdout.write(
      `wrote ${s.dir}: ${s.tomograms} tomogram(s), ${s.particles} particles, ${s.frames} tilts; ` +
        `signal power ${s.signalPower.toFixed(4)}, ${noise}; ${s.seconds.toFixed(1)} s\n` +
        `reconstruct with: cd ${s.dir} && tomorecon reconstruct --i optimisation_set.star --b ${p.box} --o recon` +
        `${p.noCtf ? ' --no_ctf' : ''}${/^[cC]1$/.test(p.sym) ? '' : ` --sym ${p.sym}`}\n` +
        `then compare: tomorecon fsc ${s.dir}/recon/merged.mrc ${s.dir}/ground_truth.mrc\n`,
    );
  },
};
