/**
 * Worker thread that finalises and writes one tag (half1, half2 or merged), so that --j threads
 * can finalise the three tags at once.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isTomoError } from '../errors.js';
import { FinaliseOptions, writeTag } from './outputs.js';

const { tag, data, weight, options } = workerData as { tag: string; data: Float64Array; weight: Float64Array; options: FinaliseOptions };
try {
  writeTag(tag, { data, weight }, options);
  parentPort!.postMessage({ ok: true });
} catch (e) {
  parentPort!.postMessage({ ok: false, message: (e as Error).message, tomo: isTomoError(e), stack: (e as Error).stack });
}
