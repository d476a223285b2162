/**
 * The `tomorecon` command line. Every user error ends as one line on stderr and a non-zero exit;
 * anything else is a bug and is reported with its stack.
 */
import fs from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { JobAborted, isTomoError } from '../errors.js';
import { RECONSTRUCT_CLI_FLAGS, runReconstruct } from './reconstructCommand.js';
import { COMMANDS, COORDINATOR_CLI_FLAGS } from './commands.js';
import { defineFlags, warnUnknownFlags } from './flags.js';
import { normalisedValue, relionArgs } from './relionArgs.js';

const PARSER = {
  'camel-case-expansion': false,
  'dot-notation': false,
  'boolean-negation': false,
  'duplicate-arguments-array': false,
  'parse-numbers': false,
  'parse-positional-numbers': false,
} as const;

const RELION_PROGRAMS = ['relion_tomo_reconstruct_particle', 'relion_tomo_reconstruct_particle_mpi'] as const;
type RelionProgram = (typeof RELION_PROGRAMS)[number];

/**
 * The RELION program this process was started as, from the name of the file run
 * (process.argv[1]: a link to bin/tomorecon.js named after it; README, "Using tomorecon from
 * RELION"), or undefined.
 */
export function relionProgram(script: string | undefined): RelionProgram | undefined {
  const name = path.basename(script ?? '').replace(/\.(m?js)$/, '');
  return RELION_PROGRAMS.find((p) => p === name);
}

/** This process's rank when started by mpirun or srun (0 otherwise). */
export function mpiRank(env: NodeJS.ProcessEnv): number {
  for (const v of ['OMPI_COMM_WORLD_RANK', 'PMI_RANK', 'PMIX_RANK', 'MV2_COMM_WORLD_RANK', 'SLURM_PROCID']) {
    const r = Number(env[v]);
    if (env[v] !== undefined && Number.isInteger(r) && r >= 0) return r;
  }
  return 0;
}

/**
 * `relion`: started as a RELION program (relionProgram): argv are its arguments, run as
 * `reconstruct`, and note.txt names the program as typed. Under the _mpi name only rank 0 works.
 */
export async function main(argv: string[], relion?: RelionProgram, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const commandLine = relion ? [relion, ...argv] : ['tomorecon', ...argv];
  if (relion) {
    const rank = relion.endsWith('_mpi') ? mpiRank(env) : 0;
    if (rank > 0) {
      // Every rank of `mpirun -n N` starts here; one process with threads does the whole run.
      process.stdout.write(`${relion}: rank ${rank}: tomorecon reconstructs in rank 0 with threads (for several nodes use its distributed mode); nothing to do here\n`);
      return 0;
    }
    argv = ['reconstruct', ...argv];
  }
  let pipelinePrefix = '';
  let exitCode = 0;
  try {
    // The commands that take RELION's flags read them as RELION does (relionArgs.ts); the
    // pipeliner's prefix is known before parsing, so that a command-line error is reported too.
    const relionFlags = argv[0] === 'reconstruct' ? RECONSTRUCT_CLI_FLAGS : argv[0] === 'coordinator' ? COORDINATOR_CLI_FLAGS : null;
    if (relionFlags) {
      const rest = relionArgs(argv.slice(1), relionFlags, (m) => process.stderr.write(`warning: ${m}\n`));
      // As RELION: no argument prints the usage (and exits 0); --list_themes lists and exits.
      if (rest.length === 0) rest.push('--help');
      if (rest.includes('--list_themes')) {
        process.stdout.write('classic (tomorecon writes no colours)\n');
        return 0;
      }
      pipelinePrefix = normalisedValue(rest, 'pipeline_control') ?? '';
      argv = [argv[0], ...rest];
    }
    let parser = yargs(argv)
      .scriptName('tomorecon')
      .parserConfiguration(PARSER)
      .usage('$0 <command> [options]')
      .command(
        'reconstruct',
        'Reconstruct a particle from tilt series (drop-in for relion_tomo_reconstruct_particle)',
        (y) => defineFlags(y, RECONSTRUCT_CLI_FLAGS),
        async (args) => {
          warnUnknownFlags(args, RECONSTRUCT_CLI_FLAGS.map((f) => f.name));
          await runReconstruct(args, commandLine);
        },
      );
    for (const c of COMMANDS) parser = parser.command(c.name, c.describe, c.builder, c.handler);
    await parser
      .demandCommand(1, 'name a command: reconstruct, coordinator, worker, simulate, fsc or demo')
      .strictCommands()
      .help()
      .version()
      .fail((msg, err) => {
        if (err) throw err;
        throw Object.assign(new Error(msg), { usage: true });
      })
      .parseAsync();
    if (pipelinePrefix) touch(`${pipelinePrefix}RELION_JOB_EXIT_SUCCESS`);
  } catch (e) {
    if (e instanceof JobAborted) {
      // As RELION: status 2 and the ABORTED file for the pipeliner.
      process.stderr.write(`tomorecon: aborted: ${e.message}\n`);
      if (pipelinePrefix) touch(`${pipelinePrefix}RELION_JOB_EXIT_ABORTED`);
      return 2;
    }
    exitCode = 1;
    if (isTomoError(e) || (e as { usage?: boolean }).usage) {
      process.stderr.write(`tomorecon: error: ${(e as Error).message}\n`);
    } else {
      process.stderr.write(`tomorecon: internal error (please report): ${(e as Error).stack ?? String(e)}\n`);
    }
    if (pipelinePrefix) touch(`${pipelinePrefix}RELION_JOB_EXIT_FAILURE`);
  }
  return exitCode;
}

/** Creates an empty file (and its folder: RELION makes the output directory before anything). */
function touch(file: string): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '');
  } catch (e) {
    process.stderr.write(`warning: cannot create ${file}: ${(e as Error).message}\n`);
  }
}
