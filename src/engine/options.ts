/**
 * The reconstruct options (RELION's flags, numerics.md §10) and their validation. Everything that
 * can be rejected is rejected here, before any input is read or any work is done.
 */
import { TomoError } from '../errors.js';
import { symmetryOps } from '../geometry/symmetry.js';

export interface ReconstructOptions {
  i: string;
  p: string;
  t: string;
  mot: string;
  o: string;
  b: number;
  crop: number;
  bin: number;
  taper: number;
  snr: number;
  sym: string;
  nrHelicalAsu: number;
  helicalRise: number;
  helicalTwist: number;
  whiten: boolean;
  noCtf: boolean;
  noCircleCrop: boolean;
  cutoffFract: number;
  mem: number; // GB; ≤ 0 = no limit
  j: number;
  jOut: number;
  jIn: number;
  onlyDoUnfinished: boolean;
  noBackup: boolean;
  /**
   * Seconds of back-projection worth a checkpoint (tomorecon's): after a tomogram (and while the
   * maps are made) the sums are written only when at least this long has passed since the last
   * checkpoint or the start; 0 = after every tomogram, as RELION.
   */
  checkpointInterval: number;
  noRecon: boolean;
  pipelineControl: string;
  /** argv as typed, for note.txt. */
  commandLine: string[];
  /** Worker threads; 0 = run in the calling thread (library use and tests). */
  threads?: number;
  /** Progress output: 'auto' (bar on a TTY, lines otherwise), 'lines', or 'none'. */
  progress?: 'auto' | 'lines' | 'none';
}

export const DEFAULTS: Omit<ReconstructOptions, 'o' | 'b' | 'commandLine'> = {
  i: '',
  p: '',
  t: '',
  mot: '',
  crop: -1,
  bin: 1,
  taper: 10,
  snr: -1,
  sym: 'C1',
  nrHelicalAsu: 1,
  helicalRise: 0,
  helicalTwist: 0,
  whiten: false,
  noCtf: false,
  noCircleCrop: false,
  cutoffFract: 0.01,
  mem: -1,
  j: 6,
  jOut: 2,
  jIn: 3,
  onlyDoUnfinished: false,
  noBackup: false,
  checkpointInterval: 5,
  noRecon: false,
  pipelineControl: '',
};

/** Derived box sizes: s (output), sh, s0 = (int)(bin·s + 0.5) (extraction box in the tilt images). */
export function boxSizes(b: number, bin: number): { s: number; sh: number; s0: number } {
  return { s: b, sh: (b >> 1) + 1, s0: Math.trunc(bin * b + 0.5) };
}

/** The largest even box whose half-set data sums (16·(b/2+1)·b² bytes) fit in 4 GiB. */
export const MAX_BOX = 812;

/** What an accepted option does that a user may not expect (logged as warnings before the run). */
export function optionWarnings(o: ReconstructOptions): string[] {
  const w: string[] = [];
  if (o.crop > 0 && o.crop >= o.b) w.push(`--crop ${o.crop} is not smaller than --b ${o.b}: no cropped maps are written (as RELION)`);
  return w;
}

export function validateOptions(o: ReconstructOptions): void {
  const int = (v: number, flag: string): void => {
    if (!Number.isInteger(v)) throw new TomoError(`${flag} must be a whole number, got ${v}`);
  };
  if (!o.o) throw new TomoError('--o (output directory) is required');
  if (!Number.isFinite(o.b)) throw new TomoError('--b (box size) is required');
  int(o.b, '--b');
  if (o.b < 4 || o.b % 2 !== 0) {
    throw new TomoError(`--b ${o.b}: the box size must be even and at least 4 (RELION computes wrong shifts for odd boxes)`);
  }
  // One half set's data sums (complex float64, (b/2+1)·b² values) must fit in one array (4 GiB).
  const sumsBytes = 16 * (Math.floor(o.b / 2) + 1) * o.b * o.b;
  if (sumsBytes > 2 ** 32) {
    throw new TomoError(`--b ${o.b}: boxes above ${MAX_BOX} are not supported (one half set's sums would take ${(sumsBytes / 1e9).toFixed(1)} GB; an array here holds at most 4 GiB)`);
  }
  if (!(o.bin >= 1)) {
    throw new TomoError(`--bin ${o.bin}: the binning factor must be a number ≥ 1`);
  }
  const { s0 } = boxSizes(o.b, o.bin);
  if (s0 % 2 !== 0) {
    throw new TomoError(
      `--bin ${o.bin} with --b ${o.b} gives an odd extraction box of ${s0} pixels (round(bin·b)); choose --bin or --b so that it is even`,
    );
  }
  // As RELION: cropped maps only for 0 < crop < b (a larger --crop is a warning, optionWarnings).
  if (o.crop > 0 && o.crop < o.b) {
    int(o.crop, '--crop');
    if ((o.b - o.crop) % 2 !== 0) {
      throw new TomoError(`--crop ${o.crop}: --b − --crop must be even (RELION would write a ${o.crop + 1}-voxel map)`);
    }
  }
  // A negative taper is a hard edge, as 0 (RELION's formula); SNR ≤ 0 means the heuristic division.
  if (!Number.isFinite(o.taper)) throw new TomoError(`--taper ${o.taper}: give a width in voxels`);
  if (!Number.isFinite(o.snr)) {
    throw new TomoError(`--SNR ${o.snr}: give a positive SNR for Wiener filtering, or leave it out (default −1) for the heuristic weight division`);
  }
  // Dose weights are at most 1: a cutoff of 1 or more keeps no frequency at all (an empty map).
  if (!(o.cutoffFract < 1)) throw new TomoError(`--cutoff_fract ${o.cutoffFract}: dose weights are at most 1, so nothing would be reconstructed; give a value below 1 (default 0.01)`);
  if (!(o.checkpointInterval >= 0 && Number.isFinite(o.checkpointInterval))) {
    throw new TomoError(`--checkpoint_interval ${o.checkpointInterval}: give seconds ≥ 0 (0: a checkpoint after every tomogram)`);
  }
  for (const [flag, v] of [['--j', o.j], ['--j_out', o.jOut], ['--j_in', o.jIn]] as const) {
    int(v, flag);
    if (v < 1) throw new TomoError(`${flag} ${v} must be at least 1`);
  }
  // As RELION: helical symmetry only for more than one unit.
  int(o.nrHelicalAsu, '--nr_helical_asu');
  // An unknown group name is rejected here, before any input is read.
  symmetryOps(o.sym, 1, 0, 0, 1);
  if (!o.i && (!o.p || !o.t)) {
    throw new TomoError('give an optimisation set with --i, or both --p (particles) and --t (tomograms)');
  }
}
