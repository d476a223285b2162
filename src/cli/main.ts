/**
 * The `tomorecon` command line. Every user error ends as one line on stderr and a non-zero exit;
 * anything else is a bug and is reported with its stack.
 */
import fs from 'node:fs';
import yargs from 'yargs';
import { isTomoError } from '../errors.js';
import { RECONSTRUCT_FLAGS, defineReconstructFlags, runReconstruct } from './reconstructCommand.js';
import { COMMANDS } from './commands.js';
import { warnUnknownFlags } from './flags.js';

const PARSER = {
  'camel-case-expansion': false,
  'dot-notation': false,
  'boolean-negation': false,
  'duplicate-arguments-array': false,
  'parse-numbers': false,
  'parse-positional-numbers': false,
} as const;

export async function main(argv: string[]): Promise<number> {
  const commandLine = ['tomorecon', ...argv];
  let pipelinePrefix = '';
  let exitCode = 0;
  try {
    let parser = yargs(argv)
      .scriptName('tomorecon')
      .parserConfiguration(PARSER)
      .usage('$0 <command> [options]')
      .command(
        'reconstruct',
        'Reconstruct a particle from tilt series (drop-in for relion_tomo_reconstruct_particle)',
        (y) => defineReconstructFlags(y),
        async (args) => {
          warnUnknownFlags(args, RECONSTRUCT_FLAGS.map((f) => f.name));
          await runReconstruct(args, commandLine);
        },
      );
    for (const c of COMMANDS) parser = parser.command(c.name, c.describe, c.builder, c.handler);
    // The RELION pipeliner's exit files, for every command that takes --pipeline_control
    // (reconstruct and coordinator); recorded before the command runs so a failure is reported too.
    parser = parser.middleware((args) => {
      if (typeof args.pipeline_control === 'string') pipelinePrefix = args.pipeline_control;
    });
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

function touch(file: string): void {
  try {
    fs.writeFileSync(file, '');
  } catch (e) {
    process.stderr.write(`warning: cannot create ${file}: ${(e as Error).message}\n`);
  }
}
