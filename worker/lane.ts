/**
 * A compute thread of a worker: back-projects the chunks it is given into its own accumulators
 * (shared memory, so that the worker's main thread reads them for the reduction without a copy).
 * It is started when the worker starts and set up by its first message ('init': kernel options,
 * accumulators, cache size), which comes once the worker has joined a run.
 * Chunks are processed frame by frame with processParticleFrame: for each tilt, one frame is
 * read (or taken from the cache) and every particle of the chunk is inserted from it, so only
 * the frames the memory plan allows are ever held.
 *
 * A chunk handed out *held* is back-projected into a scratch volume set, not into the
 * accumulators: it may be a copy that another worker finishes first (speculative re-dispatch of a
 * straggler's chunk). The thread reports it done and holds it until the coordinator's verdict
 * arrives: count (add the scratch into the accumulators and zero it) or drop (zero it). A held
 * copy can be cancelled while it runs (the main thread stores its token in a shared cell,
 * checked between frames): the partial sums are discarded. Nothing but a counted chunk ever
 * reaches the accumulators. A chunk handed out *direct* (the coordinator will count it: it never
 * races another copy) goes straight into the accumulators, without the extra pass.
 */
import { parentPort } from 'node:worker_threads';
import { isTomoError } from '../src/errors.js';
import { FrameCache } from '../src/distributed/frames.js';
import { LayoutRuns, clearRuns, foldSphere, insertionRuns } from '../src/recon/insertion.js';
import type { TomoInfo } from '../src/distributed/messages.js';
import type { Chunk } from '../src/distributed/chunks.js';
import { periodogramProfile, paintNoiseWeights } from '../src/physics/noise.js';
import { Accumulator } from '../src/recon/backproject.js';
import { KernelOptions, KernelWorkspace, TomogramTables, buildTomogramTables, processParticleFrame } from '../src/recon/particleKernel.js';
import { WARM_UP_ARENA_BYTES, warmUpParticleKernel } from '../src/recon/warmUp.js';
import { WasmArena } from '../src/recon/wasmArena.js';

export interface LaneInit {
  kernel: KernelOptions;
  /** data, weight of half 1, then of half 2 when there are half sets (shared memory). */
  arrays: Float64Array[];
  /** The same layout: the chunk being computed, or finished and awaiting its verdict. */
  scratch: Float64Array[];
  /** The WebAssembly arena the arrays above live in, and how much of it they take; null: none. */
  arena: { memory: WebAssembly.Memory; used: number } | null;
  /**
   * Shared cell [0]: copies with a token up to this one are cancelled (set and notified by the
   * main thread; tokens grow, and a copy that can be cancelled alone is never queued behind another).
   */
  control: Int32Array;
  cacheFrames: number;
  framePixels: number;
  delayMs: number;
}

export interface LaneChunk {
  type: 'chunk';
  /** Unique per worker process; names this copy in cancel requests and replies. */
  token: number;
  /** Into the scratch set, held until the verdict; else straight into the accumulators. */
  held: boolean;
  chunk: Chunk;
  tomo: TomoInfo;
  records: Float64Array;
}

/** The coordinator's verdict on the finished chunk held in scratch. */
export interface LaneVerdict {
  type: 'verdict';
  token: number;
  chunk: number;
  count: boolean;
}

/** The first message a thread gets (it is started before the run's parameters are known). */
export type LaneInitMessage = { type: 'init' } & LaneInit;

/** The main thread has zeroed the accumulators (after a commit, or to rejoin). */
export interface LaneCleared {
  type: 'cleared';
}

export type LaneMessage = LaneInitMessage | LaneChunk | LaneVerdict | LaneCleared;

export type LaneReply =
  | { type: 'done'; token: number; chunk: number; held: boolean; particles: number; tiltImages: number; seconds: number; holds: number[] }
  /** Started and warmed up (sent once, before any other reply). */
  | { type: 'ready'; seconds: number }
  | { type: 'cancelled'; token: number; chunk: number }
  /** swapped: counted by exchanging the accumulators and the scratch set (see settle). */
  | { type: 'folded'; token: number; chunk: number; counted: boolean; swapped: boolean; seconds: number }
  | { type: 'error'; chunk: number; message: string; userError: boolean; stack?: string };

const port = parentPort!;
// Compiled while the worker connects and waits to join (see warmUp.ts); the insertion in
// WebAssembly, as the lane's arena will have it (a small arena of its own for this).
const started = Date.now();
warmUpParticleKernel(8, WasmArena.create(WARM_UP_ARENA_BYTES));
port.postMessage({ type: 'ready', seconds: (Date.now() - started) / 1000 } satisfies LaneReply);
// Set by the 'init' message, which comes before any chunk.
let init!: LaneInit;
let kernel!: KernelOptions;
let ws!: KernelWorkspace;
let acc!: Float64Array[];
let scratch!: Float64Array[];
let control!: Int32Array;
let scratchHalves!: Accumulator[];
let accHalves!: Accumulator[];
let cache!: FrameCache;
/** The pieces of one half's data and weight arrays that back-projection can write (see settle). */
let sphere!: LayoutRuns;
function pairs(a: Float64Array[]): Accumulator[] {
  const h1: Accumulator = { data: a[0], weight: a[1] };
  return a.length >= 4 ? [h1, { data: a[2], weight: a[3] }] : [h1, h1];
}
function setUp(i: LaneInit): void {
  init = i;
  kernel = i.kernel;
  // Slices go into the arena of the accumulators, so that the WebAssembly kernel inserts them.
  ws = new KernelWorkspace(kernel, i.arena ? WasmArena.wrap(i.arena.memory, i.arena.used) : null);
  acc = i.arrays;
  scratch = i.scratch;
  control = i.control;
  scratchHalves = pairs(scratch);
  accHalves = pairs(acc);
  cache = new FrameCache(i.cacheFrames, i.framePixels);
  sphere = insertionRuns(kernel.s, 1);
}
/** The token of the chunk held in scratch (finished, awaiting its verdict), or 0. */
let heldToken = 0;
/**
 * The accumulators hold nothing: from the start until a chunk goes into them, and again when the
 * main thread says it has zeroed them. Never true while they hold a sum (it errs only the other way).
 */
let accZero = true;
/** Half sets the chunk in scratch has particles of: only those arrays are folded and zeroed. */
const touched = [false, false];

class Cancelled extends Error {}

function checkCancel(token: number): void {
  if (Atomics.load(control, 0) >= token) throw new Cancelled();
}
const tables = new Map<number, TomogramTables>();

function tablesFor(t: TomoInfo): TomogramTables {
  let tab = tables.get(t.work);
  if (tab) return tab;
  const g = t.geometry;
  let noise: Float32Array | null = null;
  if (kernel.whiten) {
    // --whiten: noise weights of every frame, from the frames read one at a time.
    const { s, s0, bin } = kernel;
    const sh = (s >> 1) + 1;
    noise = new Float32Array(g.frameCount * sh * s);
    cache.begin(t.work, g.frameCount);
    for (let f = 0; f < g.frameCount; f++) {
      const frame = cache.get(t.work, f, t.frames[f], g.imageW, g.imageH, g.name);
      paintNoiseWeights(periodogramProfile(frame, 0, g.imageW, g.imageH, s0), s, s0, bin, noise.subarray(f * sh * s, (f + 1) * sh * s));
    }
  }
  tab = buildTomogramTables(kernel, g, new Float32Array(0), noise);
  // Tables of tomograms no longer cached are dropped (they are small, but there may be many).
  const held = new Set(cache.holds());
  for (const w of tables.keys()) if (!held.has(w)) tables.delete(w);
  tables.set(t.work, tab);
  return tab;
}

function run(m: LaneChunk): void {
  const t0 = Date.now();
  const { chunk, tomo, records, token, held } = m;
  const halves = held ? scratchHalves : accHalves;
  // A direct chunk (taken ahead) may run while the scratch holds a finished copy awaiting its verdict.
  if (held && heldToken !== 0) throw new Error(`chunk ${chunk.id} given while the scratch still holds an unanswered chunk`);
  const len = tomo.recordLength;
  if (!held) accZero = false;
  if (held) {
    touched[0] = touched[1] = false;
    // The record's first value is the particle's half set (0 or 1); without half sets both map to the one pair.
    for (let p = 0; p < chunk.count; p++) touched[scratch.length >= 4 && records[p * len] === 1 ? 1 : 0] = true;
  }
  const g = tomo.geometry;
  const tab = tablesFor(tomo);
  cache.begin(tomo.work, g.frameCount);
  let tiltImages = 0;
  for (let f = 0; f < g.frameCount; f++) {
    checkCancel(token);
    const frame = cache.get(tomo.work, f, tomo.frames[f], g.imageW, g.imageH, g.name);
    for (let p = 0; p < chunk.count; p++) if (processParticleFrame(ws, tab, records, p * len, f, halves, frame, 0)) tiltImages++;
  }
  // TOMORECON_TEST_CHUNK_DELAY_MS: make chunks slow so that tests can interrupt a run mid-way
  // (a cancel wakes the wait).
  if (init.delayMs > 0) {
    const until = Date.now() + init.delayMs;
    for (let left = init.delayMs; left > 0; left = until - Date.now()) {
      checkCancel(token);
      Atomics.wait(control, 0, Atomics.load(control, 0), left);
    }
  }
  checkCancel(token);
  if (held) heldToken = token;
  const reply: LaneReply = {
    type: 'done',
    token,
    chunk: chunk.id,
    held,
    particles: chunk.count,
    tiltImages,
    seconds: (Date.now() - t0) / 1000,
    holds: cache.holds(),
  };
  port.postMessage(reply);
}

/**
 * Count: add the scratch into the accumulators; either way zero the scratch (one pass). Only
 * over the insertion sphere (insertionRuns: everything outside it is zero in every set), 55 % of
 * the half's arrays. While the accumulators hold nothing (a worker's first chunk is held: its
 * speed is not known yet) counting is an exchange of the two sets, no pass at all: the first
 * chunk's fold took 65–72 ms of this thread at box 128 (it faults in every page of the
 * accumulators' sphere), the whole time its next chunk waited. The main thread, told so, reads
 * the sums from the other set from then on.
 */
function settle(m: LaneVerdict): void {
  const t0 = Date.now();
  if (heldToken !== m.token) throw new Error(`verdict for chunk ${m.chunk} (copy ${m.token}), which this thread does not hold`);
  if (m.count && accZero) {
    [acc, scratch] = [scratch, acc];
    [accHalves, scratchHalves] = [scratchHalves, accHalves];
    accZero = false;
    heldToken = 0;
    port.postMessage({ type: 'folded', token: m.token, chunk: m.chunk, counted: true, swapped: true, seconds: (Date.now() - t0) / 1000 } satisfies LaneReply);
    return;
  }
  if (m.count) accZero = false;
  for (let h = 0; 2 * h < scratch.length; h++) {
    if (!touched[h]) continue;
    if (m.count) foldSphere(accHalves[h], scratchHalves[h], sphere, false, true);
    else clearRuns([scratchHalves[h].data, scratchHalves[h].weight], sphere);
  }
  heldToken = 0;
  const reply: LaneReply = { type: 'folded', token: m.token, chunk: m.chunk, counted: m.count, swapped: false, seconds: (Date.now() - t0) / 1000 };
  port.postMessage(reply);
}

port.on('message', (m: LaneMessage) => {
  if (m.type === 'init') {
    setUp(m);
    return;
  }
  if (m.type === 'cleared') {
    accZero = true;
    return;
  }
  if (m.type === 'verdict') {
    try {
      settle(m);
    } catch (e) {
      port.postMessage({ type: 'error', chunk: m.chunk, message: (e as Error).message, userError: false, stack: (e as Error).stack } satisfies LaneReply);
    }
    return;
  }
  try {
    run(m);
  } catch (e) {
    if (e instanceof Cancelled) {
      // All of it: the chunk may have been stopped before its half sets were known. (A direct
      // chunk is cancelled only when the worker drops all its sums, to rejoin.)
      if (m.held) for (const s of scratch) s.fill(0);
      port.postMessage({ type: 'cancelled', token: m.token, chunk: m.chunk.id } satisfies LaneReply);
      return;
    }
    if (m.held) for (const s of scratch) s.fill(0);
    const reply: LaneReply = {
      type: 'error',
      chunk: m.chunk.id,
      message: (e as Error).message,
      userError: isTomoError(e),
      stack: (e as Error).stack,
    };
    port.postMessage(reply);
  }
});
