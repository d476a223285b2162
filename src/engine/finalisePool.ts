/**
 * The finalisation pool: a few worker threads started at the beginning of a run, so that isolate
 * start-up and module loading (measured: 29 ms of CPU and 10–11 MiB per thread) happen while the
 * tilt series are loaded and back-projected instead of at the end, where they used to cost more
 * than the threads saved below box 160. At the end of the run they are handed jobs: slabs to
 * symmetrise, a tag's weight file or maps to write, the spectrum or FSC of the written half maps.
 * Arrays go over without copies: ordinary buffers are transferred (the caller must not touch them
 * again), SharedArrayBuffers are shared.
 *
 * Idle threads wait on their message port: no CPU is taken from the back-projection (besides the
 * optional warm-up when they start, see finaliseWorker.ts). An idle pool does not keep the process
 * alive (threads are unref'd while no job runs).
 */
import { Worker } from 'node:worker_threads';
import { TomoError } from '../errors.js';
import type { MapSpectrum } from '../analysis/fsc.js';
import type { MrcHeader } from '../formats/mrc.js';
import type { FinaliseOptions } from './outputs.js';
import { memoryOf } from '../recon/wasmVolume.js';
import type { SymmetryWork } from './symmetry.js';

export type PoolJob =
  | { type: 'weight'; tag: string; weight: Float64Array; options: FinaliseOptions }
  /** `memory`: the WebAssembly memory `data` lives in (wasmVolume.ts), transformed there in place. */
  | { type: 'maps'; tag: string; data: Float64Array; weight: Float64Array; options: FinaliseOptions; memory?: WebAssembly.Memory }
  /** The map's spectrum (the half-map FSC compares two, finish.ts). */
  | { type: 'spectrum'; file: string }
  | { type: 'symmetrise'; work: SymmetryWork };

/** The rfft3 of a written map (see readMapSpectrum in src/analysis/fsc.ts). */
export interface SpectrumResult {
  header: MrcHeader;
  spectrum: Float64Array;
}

/** What a job gives back: a spectrum, or the weight a weight job was lent (an ordinary buffer). */
export type PoolResult = SpectrumResult | { weight: Float64Array } | undefined | { fft: 'WebAssembly' };

export type PoolReply = { ok: true; result?: PoolResult } | { ok: false; message: string; tomo: boolean; stack?: string };

interface Pending {
  job: PoolJob;
  transfer: ArrayBuffer[];
  resolve: (r: PoolResult) => void;
  reject: (e: Error) => void;
}

/**
 * Whether the pool's threads should warm their kernels up when they start (finaliseWorker.ts):
 * only when a back-projection follows to hide it behind, and for boxes whose first, cold tags cost
 * more than the warm-up. Measured on the benchmark (2 cores, alternating runs, medians of 7): at
 * box 128 the run took 0.07 s less with it, at box 64 0.03 s more.
 */
export function worthWarmingUp(s: number, backProjectionFollows: boolean): boolean {
  return backProjectionFollows && s >= 96;
}

/** The ordinary buffers among `arrays` (to transfer); shared ones are shared by postMessage itself. */
export function transferables(...arrays: Float64Array[]): ArrayBuffer[] {
  return arrays.map((a) => a.buffer).filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
}

export class FinalisationPool {
  private readonly workers: Worker[] = [];
  /** The job each thread runs, or null when idle. */
  private readonly busy: (Pending | null)[] = [];
  private readonly queue: Pending[] = [];
  private failure: Error | null = null;
  private closing = false;

  /**
   * `warmUp`: each thread runs its kernels once on a small volume when it starts (worth it when the
   * pool starts long enough before its first job, e.g. before a back-projection).
   */
  constructor(threads: number, { warmUp = true }: { warmUp?: boolean } = {}) {
    if (!(Number.isInteger(threads) && threads >= 1)) throw new RangeError(`a finalisation pool needs at least one thread, got ${threads}`);
    const url = new URL('./finaliseWorker.js', import.meta.url);
    for (let i = 0; i < threads; i++) {
      const w = new Worker(url, { workerData: { warmUp } });
      w.unref();
      w.on('message', (m: PoolReply) => this.onReply(i, m));
      w.on('error', (e) => this.fail(i, e));
      w.on('exit', (code) => {
        if (!this.closing) this.fail(i, new Error(`a finalisation thread exited with code ${code}`));
      });
      this.workers.push(w);
      this.busy.push(null);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /** Queues a job; it runs on the first free thread, in the order queued. */
  run(job: PoolJob, transfer: ArrayBuffer[] = []): Promise<PoolResult> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      if (this.closing) return reject(new Error('the finalisation pool is closed'));
      this.queue.push({ job, transfer, resolve, reject });
      this.dispatch();
    });
  }

  async spectrum(file: string): Promise<MapSpectrum> {
    return { file, ...((await this.run({ type: 'spectrum', file })) as SpectrumResult) };
  }

  /** Writes weight_<tag>.mrc; gives the weight back (the same array if shared, else the one transferred back). */
  async weight(tag: string, weight: Float64Array, options: FinaliseOptions): Promise<Float64Array> {
    const r = (await this.run({ type: 'weight', tag, weight, options }, transferables(weight))) as { weight: Float64Array } | undefined;
    return r?.weight ?? weight;
  }

  /**
   * Writes the tag's maps; its data sums are handed over (consumed), its weight lent. Resolves
   * to the FFT the thread used ('WebAssembly', where sums in a WebAssembly memory of their own
   * lie, wasmVolume.ts, or 'JavaScript').
   */
  async maps(tag: string, acc: { data: Float64Array; weight: Float64Array }, options: FinaliseOptions): Promise<'WebAssembly' | 'JavaScript'> {
    const memory = memoryOf(acc.data) ?? undefined;
    const r = (await this.run({ type: 'maps', tag, data: acc.data, weight: acc.weight, options, memory }, transferables(acc.data, acc.weight))) as { fft?: 'WebAssembly' } | undefined;
    return r?.fft ?? 'JavaScript';
  }

  /** Stops the threads (jobs still queued are rejected); safe to call more than once. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const gone = new Error('the finalisation pool was closed');
    for (const p of this.queue.splice(0)) p.reject(gone);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private dispatch(): void {
    for (let i = 0; i < this.workers.length && this.queue.length > 0 && !this.failure; i++) {
      if (this.busy[i]) continue;
      const p = this.queue.shift()!;
      this.busy[i] = p;
      // A thread with a job keeps the process alive until it answers.
      this.workers[i].ref();
      this.workers[i].postMessage(p.job, p.transfer);
    }
  }

  private onReply(i: number, m: PoolReply): void {
    const p = this.busy[i];
    this.busy[i] = null;
    this.workers[i].unref();
    if (p) {
      if (m.ok) p.resolve(m.result);
      else p.reject(m.tomo ? new TomoError(m.message) : Object.assign(new Error(m.message), { stack: m.stack }));
    }
    this.dispatch();
  }

  /**
   * Thread i died: its job, the queued ones and every later one fail. Jobs running on the other
   * threads are left to finish, so that no file is left half-written when the caller gives up.
   */
  private fail(i: number, e: Error): void {
    this.failure ??= e;
    this.busy[i]?.reject(e);
    this.busy[i] = null;
    for (const p of this.queue.splice(0)) p.reject(this.failure);
  }
}
