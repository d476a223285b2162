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
import { collectGarbage } from './collectGarbage.js';
import { finaliseVolume } from './finaliseArena.js';
import { WasmArena } from '../recon/wasmArena.js';
import { WasmRfft } from '../recon/wasmFft.js';
import { tailOf } from '../recon/wasmVolume.js';
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

/** The arena's volume to transform a half map in for the FSC (readMapSpectrum), when there is one. */
function spectrumWork(n: number): Float64Array | null {
  const v = finaliseVolume(n);
  if (!v) return null;
  useFft3(v.fft);
  return v.data;
}

/**
 * The job's data sums where this thread's WebAssembly FFT can transform them, or null (the
 * JavaScript FFT does): in place when they come in a WebAssembly memory of their own
 * (wasmVolume.ts); else copied into this thread's arena when there is one for the box
 * (finaliseArena.ts), the transferred sums freed at once, so that the copy does not add to the
 * memory the run plans.
 */
function inArena(job: { data: Float64Array; options: { s: number }; memory?: WebAssembly.Memory }): Float64Array | null {
  // Sums in a WebAssembly memory of their own (wasmVolume.ts): transformed where they are.
  if (job.memory) {
    const arena = WasmArena.wrap(job.memory, tailOf(job.data));
    const fft = arena && WasmRfft.create(arena, job.options.s, job.options.s, job.options.s);
    if (fft) {
      useFft3(fft);
      // The same memory through the arena's own buffer object (the engine knows its arrays by it).
      return new Float64Array(arena.buffer, job.data.byteOffset, job.data.length);
    }
  }
  const v = finaliseVolume(job.options.s);
  if (!v || v.data.length !== job.data.length) return null;
  v.data.set(job.data);
  job.data = v.data;
  collectGarbage();
  useFft3(v.fft);
  return v.data;
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
  try {
    if (job.type === 'weight' || job.type === 'maps') {
      try {
        if (job.type === 'weight') writeWeightFile(job.tag, job.weight, job.options, write);
        else {
          const data = inArena(job);
          wasm = data !== null;
          try {
            writeMaps(job.tag, { data: data ?? job.data, weight: job.weight }, job.options, write);
          } finally {
            // Sums in a memory of their own: consumed; nothing here may keep that memory alive
            // (the engine would until the next job, a whole volume per thread).
            if (job.memory) {
              useFft3(null);
              job.data = new Float64Array(0);
              job.memory = undefined;
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
      const mine = readMapSpectrum(job.file, fileBufferFor, spectrumWork);
      reply = { ok: true, result: { header: mine.header, spectrum: mine.spectrum } };
      transfer = [mine.spectrum.buffer as ArrayBuffer];
    }
  } catch (e) {
    reply = { ok: false, message: (e as Error).message, tomo: isTomoError(e), stack: (e as Error).stack };
  }
  port.postMessage(reply, transfer);
});
