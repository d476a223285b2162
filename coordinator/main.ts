/**
 * `tomorecon coordinator --nats URL [--run-id ID] [...] <reconstruct flags>`. Loaded lazily by
 * the CLI, so the library never loads networking code.
 */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { optionsFromArgs } from '../src/cli/reconstructCommand.js';
import { coordinatorOptionsFromArgs } from '../src/distributed/flags.js';
import { Coordinator } from './coordinator.js';

export async function runCoordinator(args: Record<string, unknown>, commandLine: string[]): Promise<void> {
  const o = optionsFromArgs(args, commandLine);
  const c = coordinatorOptionsFromArgs(args, () => randomBytes(4).toString('hex'));
  const prefix = o.pipelineControl;
  try {
    await new Coordinator(o, c).run();
    if (prefix) touch(`${prefix}RELION_JOB_EXIT_SUCCESS`);
  } catch (e) {
    if (prefix) touch(`${prefix}RELION_JOB_EXIT_FAILURE`);
    throw e;
  }
}

function touch(file: string): void {
  try {
    fs.writeFileSync(file, '');
  } catch (e) {
    process.stderr.write(`warning: cannot create ${file}: ${(e as Error).message}\n`);
  }
}
