/**
 * The commands other than reconstruct. Each is a small module; this list wires them into the CLI.
 */
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { demoCommand } from './demoCommand.js';
import { fscCommand } from './fscCommand.js';
import { simulateCommand } from './simulateCommand.js';
import { RECONSTRUCT_FLAGS, defineReconstructFlags } from './reconstructCommand.js';
import { COORDINATOR_FLAGS, DistFlagSpec, WORKER_FLAGS } from '../distributed/flags.js';

export interface CommandModule {
  name: string;
  describe: string;
  builder: (y: Argv) => Argv;
  handler: (args: ArgumentsCamelCase) => Promise<void>;
}

function defineDistFlags<T>(y: Argv<T>, flags: DistFlagSpec[]): Argv<T> {
  let out = y;
  for (const f of flags) out = out.option(f.name, { type: f.kind === 'boolean' ? 'boolean' : 'string', describe: f.describe });
  return out;
}

function warnUnknown(args: Record<string, unknown>, known: string[]): void {
  const k = new Set(known);
  for (const key of Object.keys(args)) {
    if (key === '_' || key === '$0' || key === 'help' || key === 'version' || k.has(key)) continue;
    process.stderr.write(`warning: --${key} is not an option of this command and is ignored\n`);
  }
}

// The distributed runner's processes are loaded only when their command runs (networking code).
const coordinatorCommand: CommandModule = {
  name: 'coordinator',
  describe: 'Distributed run: plan the reconstruction and hand it to workers over NATS (takes every reconstruct flag)',
  builder: (y: Argv) => defineDistFlags(defineReconstructFlags(y), COORDINATOR_FLAGS),
  handler: async (args: ArgumentsCamelCase) => {
    warnUnknown(args, [...RECONSTRUCT_FLAGS, ...COORDINATOR_FLAGS].map((f) => f.name));
    const { runCoordinator } = await import('../../coordinator/main.js');
    await runCoordinator(args, ['tomorecon', ...process.argv.slice(2)]);
  },
};

const workerCommand: CommandModule = {
  name: 'worker',
  describe: 'Distributed run: back-project chunks for the coordinator of a run id',
  builder: (y: Argv) => defineDistFlags(y, WORKER_FLAGS),
  handler: async (args: ArgumentsCamelCase) => {
    warnUnknown(args, WORKER_FLAGS.map((f) => f.name));
    const { runWorker } = await import('../../worker/main.js');
    await runWorker(args);
  },
};

export const COMMANDS: CommandModule[] = [simulateCommand, fscCommand, demoCommand, coordinatorCommand, workerCommand];
