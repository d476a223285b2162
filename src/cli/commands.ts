/**
 * The commands other than reconstruct. Each is a small module; this list wires them into the CLI.
 */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { demoCommand } from './demoCommand.js';
import { fscCommand } from './fscCommand.js';
import { simulateCommand } from './simulateCommand.js';
import { RECONSTRUCT_FLAGS } from './reconstructCommand.js';
import { COORDINATOR_FLAGS, WORKER_FLAGS } from '../distributed/flags.js';
import { FlagSpec, defineFlags, warnUnknownFlags } from './flags.js';
import { RELION_CONSOLE_FLAGS } from './relionArgs.js';

export interface CommandModule {
  name: string;
  describe: string;
  builder: (y: Argv) => Argv;
  handler: (args: ArgumentsCamelCase) => Promise<void>;
}

/** What `coordinator` accepts on its command line: every reconstruct flag and its own. */
export const COORDINATOR_CLI_FLAGS: FlagSpec[] = [...RECONSTRUCT_FLAGS, ...COORDINATOR_FLAGS, ...RELION_CONSOLE_FLAGS];

// The distributed runner's processes are loaded only when their command runs (networking code).
const coordinatorCommand: CommandModule = {
  name: 'coordinator',
  describe: 'Distributed run: plan the reconstruction and hand it to workers over NATS (takes every reconstruct flag)',
  builder: (y: Argv) => defineFlags(y, COORDINATOR_CLI_FLAGS),
  handler: async (args: ArgumentsCamelCase) => {
    warnUnknownFlags(args, COORDINATOR_CLI_FLAGS.map((f) => f.name));
    const { runCoordinator } = await import('../../coordinator/main.js');
    await runCoordinator(args, ['tomorecon', ...process.argv.slice(2)]);
  },
};

const workerCommand: CommandModule = {
  name: 'worker',
  describe: 'Distributed run: back-project chunks for the coordinator of a run id',
  builder: (y: Argv) => defineFlags(y, WORKER_FLAGS),
  handler: async (args: ArgumentsCamelCase) => {
    warnUnknownFlags(args, WORKER_FLAGS.map((f) => f.name));
    const { runWorker } = await import('../../worker/main.js');
    await runWorker(args);
  },
};

export const COMMANDS: CommandModule[] = [simulateCommand, fscCommand, demoCommand, coordinatorCommand, workerCommand];
