/**
 * A thread of the finalisation pool (finalisePool.ts): waits for jobs and runs them one at a time.
 * Its modules are loaded when the pool starts (during the back-projection), not when the first
 * job arrives.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readMapSpectrum } from '../analysis/fsc.js';
import { isTomoError } from '../errors.js';
import { encodeMrc, writeMrcDeferred } from '../formats/mrc.js';
import { rfft3, useFft3 } from '../recon/fft.js';
import { collectGarbageAfter } from './collectGarbage.js';
import { WasmArena } from '../recon/wasmArena.js';
import { WasmRfft } from '../recon/wasmFft.js';
import { memoryOf, tailOf, wasmVolume } from '../recon/wasmVolume.js';
import type { PoolJob, PoolReply } from './finalisePool.js';
import { fileBufferFor, writeMaps, writeTag, writeWeightFile } from './outputs.js';
import { runSymmetryWork } from './symmetry.js';

/**
 * A fresh isolate runs the kernels unoptimised at first: the first 128³ tag took 1.6–1.8× as long
 * as the next. One small tag (32³, in memory, no files) when the thread starts gets them compiled
 * (measured: 65 ms of CPU per thread, during the first tilt series' loading; the finalisation then
 * took 0.09 s less at box 128). When it is worth it: worthWarmingUp in finalisePool.ts.
 */
function warmUp(): void {
  const s = 32;
  const n = (s / 2 + 1) * s * s;
  const data = new Float64Array(2 * n);
  const weight = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    data[2 * i] = Math.sin(i);
    data[2 * i + 1] = Math.cos(3 * i);
    weight[i] = 1 + (i % 7);
  }
  const encode = (_: string, d: Float32Array | Float64Array, nx: number, ny: number, nz: number, px: number): void => void encodeMrc(d, nx, ny, nz, px);
  writeTag('warm-up', { data, weight }, { s, crop: -1, taper: 4, snr: -1, pixelSize: 1, outDir: '' }, encode);
  const map = new Float64Array(s * s * s).fill(1);
  rfft3(map, s, s, s);
}

if ((workerData as { warmUp?: boolean } | null)?.warmUp) warmUp();

/**
 * The WebAssembly FFT over the room after `data`, an array in a WebAssembly memory of its own
 * (wasmVolume.ts), made this thread's 3-D transform (useFft3); the same array through the FFT's
 * own buffer object (the FFT knows its arrays by that object), or
 * null where it cannot be made (the JavaScript FFT then does the box).
 */
function fftAfter(data: Float64Array, memory: WebAssembly.Memory, s: number): Float64Array | null {
  const arena = WasmArena.wrap(memory, tailOf(data));
  const fft = arena && WasmRfft.create(arena, s, s, s);
  if (!fft) return null;
  useFft3(fft);
  return new Float64Array(arena!.buffer, data.byteOffset, data.length);
}

/**
 * A half map's spectrum is transformed in a WebAssembly memory of its own, and is then the start
 * of it (readMapSpectrum): it goes to the calling thread shared, not copied (this thread lets go
 * of it at once after, collectGarbageAfter). Null (rfft3 in JavaScript, its spectrum then
 * transferred) where the WebAssembly FFT does not do the box.
 */
function spectrumWork(n: number): Float64Array | null {
  const v = wasmVolume(n);
  return v && fftAfter(v, memoryOf(v)!, n);
}

/**
 * The job's data sums where this thread's WebAssembly FFT transforms them in place, or null (the
 * JavaScript FFT does): when they come in a WebAssembly memory of their own (wasmVolume.ts), as
 * the local run's, the coordinator's, symmetrised, merged and checkpoint-read sums do when a pool
 * finalises them.
 */
function inOwnMemory(job: { data: Float64Array; options: { s: number }; memory?: WebAssembly.Memory }): Float64Array | null {
  return job.memory ? fftAfter(job.data, job.memory, job.options.s) : null;
}
const port = parentPort!;
port.on('message', async (job: PoolJob) => {
  let reply: PoolReply;
  let transfer: ArrayBuffer[] = [];
  // The files' fsyncs run in libuv's pool while the next volume is computed; the job is done
  // when every file is in place (also when a step failed: no file is left half-way).
  const pending: Promise<void>[] = [];
  const write = (...args: Parameters<typeof writeMrcDeferred>): void => {
    const p = writeMrcDeferred(...args);
    p.catch(() => {}); // awaited below
    pending.push(p);
  };
  let wasm = false;
  let sharedSpectrumBytes = 0;
  try {
    if (job.type === 'weight' || job.type === 'maps') {
      try {
        if (job.type === 'weight') writeWeightFile(job.tag, job.weight, job.options, write);
        else {
          const data = inOwnMemory(job);
          wasm = data !== null;
          try {
            writeMaps(job.tag, { data: data ?? job.data, weight: job.weight }, job.options, write);
          } finally {
            // Sums in a memory of their own: consumed; nothing here may keep that memory alive
            // (the engine would until the next job, a whole volume per thread).
            if (job.memory) {
              const bytes = job.data.byteLength;
              useFft3(null);
              job.data = new Float64Array(0);
              job.memory = undefined;
              collectGarbageAfter(bytes);
            }
          }
        }
      } finally {
        const failed = (await Promise.allSettled(pending)).find((r) => r.status === 'rejected');
        if (failed) throw (failed as PromiseRejectedResult).reason;
      }
      // A lent ordinary weight goes back for the maps job (a shared one is still there).
      if (job.type === 'weight' && job.weight.buffer instanceof ArrayBuffer) {
        reply = { ok: true, result: { weight: job.weight } };
        transfer = [job.weight.buffer];
      } else {
        reply = wasm ? { ok: true, result: { fft: 'WebAssembly' as const } } : { ok: true };
      }
    } else if (job.type === 'symmetrise') {
      runSymmetryWork(job.work);
      reply = { ok: true };
    } else {
      let mine;
      try {
        mine = readMapSpectrum(job.file, fileBufferFor, spectrumWork);
      } finally {
        useFft3(null);
      }
      reply = { ok: true, result: { header: mine.header, spectrum: mine.spectrum } };
      // In shared memory (WebAssembly) it goes over as it is; an ordinary array is transferred.
      if (mine.spectrum.buffer instanceof ArrayBuffer) transfer = [mine.spectrum.buffer];
      else sharedSpectrumBytes = mine.spectrum.byteLength;
    }
  } catch (e) {
    reply = { ok: false, message: (e as Error).message, tomo: isTomoError(e), stack: (e as Error).stack };
  }
  port.postMessage(reply, transfer);
  // A spectrum that went over in shared memory: this thread's objects of it are collected once
  // this turn has let go of them (see collectGarbageAfter; an idle thread would keep them).
  if (sharedSpectrumBytes > 0) setImmediate(() => collectGarbageAfter(sharedSpectrumBytes));
});
