/**
 * `tomorecon coordinator --nats URL [--run-id ID] [...] <reconstruct flags>`. Loaded lazily by
 * the CLI, so the library never loads networking code.
 */
import { randomBytes } from 'node:crypto';
import { optionsFromArgs } from '../src/cli/reconstructCommand.js';
import { coordinatorOptionsFromArgs } from '../src/distributed/flags.js';
import { Coordinator } from './coordinator.js';

export async function runCoordinator(args: Record<string, unknown>, commandLine: string[]): Promise<void> {
  const o = optionsFromArgs(args, commandLine);
  const c = coordinatorOptionsFromArgs(args, () => randomBytes(4).toString('hex'));
  // RELION_JOB_EXIT_SUCCESS/FAILURE (--pipeline_control) are written by the CLI, as for reconstruct.
  await new Coordinator(o, c).run();
}
