/**
 * A compute thread of a worker: back-projects the chunks it is given into its own accumulators
 * (shared memory, so that the worker's main thread reads them for the reduction without a copy).
 * Chunks are processed frame by frame with processParticleFrame: for each tilt, one frame is
 * read (or taken from the cache) and every particle of the chunk is inserted from it, so only
 * the frames the memory plan allows are ever held.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isTomoError } from '../src/errors.js';
import { FrameCache } from '../src/distributed/frames.js';
import type { TomoInfo } from '../src/distributed/messages.js';
import type { Chunk } from '../src/distributed/chunks.js';
import { periodogramProfile, paintNoiseWeights } from '../src/physics/noise.js';
import { Accumulator } from '../src/recon/backproject.js';
import { KernelOptions, KernelWorkspace, TomogramTables, buildTomogramTables, processParticleFrame } from '../src/recon/particleKernel.js';

export interface LaneInit {
  kernel: KernelOptions;
  /** data, weight of half 1, then of half 2 when there are half sets (shared memory). */
  arrays: Float64Array[];
  cacheFrames: number;
  framePixels: number;
  delayMs: number;
}

export interface LaneChunk {
  type: 'chunk';
  chunk: Chunk;
  tomo: TomoInfo;
  records: Float64Array;
}

export type LaneReply =
  | { type: 'done'; chunk: number; particles: number; tiltImages: number; seconds: number; holds: number[] }
  | { type: 'error'; chunk: number; message: string; userError: boolean; stack?: string };

const port = parentPort!;
const init = workerData as LaneInit;
const kernel = init.kernel;
const ws = new KernelWorkspace(kernel);
const a = init.arrays;
const h1: Accumulator = { data: a[0], weight: a[1] };
const halves: Accumulator[] = a.length >= 4 ? [h1, { data: a[2], weight: a[3] }] : [h1, h1];
const cache = new FrameCache(init.cacheFrames, init.framePixels);
const tables = new Map<number, TomogramTables>();
const sleeper = new Int32Array(new SharedArrayBuffer(4));

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
  const { chunk, tomo, records } = m;
  const g = tomo.geometry;
  const tab = tablesFor(tomo);
  cache.begin(tomo.work, g.frameCount);
  const len = tomo.recordLength;
  let tiltImages = 0;
  for (let f = 0; f < g.frameCount; f++) {
    const frame = cache.get(tomo.work, f, tomo.frames[f], g.imageW, g.imageH, g.name);
    for (let p = 0; p < chunk.count; p++) if (processParticleFrame(ws, tab, records, p * len, f, halves, frame, 0)) tiltImages++;
  }
  // TOMORECON_TEST_CHUNK_DELAY_MS: make chunks slow so that tests can interrupt a run mid-way.
  if (init.delayMs > 0) Atomics.wait(sleeper, 0, 0, init.delayMs);
  const reply: LaneReply = {
    type: 'done',
    chunk: chunk.id,
    particles: chunk.count,
    tiltImages,
    seconds: (Date.now() - t0) / 1000,
    holds: cache.holds(),
  };
  port.postMessage(reply);
}

port.on('message', (m: LaneChunk) => {
  try {
    run(m);
  } catch (e) {
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
