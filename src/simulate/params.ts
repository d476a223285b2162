/**
 * Parameters of a simulated RELION 5 dataset, their defaults (those of the conformance set V1,
 * except that motion is off unless asked for) and their validation.
 */
import { TomoError } from '../errors.js';

export interface SimulationParams {
  seed: number;
  /** Number of tomograms (tilt series). */
  tomos: number;
  /** Particles per tomogram. */
  particles: number;
  /** Tilts k·tiltStep degrees, k = −n … n with n·tiltStep ≤ tiltRange (0° always included). */
  tiltRange: number;
  tiltStep: number;
  /** Tilt-image size W×H (pixels). */
  image: [number, number];
  /** Tomogram size w0×h0×d0 (pixels). */
  tomoSize: [number, number, number];
  /** Pixel size (Å) of tilt images, tomograms and the ground truth. */
  pixel: number;
  /** Particle box (pixels, even): size of ground_truth.mrc and the box a reconstruction should use. */
  box: number;
  /** Per-tilt SNR (see truth.json conventions.snr). */
  snr: number;
  /** No noise at all (snr ignored). */
  noiseless: boolean;
  /** Electron dose per tilt (e/Å²). */
  dose: number;
  /** Mean defocus (Å, underfocus positive) and astigmatism (DefocusU − DefocusV, Å). */
  defocus: number;
  astig: number;
  voltage: number;
  cs: number;
  q0: number;
  /** rlnTomoHand written and used for the depth-dependent defocus. */
  hand: number;
  defocusSlope: number;
  /** Per-particle beam-induced motion, written to motion.star. */
  motion: boolean;
  /** Motion amplitude (Å). */
  motionAmp: number;
  /** Random rlnTomoSubtomogramRot/Tilt/Psi in addition to the particle angles. */
  subtomoAngles: boolean;
  /** Random rlnOriginX/Y/ZAngst, uniform in ±originShifts Å. */
  originShifts: number;
  /** Point-group symmetry of the particle: C1 or Cn. */
  sym: string;
  /** Images without CTF (dose weighting still applied unless noDose). */
  noCtf: boolean;
  /** Images without dose weighting. */
  noDose: boolean;
  /** rlnCtfScalefactor = cos(tilt) instead of 1. */
  ctfScaleCos: boolean;
  /** Minimum distance between particle centres (pixels); 0 = box size. */
  minDistance: number;
  /** Render patch size (pixels, even); 0 = automatic from the CTF delocalisation. */
  patch: number;
  /** Aberrations applied to the images and written to the optics table (rlnEvenZernike / rlnOddZernike). */
  evenZernike: number[];
  oddZernike: number[];
}

export const SIM_DEFAULTS: SimulationParams = {
  seed: 1,
  tomos: 2,
  particles: 24,
  tiltRange: 60,
  tiltStep: 4,
  image: [320, 320],
  tomoSize: [320, 320, 160],
  pixel: 2,
  box: 48,
  snr: 0.8,
  noiseless: false,
  dose: 3,
  defocus: 20000,
  astig: 500,
  voltage: 300,
  cs: 2.7,
  q0: 0.1,
  hand: -1,
  defocusSlope: 1,
  motion: false,
  motionAmp: 2,
  subtomoAngles: true,
  originShifts: 3,
  sym: 'C1',
  noCtf: false,
  noDose: false,
  ctfScaleCos: false,
  minDistance: 0,
  patch: 0,
  evenZernike: [],
  oddZernike: [],
};

/** The n of a Cn symmetry name, or a TomoError. */
export function symmetryOrder(sym: string): number {
  const m = /^[cC]([1-9][0-9]*)$/.exec(sym.trim());
  if (!m) throw new TomoError(`--sym ${sym}: the simulator supports cyclic symmetry only (C1, C2, … Cn)`);
  return Number(m[1]);
}

/** Tilts on each side of 0°: the series is k·step for k = −n … n (|k·step| ≤ range). */
export function tiltsPerSide(p: SimulationParams): number {
  return Math.floor(p.tiltRange / p.tiltStep + 1e-9);
}

/** Frame count 2n + 1 (always odd, 0° in the middle). */
export function tiltCount(p: SimulationParams): number {
  return 2 * tiltsPerSide(p) + 1;
}

export function validateSimulation(p: SimulationParams): void {
  const int = (v: number, flag: string, min: number): void => {
    if (!Number.isInteger(v) || v < min) throw new TomoError(`--${flag} ${v}: expected a whole number ≥ ${min}`);
  };
  const pos = (v: number, flag: string): void => {
    if (!(v > 0) || !Number.isFinite(v)) throw new TomoError(`--${flag} ${v}: expected a positive number`);
  };
  const nonneg = (v: number, flag: string): void => {
    if (!(v >= 0) || !Number.isFinite(v)) throw new TomoError(`--${flag} ${v}: expected a number ≥ 0`);
  };
  int(p.seed, 'seed', 0);
  if (p.seed > 0xffffffff) throw new TomoError(`--seed ${p.seed}: must be below 2^32`);
  int(p.tomos, 'tomos', 1);
  if (p.tomos > 99) throw new TomoError(`--tomos ${p.tomos}: at most 99 tomograms (TS_01 … TS_99)`);
  int(p.particles, 'particles', 1);
  nonneg(p.tiltRange, 'tilt-range');
  if (p.tiltRange >= 90) throw new TomoError(`--tilt-range ${p.tiltRange}: must be below 90 degrees`);
  pos(p.tiltStep, 'tilt-step');
  if (tiltCount(p) > 999) throw new TomoError(`--tilt-range/--tilt-step give ${tiltCount(p)} tilts; at most 999`);
  int(p.box, 'box', 8);
  if (p.box % 2 !== 0) throw new TomoError(`--box ${p.box}: the box size must be even`);
  p.image.forEach((v) => int(v, 'image', p.box + 4));
  p.tomoSize.forEach((v) => int(v, 'tomo-size', 1));
  if (p.tomoSize[0] < p.box || p.tomoSize[1] < p.box || p.tomoSize[2] < p.box) {
    throw new TomoError(`--tomo-size ${p.tomoSize.join(',')}: every side must be at least the box size ${p.box}`);
  }
  pos(p.pixel, 'pixel');
  if (!p.noiseless) pos(p.snr, 'snr');
  nonneg(p.dose, 'dose');
  pos(p.defocus, 'defocus');
  nonneg(p.astig, 'astig');
  if (p.astig >= p.defocus) throw new TomoError(`--astig ${p.astig} must be smaller than --defocus ${p.defocus}`);
  pos(p.voltage, 'voltage');
  nonneg(p.cs, 'cs');
  if (!(p.q0 >= 0 && p.q0 < 1)) throw new TomoError(`--q0 ${p.q0}: the amplitude contrast must be in [0, 1)`);
  if (p.hand !== 1 && p.hand !== -1) throw new TomoError(`--hand ${p.hand}: expected 1 or -1`);
  nonneg(p.defocusSlope, 'defocus-slope');
  nonneg(p.motionAmp, 'motion-amp');
  nonneg(p.originShifts, 'origin-shifts');
  symmetryOrder(p.sym);
  nonneg(p.minDistance, 'min-distance');
  if (p.patch !== 0) {
    int(p.patch, 'patch', p.box);
    if (p.patch % 2 !== 0) throw new TomoError(`--patch ${p.patch}: must be even`);
  }
}
