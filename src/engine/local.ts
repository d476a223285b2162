/**
 * The local engine: accumulates every particle of every tomogram into two half-set accumulator
 * pairs, using worker threads that share the tilt-series pixels (SharedArrayBuffer) and pull
 * particles from a shared counter, or the calling thread when threads = 0.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { JobAborted, TomoError } from '../errors.js';
import { Accumulator, accumulatorBytes, createAccumulator } from '../recon/backproject.js';
import { foldSphere, insertionRuns } from '../recon/insertion.js';
import { KernelWorkspace, buildTomogramTables, evenAberrationTables, particleRecordLength, processParticle } from '../recon/particleKernel.js';
import { ReconstructOptions } from './options.js';
import { RunPlan, TomogramWork } from './plan.js';
import type { TomogramMessage, WorkerReply } from './worker.js';
import { Progress } from './progress.js';
import { loadTiltStack, stackBytes } from './tiltStack.js';
import { noiseWeightStack } from '../physics/noise.js';
import { Tomogram } from '../model/tomogramSet.js';
import { PhaseTimes } from './phases.js';
import { wasmVolume } from '../recon/wasmVolume.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
/**
 * Memory of the Node.js runtime itself (code, V8 heaps, one isolate per thread), measured as peak
 * RSS minus the planned buffers: 76 MiB with one thread and 86 MiB with two at --b 48, 102 MiB
 * with two at --b 128 (more garbage-collector slack). Counted so that --mem caps the whole process.
 */
export const RUNTIME_BYTES = 80 * MiB;
const RUNTIME_PER_THREAD_BYTES = 15 * MiB;

/**
 * What the run's plan holds beyond the runtime, per particle: reading its STAR rows (strings, at
 * the planning's peak) and its parsed record. Measured: 100 000 particles in 20 tomograms, 320 MiB
 * RSS after planning against the 80 MiB runtime, i.e. ~2.5 KiB each. Plus every tomogram's packed
 * records, kept for the run.
 */
const PLAN_BYTES_PER_PARTICLE = 2560;
export function planBytes(plan: RunPlan): number {
  let records = 0;
  for (const w of plan.work) records += w.records.byteLength;
  return plan.totalParticles * PLAN_BYTES_PER_PARTICLE + records;
}

/** Idle threads of the finalisation pool (their isolates), held from the start of the run. */
export function finalisationIdleBytes(threads: number): number {
  return threads * RUNTIME_PER_THREAD_BYTES;
}

/**
 * A thread of the finalisation pool: its isolate (measured: 10–11 MiB idle with its modules
 * loaded; counted as any other thread's) and the float32 volume it writes files from. (It
 * transforms sums, and the half maps for the FSC, where they are: in WebAssembly memories of
 * their own, wasmVolume.ts, counted with them.)
 */
export function finalisationThreadBytes(s: number): number {
  return finalisationIdleBytes(1) + 4 * s * s * s;
}

/**
 * Finalisation and report with `threads` pool threads (0: all in the calling thread): the sums of
 * half1, half2 and merged (each tag is finalised in place in its own sums); with half sets the
 * two half-map spectra of the FSC (2·(s/2+1)·s² doubles each) that the report takes; the threads;
 * one float32 volume in the calling thread (the merged map the report reads; without a pool, the
 * files' buffer). The Node.js runtime is not included.
 */
export function finalisationBytes(s: number, hasHalfSets: boolean, threads: number): number {
  const sh = (s >> 1) + 1;
  const spectra = hasHalfSets ? 2 * 16 * sh * s * s : 0;
  return 3 * accumulatorBytes(s) + spectra + threads * finalisationThreadBytes(s) + 4 * s * s * s;
}

/**
 * Threads of the finalisation pool: one per tag (half1, half2, merged), up to --j. The pool starts
 * with the run, so its threads' start-up (which used to cost more than it saved below box 160)
 * is hidden behind the back-projection. `budget` (bytes, ≤ 0 = none) is what finalisationBytes
 * may use; 0 when not even one thread fits (then the calling thread finalises, without a pool).
 */
export function finalisationThreads(s: number, hasHalfSets: boolean, j: number, budget: number): number {
  const threads = Math.max(1, Math.min(j, hasHalfSets ? 3 : 1));
  if (budget <= 0) return threads;
  const fit = Math.floor((budget - finalisationBytes(s, hasHalfSets, 0)) / finalisationThreadBytes(s));
  return Math.max(0, Math.min(threads, fit));
}

export interface MemoryPlan {
  threads: number;
  perThreadBytes: number;
  sharedBytes: number;
  finaliseBytes: number;
  /** Threads of the finalisation pool (≤ --j; 0: no pool, the calling thread finalises). */
  finaliseThreads: number;
  totalBytes: number;
}

/**
 * Every large buffer of a run, and the runtime: per thread up to two half-set accumulators plus
 * kernel scratch, the per-tomogram dose tables and its isolate; shared, the largest tilt stack and
 * its particle records, the running sums, the Node.js runtime and the idle finalisation pool; at
 * the end, the summed halves, the merged pair, the pool and the half-map spectra.
 */
export function planMemory(plan: RunPlan, o: ReconstructOptions): MemoryPlan {
  const { s, s0 } = plan.kernel;
  const sh = (s >> 1) + 1;
  let maxStack = 0;
  let maxTables = 0;
  for (const w of plan.work) {
    maxStack = Math.max(maxStack, stackBytes(w.tomogram));
    maxTables = Math.max(maxTables, w.tomogram.frameCount * (sh * s * 4 + s * 4));
  }
  const perThreadBytes = 2 * accumulatorBytes(s) + KernelWorkspace.bytes(s, s0, evenAberrationTables(plan.kernel)) + maxTables + RUNTIME_PER_THREAD_BYTES;
  const budget = o.mem > 0 ? o.mem * GiB : 0;
  // Every tomogram's records and the particle set stay for the whole run (100 000 particles: ~240 MiB).
  const planned = planBytes(plan);
  let sharedBytes = maxStack + planned + RUNTIME_BYTES;
  let threads = o.threads ?? Math.min(o.jOut * o.jIn, os.availableParallelism());
  if (budget > 0) {
    const minimum = Math.max(sharedBytes + perThreadBytes + 2 * accumulatorBytes(s), RUNTIME_BYTES + finalisationBytes(s, plan.hasHalfSets, 0));
    if (budget < minimum) {
      throw new TomoError(
        `--mem ${o.mem} GB cannot hold one accumulator set for --b ${s} and the largest tilt series: at least ${(minimum / GiB).toFixed(3)} GB is needed`,
      );
    }
    const fit = Math.max(1, Math.floor((budget - sharedBytes - 2 * accumulatorBytes(s)) / perThreadBytes));
    if (threads > 0) threads = Math.min(threads, fit);
  }
  // While accumulating, the main thread also holds the running sums of both halves.
  const accumulationBytes = sharedBytes + Math.max(1, threads) * perThreadBytes + 2 * accumulatorBytes(s);
  // The pool gets what the accumulation threads leave: its isolates are alive (idle) from the start
  // of the run. Without worker threads (o.threads = 0) or maps (--no_recon) there is none.
  let finaliseThreads = 0;
  if (o.threads !== 0 && !o.noRecon) {
    finaliseThreads = finalisationThreads(s, plan.hasHalfSets, o.j, budget > 0 ? budget - RUNTIME_BYTES : 0);
    if (budget > 0) finaliseThreads = Math.min(finaliseThreads, Math.floor((budget - accumulationBytes) / finalisationIdleBytes(1)));
    sharedBytes += finalisationIdleBytes(finaliseThreads);
  }
  const finaliseBytes = RUNTIME_BYTES + planned + finalisationBytes(s, plan.hasHalfSets, finaliseThreads);
  // Symmetrisation holds the sums, shared copies of them and the symmetrised halves; it runs on
  // the pool when that has min(--j, cores) threads, otherwise on one new isolate per --j thread.
  const symmetric = !/^[cC]1$/.test(o.sym) || o.nrHelicalAsu > 1;
  const freshSymmetryThreads = threads > 0 && finaliseThreads < Math.min(o.j, os.availableParallelism()) ? o.j : 0;
  const symmetryBytes = symmetric
    ? RUNTIME_BYTES + planned + 6 * accumulatorBytes(s) + finalisationIdleBytes(finaliseThreads) + freshSymmetryThreads * RUNTIME_PER_THREAD_BYTES
    : 0;
  // Symmetrisation cannot run in less (it keeps six accumulator sets): refused, not over the cap.
  if (budget > 0 && symmetryBytes > budget) {
    throw new TomoError(
      `--mem ${o.mem} GB cannot hold the symmetrisation (--sym ${o.sym}${o.nrHelicalAsu > 1 ? `, ${o.nrHelicalAsu} helical units` : ''}) at --b ${s}: it keeps six accumulator sets, at least ${(symmetryBytes / GiB).toFixed(3)} GB is needed`,
    );
  }
  const totalBytes = Math.max(accumulationBytes + finalisationIdleBytes(finaliseThreads), symmetryBytes, finaliseBytes);
  return { threads, perThreadBytes, sharedBytes, finaliseBytes, finaliseThreads, totalBytes };
}

export interface AccumulationResult {
  halves: [Accumulator, Accumulator];
  /** Tomograms back-projected by this run (not taken from a checkpoint). */
  tomogramsProcessed: number;
}

export interface AccumulationState {
  /** Sums so far (from a checkpoint, or zero). Tomogram sums are added to them in set order. */
  halves: [Accumulator, Accumulator];
  /** Tomogram indices already in `halves`. */
  done: Set<number>;
  /**
   * Asked after each tomogram but the last: whether the threads' sums are to be folded into
   * `halves` now (for a checkpoint). When not, the threads go on adding the next tomogram into
   * their own sums, and one fold later covers both: a fold is a pass over every thread's sums
   * while the threads wait (27 ms per tomogram at box 128 with two threads). Absent: never.
   */
  checkpointDue?: () => boolean;
  /**
   * Called after each fold, with whether it was the last tomogram's; `done` then lists every
   * tomogram in `halves`, which are not changed until it settles.
   */
  onFolded?: (last: boolean) => void | Promise<void>;
  /**
   * Asked before each tomogram (RELION's pipeline abort): when it says so, the tomograms done so
   * far are folded (and checkpointed by onFolded) and the run ends with a JobAborted error.
   */
  abortRequested?: () => string | null;
  phases: PhaseTimes;
}

export async function accumulate(
  plan: RunPlan,
  threads: number,
  progress: Progress,
  state: AccumulationState,
): Promise<AccumulationResult> {
  const todo = plan.work.filter((w) => !state.done.has(w.tomogram.index));
  for (const w of plan.work) if (state.done.has(w.tomogram.index)) progress.tick(w.particleCount);
  const engine = threads <= 0 ? new InThreadEngine(plan) : new WorkerEngine(plan, threads, progress);
  const phases = state.phases;
  // One pixel buffer, the size of the largest tilt series, reused for every tomogram.
  const largest = Math.max(0, ...todo.map((w) => stackBytes(w.tomogram)));
  const pixels = new Float32Array(threads > 0 ? new SharedArrayBuffer(largest) : new ArrayBuffer(largest));
  const sphere = insertionRuns(plan.kernel.s, 1);
  // The run's sums are zero until the first fold, unless they come from a checkpoint.
  const zeroSums = [state.done.size === 0, state.done.size === 0];
  // Back-projected into the threads' sums but not yet folded into the run's.
  const unfolded: number[] = [];
  // Fold every thread's sums into the run's and zero them for the next tomogram (not after the
  // last one), over the insertion sphere only (the rest is zero in both); sums still zero are
  // copied into rather than added to (their pages not read before being written).
  const fold = async (sums: HalfPair[], last: boolean): Promise<void> => {
    phases.time('back-projection', () => {
      for (const part of sums) {
        for (const h of [0, 1]) {
          const a = part[h];
          if (!a) continue;
          foldSphere(state.halves[h], a, sphere, zeroSums[h], !last);
          zeroSums[h] = false;
        }
      }
    });
    for (const t of unfolded) state.done.add(t);
    unfolded.length = 0;
    if (state.onFolded) await phases.timeAsync('checkpoints', async () => state.onFolded!(last));
  };
  let previous: HalfPair[] | null = null;
  try {
    for (const w of todo) {
      const abort = state.abortRequested?.();
      if (abort) {
        // The tomograms back-projected so far are kept (checkpointed) for --only_do_unfinished.
        if (previous && unfolded.length > 0) await fold(previous, false);
        throw new JobAborted(`${abort}: stopped before tomogram ${w.tomogram.name} (${state.done.size} of ${plan.work.length} tomograms done)`);
      }
      let sums: HalfPair[];
      if (engine instanceof WorkerEngine && !plan.kernel.whiten) {
        // The threads start on the first frames while the main thread reads the rest (the
        // noise weights of --whiten need the whole stack first).
        const loaded = new Int32Array(new SharedArrayBuffer(8));
        const stack = pixels.subarray(0, stackBytes(w.tomogram) / 4);
        const running = engine.run(w, stack, null, progress, loaded);
        try {
          phases.time('load', () =>
            loadTiltStack(w.tomogram, pixels, (n) => {
              Atomics.store(loaded, 0, n);
              Atomics.notify(loaded, 0);
            }),
          );
        } catch (e) {
          Atomics.store(loaded, 1, 1);
          Atomics.notify(loaded, 0);
          await running.catch(() => {});
          throw e;
        }
        sums = await phases.timeAsync('back-projection', () => running);
      } else {
        const loaded = phases.time('load', () => {
          const stack = loadTiltStack(w.tomogram, pixels);
          return { stack, noise: noiseWeightsFor(plan, w.tomogram, stack, threads > 0) };
        });
        sums = await phases.timeAsync('back-projection', () => engine.run(w, loaded.stack, loaded.noise, progress));
      }
      unfolded.push(w.tomogram.index);
      previous = sums;
      const last = w === todo[todo.length - 1];
      if (!last && !state.checkpointDue?.()) continue;
      await fold(sums, last);
    }
  } finally {
    await engine.close();
  }
  return { halves: state.halves, tomogramsProcessed: todo.length };
}

/**
 * Zero sums of both half sets. `wasmData`: their data arrays in WebAssembly memories of their
 * own (wasmVolume), so that finalisation threads transform them in place with the WebAssembly
 * FFT; ordinary arrays where that cannot be made.
 */
export function zeroHalves(s: number, wasmData = false): [Accumulator, Accumulator] {
  const half = (): Accumulator => {
    const data = wasmData ? wasmVolume(s) : null;
    return data ? { data, weight: new Float64Array(data.length / 2) } : createAccumulator(s);
  };
  return [half(), half()];
}

/** A thread's sums for one tomogram; a half it never touched is null. */
type HalfPair = [Accumulator | null, Accumulator | null];

/** Back-projects one tomogram; returns each thread's accumulators, which the caller folds and zeroes. */
interface Engine {
  run(w: TomogramWork, stack: Float32Array, noise: Float32Array | null, progress: Progress): Promise<HalfPair[]>;
  close(): Promise<void>;
}

class InThreadEngine implements Engine {
  private readonly ws: KernelWorkspace;
  private readonly halves: [Accumulator, Accumulator];
  constructor(private readonly plan: RunPlan) {
    this.ws = new KernelWorkspace(plan.kernel);
    this.halves = zeroHalves(plan.kernel.s);
  }

  async run(w: TomogramWork, stack: Float32Array, noise: Float32Array | null, progress: Progress): Promise<HalfPair[]> {
    const halves = this.halves;
    const tables = buildTomogramTables(this.plan.kernel, w.geometry, stack, noise);
    const len = particleRecordLength(w.geometry.frameCount);
    for (let k = 0; k < w.particleCount; k++) {
      processParticle(this.ws, tables, w.records, k * len, halves);
      progress.tick();
    }
    return [halves];
  }

  async close(): Promise<void> {}
}

/**
 * Worker threads share the tilt stack (SharedArrayBuffer) and claim particles from shared
 * counters; their accumulators are shared memory too, so at the end of each tomogram the main
 * thread folds them into exact per-tomogram sums (for checkpoints) without copies.
 */
class WorkerEngine implements Engine {
  private readonly workers: Worker[] = [];
  /** Each thread's shared accumulators by half, as the threads create them. */
  private readonly accumulators: HalfPair[] = [];
  private failure: Error | null = null;
  private waiting: { remaining: number; resolve: () => void } | null = null;

  constructor(
    private readonly plan: RunPlan,
    threads: number,
    progress: Progress,
  ) {
    const url = new URL('./worker.js', import.meta.url);
    for (let i = 0; i < threads; i++) {
      const w = new Worker(url, { workerData: { kernel: plan.kernel } });
      this.accumulators.push([null, null]);
      w.on('message', (m: WorkerReply) => this.onMessage(i, m, progress));
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => {
        if (code !== 0 && code !== 1) this.fail(new Error(`a worker thread exited with code ${code}`));
      });
      this.workers.push(w);
    }
  }

  private onMessage(thread: number, m: WorkerReply, progress: Progress): void {
    if (m.type === 'progress') {
      progress.tick(m.particles);
    } else if (m.type === 'tomogramDone') {
      progress.tick(m.particles);
      for (const h of [0, 1]) this.accumulators[thread][h] ??= m.created[h];
      const wait = this.waiting;
      if (!wait) return;
      if (--wait.remaining === 0) {
        this.waiting = null;
        wait.resolve();
      }
    } else if (m.type === 'error') {
      this.fail(m.tomo ? new TomoError(m.message) : Object.assign(new Error(m.message), { stack: m.stack }));
    }
  }

  private fail(e: Error): void {
    if (!this.failure) this.failure = e;
    const wait = this.waiting;
    this.waiting = null;
    wait?.resolve();
  }

  /** `loaded`: see TomogramMessage (the stack is still being read); null when it is complete. */
  async run(w: TomogramWork, stack: Float32Array, noise: Float32Array | null, _progress?: Progress, loaded: Int32Array | null = null): Promise<HalfPair[]> {
    if (this.failure) throw this.failure;
    const records = new Float64Array(new SharedArrayBuffer(w.records.byteLength));
    records.set(w.records);
    const len = particleRecordLength(w.geometry.frameCount);
    // Half-1 particles first, then half 2 (the half is the first number of each record).
    const order = new Int32Array(new SharedArrayBuffer(4 * w.particleCount));
    let split = 0;
    for (let k = 0; k < w.particleCount; k++) if (w.records[k * len] === 0) order[split++] = k;
    let j = split;
    for (let k = 0; k < w.particleCount; k++) if (w.records[k * len] !== 0) order[j++] = k;
    const counters = new Int32Array(new SharedArrayBuffer(8));
    await new Promise<void>((resolve) => {
      this.waiting = { remaining: this.workers.length, resolve };
      this.workers.forEach((worker, i) => {
        const msg: TomogramMessage = {
          type: 'tomogram',
          geometry: w.geometry,
          stack,
          noise,
          records,
          recordLength: len,
          order,
          split,
          count: w.particleCount,
          counters,
          home: this.plan.hasHalfSets ? ((i % 2) as 0 | 1) : 0,
          loaded,
        };
        worker.postMessage(msg);
      });
    });
    if (this.failure) throw this.failure;
    return this.accumulators;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
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

