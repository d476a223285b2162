/**
 * The local engine: accumulates every particle of every tomogram into two half-set accumulator
 * pairs, using worker threads that share the tilt-series pixels (SharedArrayBuffer) and pull
 * particles from a shared counter, or the calling thread when threads = 0.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { TomoError } from '../errors.js';
import { Accumulator, accumulatorBytes, createAccumulator } from '../recon/backproject.js';
import { KernelWorkspace, buildTomogramTables, particleRecordLength, processParticle } from '../recon/particleKernel.js';
import { ReconstructOptions } from './options.js';
import { RunPlan } from './plan.js';
import { Progress } from './progress.js';
import { loadTiltStack, stackBytes } from './tiltStack.js';
import { noiseWeightStack } from '../physics/noise.js';
import { Tomogram } from '../model/tomogramSet.js';

const GiB = 1024 ** 3;

export interface MemoryPlan {
  threads: number;
  perThreadBytes: number;
  sharedBytes: number;
  finaliseBytes: number;
  /** Tags (half1, half2, merged) finalised at once, ≤ --j. */
  finaliseThreads: number;
  totalBytes: number;
}

/**
 * Every large buffer of a run: per thread two accumulator pairs plus kernel scratch and the
 * per-tomogram dose tables; shared, the largest tilt stack and its particle records; at the end,
 * the summed halves, the merged pair and the finalisation volumes (about six s³ doubles).
 */
export function planMemory(plan: RunPlan, o: ReconstructOptions): MemoryPlan {
  const { s, s0 } = plan.kernel;
  const sh = (s >> 1) + 1;
  let maxStack = 0;
  let maxTables = 0;
  let maxRecords = 0;
  for (const w of plan.work) {
    maxStack = Math.max(maxStack, stackBytes(w.tomogram));
    maxTables = Math.max(maxTables, w.tomogram.frameCount * (sh * s * 4 + s * 4));
    maxRecords = Math.max(maxRecords, w.records.byteLength);
  }
  const perThreadBytes = 2 * accumulatorBytes(s) + KernelWorkspace.bytes(s, s0) + maxTables;
  const sharedBytes = maxStack + maxRecords;
  // Per tag being finalised: its sums plus about six s³ doubles of working volumes.
  const perTagBytes = accumulatorBytes(s) + 6 * s * s * s * 8;
  let finaliseThreads = Math.min(o.j, plan.hasHalfSets ? 3 : 1);
  let threads = o.threads ?? Math.min(o.jOut * o.jIn, os.availableParallelism());
  if (o.mem > 0) {
    const budget = o.mem * GiB;
    const minimum = Math.max(sharedBytes + perThreadBytes, 3 * accumulatorBytes(s) + perTagBytes);
    if (budget < minimum) {
      throw new TomoError(
        `--mem ${o.mem} GB cannot hold one accumulator set for --b ${s} and the largest tilt series: at least ${(minimum / GiB).toFixed(3)} GB is needed`,
      );
    }
    const fit = Math.max(1, Math.floor((budget - sharedBytes) / perThreadBytes));
    if (threads > 0) threads = Math.min(threads, fit);
    const tagFit = Math.floor((budget - 3 * accumulatorBytes(s)) / perTagBytes);
    finaliseThreads = Math.max(1, Math.min(finaliseThreads, tagFit));
  }
  const finaliseBytes = 3 * accumulatorBytes(s) + finaliseThreads * perTagBytes;
  const totalBytes = Math.max(sharedBytes + Math.max(1, threads) * perThreadBytes, finaliseBytes);
  return { threads, perThreadBytes, sharedBytes, finaliseBytes, finaliseThreads, totalBytes };
}

export interface AccumulationResult {
  halves: [Accumulator, Accumulator];
  particles: number;
}

export async function accumulate(plan: RunPlan, threads: number, progress: Progress): Promise<AccumulationResult> {
  return threads <= 0 ? accumulateInThread(plan, progress) : accumulateWithWorkers(plan, threads, progress);
}

function accumulateInThread(plan: RunPlan, progress: Progress): AccumulationResult {
  const ws = new KernelWorkspace(plan.kernel);
  const halves: [Accumulator, Accumulator] = [createAccumulator(plan.kernel.s), createAccumulator(plan.kernel.s)];
  for (const w of plan.work) {
    const stack = loadTiltStack(w.tomogram, false);
    const tables = buildTomogramTables(plan.kernel, w.geometry, stack, noiseWeightsFor(plan, w.tomogram, stack, false));
    const len = particleRecordLength(w.geometry.frameCount);
    for (let k = 0; k < w.particleCount; k++) {
      processParticle(ws, tables, w.records, k * len, halves);
      progress.tick();
    }
  }
  return { halves, particles: plan.totalParticles };
}

async function accumulateWithWorkers(plan: RunPlan, threads: number, progress: Progress): Promise<AccumulationResult> {
  const workerUrl = new URL('./worker.js', import.meta.url);
  const workers: Worker[] = [];
  for (let i = 0; i < threads; i++) workers.push(new Worker(workerUrl, { workerData: { kernel: plan.kernel } }));
  const failure = { error: null as Error | null };
  const waiters = new Set<() => void>();
  const pending: Array<{ remaining: number; resolve: () => void }> = [];
  const results: Float64Array[][] = [];

  const fail = (e: Error): void => {
    if (!failure.error) failure.error = e;
    for (const p of pending.splice(0)) p.resolve();
    for (const w of waiters) w();
  };
  for (const w of workers) {
    w.on('message', (m: { type: string; particles?: number; buffers?: Float64Array[]; message?: string; tomo?: boolean; stack?: string }) => {
      if (m.type === 'progress' || m.type === 'tomogramDone') {
        if (m.particles) progress.tick(m.particles);
        if (m.type === 'tomogramDone' && pending.length > 0) {
          const p = pending[0];
          if (--p.remaining === 0) {
            pending.shift();
            p.resolve();
          }
        }
      } else if (m.type === 'result') {
        results.push(m.buffers!);
        for (const r of waiters) r();
      } else if (m.type === 'error') {
        fail(m.tomo ? new TomoError(m.message!) : Object.assign(new Error(m.message), { stack: m.stack }));
      }
    });
    w.on('error', (e) => fail(e));
    w.on('exit', (code) => {
      if (code !== 0) fail(new Error(`a worker thread exited with code ${code}`));
    });
  }

  try {
    for (const work of plan.work) {
      const stack = loadTiltStack(work.tomogram, true);
      const noise = noiseWeightsFor(plan, work.tomogram, stack, true);
      const records = new Float64Array(new SharedArrayBuffer(work.records.byteLength));
      records.set(work.records);
      const counter = new Int32Array(new SharedArrayBuffer(4));
      await new Promise<void>((resolve) => {
        pending.push({ remaining: workers.length, resolve });
        for (const w of workers) {
          w.postMessage({
            type: 'tomogram',
            geometry: work.geometry,
            stack,
            noise,
            records,
            recordLength: particleRecordLength(work.geometry.frameCount),
            count: work.particleCount,
            counter,
          });
        }
      });
      if (failure.error) throw failure.error;
    }
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (results.length === workers.length || failure.error) {
          waiters.delete(check);
          resolve();
        }
      };
      waiters.add(check);
      for (const w of workers) w.postMessage({ type: 'finish' });
    });
    if (failure.error) throw failure.error;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  // Sum the threads' accumulators (RELION folds threads ≥ 1 into thread 0 the same way).
  const [d0, w0, d1, w1] = results[0];
  for (let r = 1; r < results.length; r++) {
    addInto(d0, results[r][0]);
    addInto(w0, results[r][1]);
    addInto(d1, results[r][2]);
    addInto(w1, results[r][3]);
  }
  return { halves: [{ data: d0, weight: w0 }, { data: d1, weight: w1 }], particles: plan.totalParticles };
}

/** --whiten: noise weights of every frame, computed once per tomogram (shared with the threads). */
function noiseWeightsFor(plan: RunPlan, t: Tomogram, stack: Float32Array, shared: boolean): Float32Array | null {
  if (!plan.kernel.whiten) return null;
  const { s, s0, bin } = plan.kernel;
  const g = noiseWeightStack(stack, t.imageW, t.imageH, t.frameCount, s, s0, bin);
  if (!shared) return g;
  const out = new Float32Array(new SharedArrayBuffer(g.byteLength));
  out.set(g);
  return out;
}

function addInto(a: Float64Array, b: Float64Array): void {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}
