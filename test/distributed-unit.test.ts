/**
 * The pure parts of the distributed runner: chunk plan, exactly-once ledger, reduction tree and
 * segment layout, CRC-32, memory plans, checkpoint format, flags.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planChunks, defaultChunkSize } from '../src/distributed/chunks.js';
import { ChunkLedger } from '../src/distributed/ledger.js';
import { SetLayout, addSegment, binaryTree, coordinatorChildren, insertionRadius, insertionRuns, treeDepth } from '../src/distributed/tree.js';
import { backprojectSlice, createAccumulator } from '../src/recon/backproject.js';
import { eulerToMatrix } from '../src/geometry/matrix.js';
import { rng } from './helpers/random.js';
import { doseXRanges } from '../src/physics/dose.js';
import { crc32, crc32Js } from '../src/distributed/checksum.js';
import { planWorkerMemory } from '../src/distributed/memory.js';
import { readDistributedCheckpoint, writeDistributedCheckpoint } from '../src/distributed/checkpoint.js';
import { checkRunId, coordinatorOptionsFromArgs, natsAuthFromArgs, zmqEndpoint } from '../src/distributed/flags.js';
import { decode, encode } from '../src/distributed/messages.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-distributed-unit-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const work = [
  { tomogram: { index: 0, name: 'A' }, particleCount: 10 },
  { tomogram: { index: 2, name: 'B' }, particleCount: 3 },
];

describe('chunk plan', () => {
  it('splits each tomogram evenly, ids in order, every particle once', () => {
    const chunks = planChunks(work, 4);
    expect(chunks.map((c) => [c.id, c.tomoName, c.first, c.count])).toEqual([
      [0, 'A', 0, 3],
      [1, 'A', 3, 3],
      [2, 'A', 6, 4],
      [3, 'B', 0, 3],
    ]);
    expect(defaultChunkSize(48)).toBe(1);
    expect(defaultChunkSize(100_000)).toBe(64);
  });
});

describe('ledger', () => {
  const chunks = planChunks(work, 2); // A: 5 chunks, B: 2 chunks

  it('keeps a worker on its tomogram and spreads new workers over tomograms', () => {
    const L = new ChunkLedger(chunks, 'e1');
    expect(L.assign('w1')!.tomoName).toBe('A');
    expect(L.assign('w2')!.tomoName).toBe('B');
    expect(L.assign('w1')!.tomoName).toBe('A');
    expect(L.assign('w2')!.tomoName).toBe('B');
    expect(L.assign('w2')!.tomoName).toBe('A'); // B exhausted
  });

  it('leaves the last chunks of a tomogram to the workers on it rather than have another read its tilt series', () => {
    const L = new ChunkLedger(chunks, 'e1');
    for (let i = 0; i < 3; i++) expect(L.assign('w1')!.tomoName).toBe('A'); // 2 of A left
    expect(L.assign('w2')!.tomoName).toBe('B');
    expect(L.assign('w2')!.tomoName).toBe('B');
    expect(L.assign('w2')!.tomoName).toBe('A'); // 2 left, one worker on A: worth it
    // Now 1 left and two workers on A; a third worker is not sent to A.
    expect(L.assign('w3')).toBeNull();
    expect(L.assign('w1')!.tomoName).toBe('A');
    // Once a worker on it is lost, its chunks go to whoever asks.
    const again = new ChunkLedger(chunks, 'e1');
    for (let i = 0; i < 4; i++) again.assign('w1', [0]);
    expect(again.assign('w2', [])!.tomoName).toBe('B');
    expect(again.assign('w2', [1])!.tomoName).toBe('B');
    expect(again.assign('w2', [1])).toBeNull(); // A: 1 left, w1 on it
    again.lose('w1');
    expect(again.assign('w2', [1])!.tomoName).toBe('A');
  });

  it('with measured times, sends a worker to another tomogram only when that beats the workers on it', () => {
    // Each worker's first chunk of a tomogram reads its tilt series: firstMs; the others take 10 ms.
    const run = (firstMs: number): string | null => {
      const L = new ChunkLedger(chunks, 'e1');
      const go = (w: string, ms: number): void => {
        const d = L.dispatch(w, [], false)!;
        L.completion(w, d.chunk.id, d.attempt, ms);
      };
      go('w1', firstMs); // A
      go('w2', firstMs); // B
      go('w1', 10);
      go('w1', 10);
      go('w2', 10); // B done; A: 2 left, w1 on it
      return L.dispatch('w2', [], false)?.chunk.tomoName ?? null;
    };
    // Switch cost 90 ms: w1 does both (20 ms) before w2 could do one (100 ms).
    expect(run(100)).toBeNull();
    // Switch cost 2 ms: w2 helps (2 left > 1 worker, and 2 · 10 > 1 · 12).
    expect(run(12)).toBe('A');
  });

  it('drops duplicate and stale completions, requeues a lost worker’s chunks, commits each chunk once', () => {
    const L = new ChunkLedger(chunks, 'e1');
    const a = L.assign('w1')!;
    const b = L.assign('w1')!;
    const c = L.assign('w2')!;
    expect(L.complete('w1', a.id)).toBe('ok');
    expect(L.complete('w1', a.id)).toBe('duplicate');
    expect(L.complete('w2', b.id)).toBe('duplicate'); // not assigned to w2
    expect(L.complete('w2', c.id)).toBe('ok');
    expect(L.duplicatesDropped).toBe(2);
    // w1 is lost: its done chunk a and its running chunk b are redone.
    expect(L.lose('w1')).toEqual([a.id, b.id]);
    expect(L.complete('w1', b.id)).toBe('duplicate'); // fenced worker's late message
    expect(L.assign('w3')!.id).toBe(a.id); // front of the queue
    expect(L.validateRound(['w2'], { w2: [c.id, c.id] })).toMatch(/twice/);
    expect(L.validateRound(['w2'], { w2: [] })).toMatch(/summed 0 chunks/);
    expect(L.validateRound(['w2'], { w2: [c.id], w1: [a.id] })).toMatch(/not a participant/);
    expect(L.validateRound(['w2'], { w2: [c.id] })).toBeNull();
    expect(L.commit(1, { w2: [c.id] })).toBe(c.count);
    expect(L.validateRound(['w2'], { w2: [c.id] })).toMatch(/already committed/);
    const r = L.report();
    expect(r[a.id].attempts.map((x) => [x.worker, x.outcome])).toEqual([
      ['w1', 'lost'],
      ['w3', 'running'],
    ]);
    expect(r[c.id].committed).toEqual({ id: c.id, worker: 'w2', epoch: 'e1', round: 1 });
  });

  it('starts from committed chunks of a checkpoint', () => {
    const L = new ChunkLedger(chunks, 'e2', [{ id: 0, worker: 'old', epoch: 'e1', round: 3 }]);
    expect(L.state(0)).toBe('committed');
    expect(L.assign('w')!.id).toBe(1);
    expect(L.report()[0].fromCheckpoint).toBe(true);
  });
});

describe('reduction tree and segments', () => {
  it('is a heap-ordered binary tree under the coordinator', () => {
    const t = binaryTree(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    expect(t.map((n) => [n.worker, n.parent, n.children])).toEqual([
      ['a', null, ['c', 'd']],
      ['b', null, ['e', 'f']],
      ['c', 'a', ['g']],
      ['d', 'a', []],
      ['e', 'b', []],
      ['f', 'b', []],
      ['g', 'c', []],
    ]);
    expect(coordinatorChildren(['a', 'b', 'c'])).toEqual(['a', 'b']);
    expect(coordinatorChildren(['a'])).toEqual(['a']);
    // Every worker appears once as a child (of the coordinator or of a worker), and the depth
    // counts the levels of workers.
    for (let n = 1; n <= 40; n++) {
      const ids = Array.from({ length: n }, (_, i) => `w${i}`);
      const tree = binaryTree(ids);
      const children = [...coordinatorChildren(ids), ...tree.flatMap((x) => x.children)];
      expect(children.sort()).toEqual([...ids].sort());
      const level = (i: number): number => (tree[i].parent === null ? 1 : 1 + level(ids.indexOf(tree[i].parent!)));
      expect(Math.max(...ids.map((_, i) => level(i))), `n = ${n}`).toBe(treeDepth(n));
    }
    expect([1, 2, 3, 6, 7, 14, 15].map(treeDepth)).toEqual([1, 1, 2, 2, 3, 3, 4]);
  });

  it('cuts a set of arrays into segments that sum and reassemble exactly', () => {
    const lengths = [7, 3, 7, 3];
    const layout = new SetLayout(lengths, 4);
    expect(layout.segments).toBe(5);
    const mk = (seed: number): Float64Array[] => lengths.map((n, a) => Float64Array.from({ length: n }, (_, i) => seed * 100 + a * 10 + i));
    const x = mk(1);
    const y = mk(2);
    const out = lengths.map((n) => new Float64Array(n));
    for (let k = 0; k < layout.segments; k++) {
      const seg = new Float64Array(layout.segmentLength(k));
      layout.copyOut(x, k, seg);
      const other = new Float64Array(layout.segmentLength(k));
      layout.copyOut(y, k, other);
      addSegment(seg, other);
      layout.copyIn(out, k, seg);
    }
    out.forEach((a, i) => expect([...a]).toEqual([...x[i]].map((v, j) => v + y[i][j])));
  });

  it('sum2In gives addSegment then sumIn (or copyIn) bit for bit, in one pass', () => {
    const lengths = [7, 3, 7, 3];
    const layout = new SetLayout(lengths, 4);
    const r = rng(17);
    const mk = (): Float64Array[] => lengths.map((n) => Float64Array.from({ length: n }, () => (r() - 0.5) * 10 ** Math.floor(6 * r() - 3)));
    const committed = mk();
    for (const base of [committed, null]) {
      const fused = lengths.map((n) => new Float64Array(n));
      const twoPass = lengths.map((n) => new Float64Array(n));
      for (let k = 0; k < layout.segments; k++) {
        const a = Float64Array.from({ length: layout.segmentLength(k) }, () => r() - 0.5);
        const b = Float64Array.from({ length: layout.segmentLength(k) }, () => (r() - 0.5) * 1e-7);
        layout.sum2In(fused, base, k, a, b);
        const sum = a.slice();
        addSegment(sum, b);
        if (base) layout.sumIn(twoPass, base, k, sum);
        else layout.copyIn(twoPass, k, sum);
      }
      for (let i = 0; i < lengths.length; i++) expect(Buffer.from(fused[i].buffer).equals(Buffer.from(twoPass[i].buffer))).toBe(true);
    }
  });

  it('views a segment within one array without a copy, and sums segments into a second set', () => {
    const lengths = [7, 3, 7, 3];
    const layout = new SetLayout(lengths, 4);
    const x = lengths.map((n, a) => Float64Array.from({ length: n }, (_, i) => a * 10 + i));
    const v = layout.view(x, 0)!;
    expect(v.buffer).toBe(x[0].buffer);
    expect([...v]).toEqual([0, 1, 2, 3]);
    expect(layout.view(x, 1)).toBeNull(); // elements 4…7: the end of array 0 and the start of array 1
    const out = lengths.map((n) => new Float64Array(n));
    for (let k = 0; k < layout.segments; k++) {
      const seg = Float64Array.from({ length: layout.segmentLength(k) }, (_, j) => 1000 * (k + 1) + j);
      layout.sumIn(out, x, k, seg);
    }
    const flat = x.flatMap((a) => [...a]);
    const got = out.flatMap((a) => [...a]);
    expect(got).toEqual(flat.map((v, i) => v + 1000 * (Math.floor(i / 4) + 1) + (i % 4)));
  });
});

describe('what a commit round moves', () => {
  it('is the sphere the back-projection writes: packing it and unpacking it into zeros gives the sums back exactly, at about half the bytes', () => {
    for (const s of [16, 17, 24]) {
      const sh = (s >> 1) + 1;
      const halves = [createAccumulator(s), createAccumulator(s)];
      // A slice with non-zero data and weight everywhere, inserted at every orientation with the
      // largest maxFreq the kernel ever uses: every voxel it can reach becomes non-zero.
      const P = Float32Array.from({ length: 2 * sh * s }, (_, i) => 1 + (i % 5));
      const Wt = Float32Array.from({ length: sh * s }, (_, i) => 1 + (i % 3));
      // The kernel's maxFreq is the first row's dose-weighted x range: largest when every weight passes.
      const maxFreq = doseXRanges(s, new Float32Array(sh * s).fill(1), 0.01, new Int32Array(s))[0];
      expect(maxFreq).toBeLessThanOrEqual(insertionRadius(s));
      const rnd = rng(s);
      for (const acc of halves) {
        for (let i = 0; i < 400; i++) backprojectSlice(acc, s, P, Wt, eulerToMatrix(360 * rnd(), 180 * rnd(), 360 * rnd()), maxFreq);
      }
      const arrays = halves.flatMap((h) => [h.data, h.weight]);
      const layout = new SetLayout(
        arrays.map((a) => a.length),
        64,
        insertionRuns(s, 2),
      );
      const out = arrays.map((a) => new Float64Array(a.length));
      for (let k = 0; k < layout.segments; k++) {
        const seg = new Float64Array(layout.segmentLength(k));
        layout.copyOut(arrays, k, seg);
        layout.copyIn(out, k, seg);
      }
      arrays.forEach((a, i) => expect(out[i], `box ${s}, array ${i}`).toEqual(a));
      const all = arrays.reduce((n, a) => n + a.length, 0);
      expect(layout.total / all).toBeLessThan(0.7);
      // Not vacuous: the insertions reached the sphere's edge (a voxel at the end of a line's run).
      const R = insertionRadius(s);
      let edge = 0;
      for (let z = 0; z < s; z++) {
        for (let y = 0; y < s; y++) {
          const zz = z < s / 2 ? z : z - s;
          const yy = y < s / 2 ? y : y - s;
          const rad = R * R - yy * yy - zz * zz;
          if (rad < 0) continue;
          const x = Math.min(sh - 1, Math.trunc(Math.sqrt(rad)));
          if (halves[0].weight[(z * s + y) * sh + x] !== 0) edge++;
        }
      }
      expect(edge).toBeGreaterThan(0);
    }
  });

  it('is about half of the volume set at box 128', () => {
    const sh = 65;
    const lengths = [2 * sh * 128 * 128, sh * 128 * 128, 2 * sh * 128 * 128, sh * 128 * 128];
    const f = new SetLayout(lengths, 131072, insertionRuns(128, 2)).total / lengths.reduce((a, b) => a + b);
    expect(f).toBeGreaterThan(0.5);
    expect(f).toBeLessThan(0.56);
  });

  it('rejects a piece outside its array', () => {
    expect(() => new SetLayout([10], 4, { count: 1, a: Int32Array.of(0), from: Float64Array.of(8), len: Int32Array.of(3) })).toThrow(/outside array 0/);
  });
});

describe('CRC-32', () => {
  it('matches the IEEE check value natively and in JavaScript', () => {
    const b = new TextEncoder().encode('123456789');
    expect(crc32(b)).toBe(0xcbf43926);
    expect(crc32Js(b)).toBe(0xcbf43926);
    const r = new Uint8Array(10_000).map((_, i) => (i * 7919) & 255);
    expect(crc32Js(r)).toBe(crc32(r));
  });
});

describe('messages', () => {
  it('keep typed arrays typed', () => {
    const m = decode<{ r: Float64Array; g: { p: Float64Array[] } }>(encode({ r: new Float64Array([1.5, 2]).subarray(1), g: { p: [new Float64Array(16)] } }));
    expect(m.r).toBeInstanceOf(Float64Array);
    expect([...m.r]).toEqual([2]);
    expect(m.g.p[0]).toBeInstanceOf(Float64Array);
  });
});

describe('worker memory plan', () => {
  const shape = { s: 64, s0: 64, halves: 2, whiten: false, maxFrames: 61, maxFramePixels: 1024 * 1024, maxChunkRecordDoubles: 1000, segmentDoubles: 131072, window: 2 };
  it('fits a cache of frames into the cap, fewer threads when needed', () => {
    const p = planWorkerMemory(shape, 0.05, 4);
    // ≈ 17.5 MiB per thread (accumulators, the scratch set of the chunk awaiting its verdict,
    // scratch frame, tables) + 8 MiB of segments
    expect(p.lanes).toBe(2);
    expect(p.cacheFramesPerLane).toBeGreaterThanOrEqual(0);
    expect(p.totalBytes).toBeLessThanOrEqual(0.05 * 1024 ** 3);
    const one = planWorkerMemory(shape, 0.05, 1);
    expect(one.cacheFramesPerLane).toBeGreaterThan(p.cacheFramesPerLane);
    expect(one.cacheFramesPerLane).toBeLessThan(61);
    expect(planWorkerMemory(shape, 0.025, 8).lanes).toBe(1);
  });
  it('refuses a cap below one accumulator set, naming the minimum', () => {
    expect(() => planWorkerMemory(shape, 0.005, 1)).toThrow(/--mem 0\.005 GB cannot hold one accumulator set for --b 64 .* at least 0\.0\d+ GB/);
  });
});

describe('checkpoint', () => {
  it('round-trips the sums and the committed chunks', () => {
    const s = 8;
    const sh = 5;
    const mk = (n: number, v: number): Float64Array => Float64Array.from({ length: n }, (_, i) => v + i);
    const halves: [{ data: Float64Array; weight: Float64Array }, { data: Float64Array; weight: Float64Array }] = [
      { data: mk(2 * sh * s * s, 1), weight: mk(sh * s * s, 2) },
      { data: mk(2 * sh * s * s, 3), weight: mk(sh * s * s, 4) },
    ];
    const file = path.join(tmp, 'temp', 'c.ckpt');
    const meta = { fingerprint: 'f', chunkCount: 3, committed: [{ id: 1, worker: 'w', epoch: 'e', round: 2 }], rounds: 2, epochs: [], roundLog: [] };
    writeDistributedCheckpoint(file, meta, halves);
    const back = readDistributedCheckpoint(file, s)!;
    expect(back.meta).toEqual(meta);
    expect([...back.halves![1].weight]).toEqual([...halves[1].weight]);
    expect(() => readDistributedCheckpoint(file, 10)).toThrow(/another box size/);
    // A coordinator of other options (here another box) reads only the header, to replace it.
    expect(readDistributedCheckpoint(file, 10, false, 'other')).toEqual({ meta, halves: null });
    expect(() => readDistributedCheckpoint(file, 10, false, 'f')).toThrow(/another box size/);
    expect(readDistributedCheckpoint(path.join(tmp, 'none'), s)).toBeNull();
  });
});

describe('flags', () => {
  it('take the NATS token from TOMORECON_NATS_TOKEN when --nats-token is not given (off the process list)', () => {
    const before = process.env.TOMORECON_NATS_TOKEN;
    try {
      process.env.TOMORECON_NATS_TOKEN = 'from-env';
      expect(natsAuthFromArgs({}).token).toBe('from-env');
      expect(natsAuthFromArgs({ 'nats-token': 'given' }).token).toBe('given');
      delete process.env.TOMORECON_NATS_TOKEN;
      expect(natsAuthFromArgs({}).token).toBe('');
    } finally {
      if (before === undefined) delete process.env.TOMORECON_NATS_TOKEN;
      else process.env.TOMORECON_NATS_TOKEN = before;
    }
  });

  it('bind only to the interface given', () => {
    expect(zmqEndpoint('127.0.0.1')).toBe('tcp://127.0.0.1:*');
    expect(zmqEndpoint('tcp://10.0.0.5:5555')).toBe('tcp://10.0.0.5:5555');
    expect(zmqEndpoint('::1')).toBe('tcp://[::1]:*');
    expect(() => zmqEndpoint('a b')).toThrow(/--zmq-bind/);
    expect(() => checkRunId('a.b')).toThrow(/--run-id/);
  });

  it('--min-workers: default 1, a whole number ≥ 1 or one clear error', () => {
    const opts = (extra: Record<string, unknown>) => coordinatorOptionsFromArgs({ nats: 'nats://127.0.0.1:4222', ...extra }, () => 'r');
    expect(opts({}).minWorkers).toBe(1);
    expect(opts({ 'min-workers': 4 }).minWorkers).toBe(4);
    for (const bad of [0, -1, 1.5]) expect(() => opts({ 'min-workers': bad })).toThrow(`--min-workers ${bad} must be a whole number ≥ 1`);
  });
});

describe('coordinator', () => {
  it("takes a worker's failure once every chunk is committed as no failure of the run (it is making the maps)", async () => {
    const { Coordinator } = await import('../coordinator/coordinator.js');
    const { DEFAULTS } = await import('../src/engine/options.js');
    const c = new Coordinator({ ...DEFAULTS, o: os.tmpdir(), b: 32, commandLine: [] }, coordinatorOptionsFromArgs({ nats: 'nats://127.0.0.1:9', 'run-id': 'unit' }));
    const internals = c as unknown as { phase: string; failure: Error | null; onFail: (w: unknown, req: unknown) => unknown };
    internals.phase = 'finalising';
    const reply = internals.onFail({ id: 'w1', host: 'node7' }, { type: 'fail', runId: 'unit', worker: 'w1', epoch: 'e', seq: 3, chunk: null, message: 'out of memory', userError: true });
    expect(reply).toEqual({ type: 'finished', ok: true });
    expect(internals.phase).toBe('finalising');
    expect(internals.failure).toBeNull();
  });
});
