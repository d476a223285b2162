/**
 * A thread of the finalisation pool (finalisePool.ts): waits for jobs and runs them one at a time.
 * Its modules are loaded when the pool starts (during the back-projection), not when the first
 * job arrives.
 */
import { parentPort } from 'node:worker_threads';
import { readMapSpectrum } from '../analysis/fsc.js';
import { isTomoError } from '../errors.js';
import type { PoolJob, PoolReply } from './finalisePool.js';
import { writeTag } from './outputs.js';

const port = parentPort!;
port.on('message', (job: PoolJob) => {
  let reply: PoolReply;
  let transfer: ArrayBuffer[] = [];
  try {
    if (job.type === 'tag') {
      writeTag(job.tag, { data: job.data, weight: job.weight }, job.options);
      reply = { ok: true };
    } else {
      const { header, spectrum } = readMapSpectrum(job.file);
      reply = { ok: true, result: { header, spectrum } };
      transfer = [spectrum.buffer as ArrayBuffer];
    }
  } catch (e) {
    reply = { ok: false, message: (e as Error).message, tomo: isTomoError(e), stack: (e as Error).stack };
  }
  port.postMessage(reply, transfer);
});
