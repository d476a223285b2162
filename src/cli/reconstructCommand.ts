/**
 * `tomorecon reconstruct`: the flags of relion_tomo_reconstruct_particle, same names, same defaults.
 */
import { DEFAULTS, ReconstructOptions } from '../engine/options.js';
import { reconstruct } from '../engine/reconstruct.js';
import { FlagSpec, boolFlag, numberFlag, stringFlag } from './flags.js';
import { RELION_CONSOLE_FLAGS } from './relionArgs.js';

export const RECONSTRUCT_FLAGS: FlagSpec[] = [
  { name: 'i', kind: 'string', describe: 'Optimisation set (STAR) naming particles, tomograms and trajectories' },
  { name: 'p', kind: 'string', describe: 'Particle set (overrides the one in --i)' },
  { name: 't', kind: 'string', describe: 'Tomogram set (overrides the one in --i)' },
  { name: 'mot', kind: 'string', describe: 'Particle trajectories (overrides the one in --i)' },
  { name: 'o', kind: 'string', describe: 'Output directory (required)' },
  { name: 'b', kind: 'number', describe: 'Box size of the reconstruction in binned pixels, even (required)' },
  { name: 'crop', kind: 'number', describe: 'Also write maps cropped to this size (b − crop must be even); default -1 = off' },
  { name: 'bin', kind: 'number', describe: 'Binning factor (≥ 1, may be non-integer; round(bin·b) must be even); default 1' },
  { name: 'taper', kind: 'number', describe: 'Soft spherical edge in voxels; applied to every final map, with mean subtraction, as RELION does; default 10' },
  { name: 'SNR', kind: 'number', describe: 'Assumed SNR for Wiener division (> 0); default -1 = RELION heuristic division' },
  { name: 'sym', kind: 'string', describe: 'Point-group symmetry, RELION notation (Cn, Ci, Cs, Cnv, Cnh, Sn, Dn, Dnv, Dnh, T, Td, Th, O, Oh, I, I1…I4, Ih, I1h…I4h); default C1' },
  { name: 'nr_helical_asu', kind: 'number', describe: 'Number of helical asymmetric units to symmetrise over (with --helical_rise, --helical_twist); default 1' },
  { name: 'helical_rise', kind: 'number', describe: 'Helical rise in Å; default 0' },
  { name: 'helical_twist', kind: 'number', describe: 'Helical twist in degrees; default 0' },
  { name: 'whiten', kind: 'boolean', describe: 'Whiten the noise spectrum (weights from each tilt image\'s power spectrum)' },
  { name: 'no_ctf', kind: 'boolean', describe: 'No CTF or dose weighting; every sample has weight 1 (as RELION: no dose weighting either)' },
  { name: 'no_circle_crop', kind: 'boolean', describe: 'Do not apply the soft circular mask to the extracted squares' },
  { name: 'cutoff_fract', kind: 'number', describe: 'Ignore frequencies whose dose weight is below this fraction; default 0.01' },
  { name: 'mem', kind: 'number', describe: 'Memory limit in GB; fewer threads are used if needed; default -1 = no limit' },
  { name: 'j', kind: 'number', describe: 'Threads for symmetrisation and finalisation; default 6' },
  { name: 'j_out', kind: 'number', describe: 'Particle-parallel threads, each with its own accumulators; default 2' },
  { name: 'j_in', kind: 'number', describe: 'Threads per particle in RELION; tomorecon runs j_out·j_in particle threads (at most the number of cores); default 3' },
  { name: 'only_do_unfinished', kind: 'boolean', describe: 'Resume an interrupted run from its checkpoint (tomograms already summed are not back-projected again)' },
  { name: 'no_backup', kind: 'boolean', describe: 'Do not write checkpoints of the sums (an interrupted run then starts again)' },
  {
    name: 'checkpoint_interval',
    kind: 'number',
    describe:
      'tomorecon: write the sums after a tomogram (and while the maps are made) only once this many seconds of back-projection would otherwise be lost; 0 = after every tomogram, as RELION; default 5',
  },
  { name: 'no_recon', kind: 'boolean', describe: 'Stop after back-projection; write no maps' },
  { name: 'pipeline_control', kind: 'string', describe: 'RELION pipeliner prefix for RELION_JOB_EXIT_SUCCESS/FAILURE files (note.txt is then not written)' },
];

/** What `reconstruct` accepts on its command line: its flags and RELION's console ones. */
export const RECONSTRUCT_CLI_FLAGS: FlagSpec[] = [...RECONSTRUCT_FLAGS, ...RELION_CONSOLE_FLAGS];

export function optionsFromArgs(args: Record<string, unknown>, commandLine: string[]): ReconstructOptions {
  return {
    i: stringFlag(args, 'i', DEFAULTS.i),
    p: stringFlag(args, 'p', DEFAULTS.p),
    t: stringFlag(args, 't', DEFAULTS.t),
    mot: stringFlag(args, 'mot', DEFAULTS.mot),
    o: stringFlag(args, 'o', ''),
    b: numberFlag(args, 'b', NaN),
    crop: numberFlag(args, 'crop', DEFAULTS.crop),
    bin: numberFlag(args, 'bin', DEFAULTS.bin),
    taper: numberFlag(args, 'taper', DEFAULTS.taper),
    snr: numberFlag(args, 'SNR', DEFAULTS.snr),
    sym: stringFlag(args, 'sym', DEFAULTS.sym),
    nrHelicalAsu: numberFlag(args, 'nr_helical_asu', DEFAULTS.nrHelicalAsu),
    helicalRise: numberFlag(args, 'helical_rise', DEFAULTS.helicalRise),
    helicalTwist: numberFlag(args, 'helical_twist', DEFAULTS.helicalTwist),
    whiten: boolFlag(args, 'whiten'),
    noCtf: boolFlag(args, 'no_ctf'),
    noCircleCrop: boolFlag(args, 'no_circle_crop'),
    cutoffFract: numberFlag(args, 'cutoff_fract', DEFAULTS.cutoffFract),
    mem: numberFlag(args, 'mem', DEFAULTS.mem),
    j: numberFlag(args, 'j', DEFAULTS.j),
    jOut: numberFlag(args, 'j_out', DEFAULTS.jOut),
    jIn: numberFlag(args, 'j_in', DEFAULTS.jIn),
    onlyDoUnfinished: boolFlag(args, 'only_do_unfinished'),
    noBackup: boolFlag(args, 'no_backup'),
    checkpointInterval: numberFlag(args, 'checkpoint_interval', DEFAULTS.checkpointInterval),
    noRecon: boolFlag(args, 'no_recon'),
    pipelineControl: stringFlag(args, 'pipeline_control', DEFAULTS.pipelineControl),
    commandLine,
  };
}

export async function runReconstruct(args: Record<string, unknown>, commandLine: string[]): Promise<void> {
  const o = optionsFromArgs(args, commandLine);
  // As RELION: what the run reports on stdout, warnings (and errors) on stderr (the RELION GUI
  // shows a job's stderr as its errors).
  const summary = await reconstruct(o, (line) => (line.startsWith('warning:') ? process.stderr : process.stdout).write(`${line}\n`));
  process.stdout.write(
    `done: ${summary.particles} particles from ${summary.tomograms} tomograms in ${summary.seconds.toFixed(1)} s; maps in ${o.o}\n`,
  );
}
