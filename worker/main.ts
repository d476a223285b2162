/**
 * `tomorecon worker --nats URL --run-id ID [--mem GB] [--threads N] [--zmq-bind ADDR] [auth/TLS]`.
 * Loaded lazily by the CLI, so the library never loads networking code.
 */
import { workerOptionsFromArgs } from '../src/distributed/flags.js';
import { WorkerProcess } from './worker.js';

export async function runWorker(args: Record<string, unknown>): Promise<void> {
  const o = workerOptionsFromArgs(args);
  await new WorkerProcess(o).run();
}
