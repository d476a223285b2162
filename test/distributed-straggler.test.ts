/**
 * Stragglers: speculative re-dispatch of a chunk that runs much longer than the typical chunk.
 *
 * - The ledger's transitions (pure): who may get a second copy and when, first completion
 *   counted, the other copy superseded and dropped (finished late or cancelled), losses with and
 *   without a second copy, stale cancels and redelivered completions; and a property test that
 *   drives random interleavings of dispatch, speculation, completion, redelivery, cancellation,
 *   worker loss and commit rounds through the ledger with a model of the workers' sums (a copy
 *   reaches a worker's sums only when its verdict is 'count'): every round is accepted and every
 *   chunk ends up in the committed sums exactly once.
 * - Real processes (nats-server, coordinator, three workers, one 10× slower): the run is not
 *   delayed by the straggler's last chunk; it is re-dispatched, the first result is counted, the
 *   slow copy is dropped, every chunk is committed once and the maps equal a local run's.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { planChunks } from '../src/distributed/chunks.js';
import { ChunkLedger, SpeculationPolicy } from '../src/distributed/ledger.js';
import { pearson } from '../src/analysis/fsc.js';
import { readMrc } from '../src/formats/mrc.js';
import { CONFORMANCE, runCli } from './helpers/paths.js';
import { CliProcess, LogLine, natsTestBed } from './helpers/nats.js';

const policy: SpeculationPolicy = { factor: 2, minSamples: 3 };

/** One tomogram (work index 0), which every worker in these tests holds (dispatch(w, [0])). */
function clockedLedger(n: number): { L: ChunkLedger; clock: { t: number } } {
  const work = [{ tomogram: { index: 0, name: 'A' }, particleCount: n }];
  const clock = { t: 1_000_000 };
  return { L: new ChunkLedger(planChunks(work, 1), 'e1', [], () => clock.t), clock };
}

describe('ledger: speculative copies', () => {
  it('takes a chunk time the worker measured over hand-out to completion (a chunk taken ahead waits behind another)', () => {
    const { L, clock } = clockedLedger(4);
    const a = L.dispatch('w', [0])!;
    const ahead = L.dispatch('w', [0])!;
    clock.t += 100;
    expect(L.completion('w', a.chunk.id, a.attempt, 100).ms).toBe(100);
    clock.t += 100;
    // Handed out 200 ms ago, computed in 100 ms: the queue wait does not count.
    expect(L.completion('w', ahead.chunk.id, ahead.attempt, 100).ms).toBe(100);
    const b = L.dispatch('w', [0])!;
    clock.t += 100;
    // Without a measurement (older workers), hand-out to completion.
    expect(L.completion('w', b.chunk.id, b.attempt).ms).toBe(100);
    expect(L.medianChunkMs(3)).toBe(100);
  });

  it('re-dispatches only when nothing is pending, after enough samples, past factor × median, oldest first, never to its own worker', () => {
    const { L, clock } = clockedLedger(6);
    const d = [L.dispatch('fast1', [0])!, L.dispatch('slow', [0])!, L.dispatch('fast2', [0])!];
    expect(L.speculate('fast1', policy)).toBeNull(); // no samples yet
    clock.t += 100;
    expect(L.completion('fast1', d[0].chunk.id, d[0].attempt).verdict).toBe('count');
    expect(L.completion('fast2', d[2].chunk.id, d[2].attempt).verdict).toBe('count');
    const e = [L.dispatch('fast1', [0])!, L.dispatch('fast2', [0])!];
    clock.t += 100;
    expect(L.completion('fast1', e[0].chunk.id, e[0].attempt).verdict).toBe('count');
    expect(L.medianChunkMs(3)).toBe(100);
    expect(L.speculate('fast1', policy)).toBeNull(); // a chunk is still pending
    const last = L.dispatch('fast1', [0])!;
    expect(L.dispatch('fast3', [0])).toBeNull();
    // slow has run 200 ms = 2 × median: not yet past it.
    expect(L.speculate('fast1', policy)).toBeNull();
    expect(L.nextSpeculationIn('fast1', policy, 500)).toBe(0);
    clock.t += 1;
    // Only slow's chunk is past the threshold (fast2's started 100 ms later, fast1's 200 ms later).
    const s = L.speculate('fast1', policy)!;
    expect(s).toMatchObject({ chunk: { id: d[1].chunk.id }, attempt: 1, speculative: true });
    expect(L.runners(d[1].chunk.id)).toEqual(['slow', 'fast1']);
    // At most two copies, and none on a worker that runs the chunk already.
    expect(L.speculate('fast2', policy)).toBeNull();
    expect(L.speculate('slow', policy)).toBeNull();
    // Later both fast chunks are past it: the oldest first.
    clock.t += 300;
    expect(L.speculate('slow', policy)!.chunk.id).toBe(e[1].chunk.id);
    expect(L.speculate('slow', policy)!.chunk.id).toBe(last.chunk.id);
    expect(L.speculations).toBe(3);
    // factor 0: never.
    expect(L.speculate('fast3', { factor: 0, minSamples: 3 })).toBeNull();
  });

  it('counts the first completion; the other copy is superseded and dropped when it finishes late or is cancelled', () => {
    const { L, clock } = clockedLedger(8);
    for (let i = 0; i < 3; i++) {
      const x = L.dispatch('f', [0])!;
      clock.t += 10;
      L.completion('f', x.chunk.id, x.attempt);
    }
    const slow = L.dispatch('slow', [0])!;
    const other = L.dispatch('slow2', [0])!;
    expect(L.dispatch('x', [0])).not.toBeNull(); // chunk 5 … drain the queue
    while (L.dispatch('x', [0])) {
      /* nothing pending after this */
    }
    clock.t += 1000;
    const spec = L.speculate('f', policy)!;
    expect(spec.chunk.id).toBe(slow.chunk.id);
    // The speculative copy finishes first: counted; the slow original is superseded.
    const c = L.completion('f', spec.chunk.id, spec.attempt);
    expect(c.verdict).toBe('count');
    expect(c.superseded).toEqual([{ worker: 'slow', attempt: slow.attempt }]);
    expect(L.state(slow.chunk.id)).toBe('done');
    expect(L.owner(slow.chunk.id)).toBe('f');
    expect(L.inFlight()).toBe(L.assignedTo('slow2').length + L.assignedTo('x').length);
    // The slow copy finishes anyway: dropped.
    expect(L.completion('slow', slow.chunk.id, slow.attempt).verdict).toBe('drop');
    expect(L.attempt(slow.chunk.id, slow.attempt)!.outcome).toBe('dropped');
    // A redelivered completion of the winner is dropped too.
    expect(L.completion('f', spec.chunk.id, spec.attempt).verdict).toBe('drop');
    expect(L.doneBy('f')).toContain(slow.chunk.id);

    // The other way round: the original wins, the speculative copy is cancelled.
    const spec2 = L.speculate('f', policy)!;
    expect(spec2.chunk.id).toBe(other.chunk.id);
    expect(L.completion('slow2', other.chunk.id, other.attempt).superseded).toEqual([{ worker: 'f', attempt: spec2.attempt }]);
    L.cancelled('f', spec2.chunk.id, spec2.attempt);
    expect(L.attempt(spec2.chunk.id, spec2.attempt)).toMatchObject({ outcome: 'dropped', cancelled: true, speculative: true });
    expect(L.state(other.chunk.id)).toBe('done');
    expect(L.duplicatesDropped).toBe(3);
    // Commits: each chunk once, from the worker whose copy was counted.
    expect(L.validateRound(['f', 'slow2'], { f: L.doneBy('f'), slow2: [other.chunk.id] })).toBeNull();
    expect(L.validateRound(['f', 'slow'], { f: L.doneBy('f'), slow: [slow.chunk.id] })).toMatch(/not a participant|not a chunk it completed|summed twice/);
  });

  it('keeps a chunk running on its second copy when the first runner is lost, and requeues it when both are', () => {
    const { L, clock } = clockedLedger(6);
    for (let i = 0; i < 3; i++) {
      const x = L.dispatch('f', [0])!;
      clock.t += 10;
      L.completion('f', x.chunk.id, x.attempt);
    }
    const a = L.dispatch('slow', [0])!;
    const b = L.dispatch('slow', [0])!;
    const c = L.dispatch('g', [0])!;
    clock.t += 1000;
    const sa = L.speculate('f', policy)!;
    expect(sa.chunk.id).toBe(a.chunk.id);
    // slow is lost: a keeps running on f (not requeued), b goes back to pending.
    expect(L.lose('slow')).toEqual([b.chunk.id]);
    expect(L.state(a.chunk.id)).toBe('assigned');
    expect(L.runners(a.chunk.id)).toEqual(['f']);
    expect(L.attempt(a.chunk.id, a.attempt)!.outcome).toBe('lost');
    // A late completion from the fenced worker is dropped; f's copy still counts.
    expect(L.completion('slow', a.chunk.id, a.attempt).verdict).toBe('drop');
    expect(L.completion('f', a.chunk.id, sa.attempt).verdict).toBe('count');
    expect(L.dispatch('f', [0])!.chunk.id).toBe(b.chunk.id); // the requeued one
    // c: speculated to h, then both g and h lost: requeued once.
    const sc = L.speculate('h', policy)!;
    expect(sc.chunk.id).toBe(c.chunk.id);
    expect(L.lose('g')).toEqual([]);
    expect(L.lose('h')).toEqual([c.chunk.id]);
    expect(L.state(c.chunk.id)).toBe('pending');
  });

  it('requeues a chunk whose counted copy is lost before the commit, although a superseded copy still runs; that copy is then dropped', () => {
    const { L, clock } = clockedLedger(5);
    for (let i = 0; i < 3; i++) {
      const x = L.dispatch('f', [0])!;
      clock.t += 10;
      L.completion('f', x.chunk.id, x.attempt);
    }
    const a = L.dispatch('slow', [0])!;
    L.dispatch('f', [0]);
    clock.t += 1000;
    const sa = L.speculate('g', policy)!;
    expect(L.completion('g', a.chunk.id, sa.attempt).verdict).toBe('count');
    expect(L.lose('g')).toEqual([a.chunk.id]);
    expect(L.state(a.chunk.id)).toBe('pending');
    // The slow copy was superseded: it may not count, even though the chunk is wanted again.
    expect(L.completion('slow', a.chunk.id, a.attempt).verdict).toBe('drop');
    const again = L.dispatch('slow', [0])!;
    expect(again.chunk.id).toBe(a.chunk.id);
    expect(L.completion('slow', a.chunk.id, again.attempt).verdict).toBe('count');
  });

  it('never races a chunk handed out direct (summed straight into the accumulators)', () => {
    const { L, clock } = clockedLedger(5);
    for (let i = 0; i < 3; i++) {
      const x = L.dispatch('f', [0], false)!;
      expect(x.held).toBe(false);
      clock.t += 10;
      L.completion('f', x.chunk.id, x.attempt);
    }
    const direct = L.dispatch('slow', [0], false)!;
    const held = L.dispatch('slow2', [0], true)!;
    clock.t += 10_000;
    expect(L.nextSpeculationIn('f', policy, 500)).toBe(0);
    expect(L.speculate('f', policy)!.chunk.id).toBe(held.chunk.id);
    expect(L.speculate('g', policy)).toBeNull(); // the direct one is never a candidate
    expect(L.completion('slow', direct.chunk.id, direct.attempt).verdict).toBe('count');
    expect(L.report()[direct.chunk.id].attempts).toEqual([expect.not.objectContaining({ held: true })]);
  });

  it('treats a cancel that reached a running copy (stale) as the copy gone: requeued when it was the only one', () => {
    const { L } = clockedLedger(3);
    const a = L.dispatch('w', [0])!;
    L.cancelled('w', a.chunk.id, a.attempt);
    expect(L.state(a.chunk.id)).toBe('pending');
    expect(L.completion('w', a.chunk.id, a.attempt).verdict).toBe('drop');
    expect(L.dispatch('w', [0])!.chunk.id).toBe(a.chunk.id);
  });
});

/**
 * A model of the protocol around the ledger: workers hold finished copies until the verdict and
 * fold only counted ones into their sums; commit rounds add the participants' sums to the
 * committed sums only if the ledger accepts their chunk lists. Random interleavings.
 */
describe('ledger: exactly once under random interleavings', () => {
  type Op = { kind: number; who: number; pick: number; dt: number };
  const op = fc.record({ kind: fc.integer({ min: 0, max: 8 }), who: fc.nat(5), pick: fc.nat(50), dt: fc.integer({ min: 0, max: 400 }) });

  // An eager policy, so that most interleavings have second copies.
  const eager: SpeculationPolicy = { factor: 1, minSamples: 1 };

  function simulate(ops: Op[], chunks: number): void {
    const { L, clock } = clockedLedger(chunks);
    interface Copy {
      chunk: number;
      attempt: number;
      held: boolean;
    }
    interface W {
      id: string;
      live: boolean;
      running: Copy[];
      sums: number[];
    }
    let serial = 0;
    const workers: W[] = [];
    const newWorker = (): W => {
      const w: W = { id: `w${serial++}`, live: true, running: [], sums: [] };
      workers.push(w);
      return w;
    };
    for (let i = 0; i < 3; i++) newWorker();
    const committed: number[] = [];
    const cancels: { worker: string; chunk: number; attempt: number }[] = [];
    const reports: { worker: string; chunk: number; attempt: number }[] = [];
    const live = (): W[] => workers.filter((w) => w.live);

    const finish = (w: W, i: number): void => {
      const c = w.running.splice(i, 1)[0];
      reports.push({ worker: w.id, ...c });
      const r = L.completion(w.id, c.chunk, c.attempt);
      // A direct copy (summed straight in) is never raced: a live worker's is always counted.
      if (!c.held) expect(r.verdict).toBe('count');
      if (r.verdict === 'count') {
        w.sums.push(c.chunk);
        for (const s of r.superseded) cancels.push({ worker: s.worker, chunk: c.chunk, attempt: s.attempt });
      }
    };
    const round = (): void => {
      const participants = L.workersWithDone().filter((id) => workers.find((w) => w.id === id)!.live);
      if (!participants.length) return;
      const contrib: Record<string, number[]> = {};
      for (const id of participants) contrib[id] = [...workers.find((w) => w.id === id)!.sums];
      expect(L.validateRound(participants, contrib)).toBeNull();
      L.commit(1, contrib);
      for (const id of participants) {
        const w = workers.find((x) => x.id === id)!;
        committed.push(...w.sums);
        w.sums = [];
      }
    };

    for (const o of ops) {
      clock.t += o.dt;
      const ws = live();
      const w = ws[o.who % Math.max(1, ws.length)];
      switch (o.kind) {
        case 0:
        case 1: {
          if (!w || w.running.length >= 2) break;
          const d = L.dispatch(w.id, [], o.pick % 3 !== 0) ?? L.speculate(w.id, eager);
          if (d) w.running.push({ chunk: d.chunk.id, attempt: d.attempt, held: d.held });
          break;
        }
        case 2:
        case 3:
          if (w?.running.length) finish(w, o.pick % w.running.length);
          break;
        case 4: {
          // A cancel is delivered (maybe after the copy finished: then it does nothing).
          if (!cancels.length) break;
          const c = cancels.splice(o.pick % cancels.length, 1)[0];
          const x = workers.find((y) => y.id === c.worker)!;
          const i = x.running.findIndex((r) => r.chunk === c.chunk && r.attempt === c.attempt);
          if (i >= 0) expect(x.running[i].held, 'a cancel for a direct copy').toBe(true);
          if (x.live && i >= 0) {
            x.running.splice(i, 1);
            L.cancelled(x.id, c.chunk, c.attempt);
          }
          break;
        }
        case 5:
          // A completion redelivered (or replayed by a fenced worker): never counted again.
          if (reports.length) {
            const r = reports[o.pick % reports.length];
            expect(L.completion(r.worker, r.chunk, r.attempt).verdict).toBe('drop');
          }
          break;
        case 6:
          if (w && o.pick % 4 === 0) {
            L.lose(w.id);
            w.live = false;
            if (live().length < 2) newWorker();
          }
          break;
        case 7:
          round();
          break;
        case 8:
          // A stale cancel of a running held copy (e.g. reordered): the copy is gone. (Workers
          // ignore cancels of direct copies.)
          if (w?.running.length && o.pick % 5 === 0) {
            const i = o.pick % w.running.length;
            if (!w.running[i].held) break;
            const c = w.running.splice(i, 1)[0];
            L.cancelled(w.id, c.chunk, c.attempt);
          }
          break;
      }
    }
    // Drain: every live worker finishes what it runs, takes what is left, and a last round commits.
    for (let guard = 0; !L.allCommitted(); guard++) {
      expect(guard).toBeLessThan(10 * chunks + 100);
      clock.t += 50;
      for (const w of live()) {
        while (w.running.length) finish(w, 0);
        const d = L.dispatch(w.id, [], guard % 2 === 0) ?? L.speculate(w.id, eager);
        if (d) w.running.push({ chunk: d.chunk.id, attempt: d.attempt, held: d.held });
      }
      if (L.inFlight() === 0) round();
    }
    expect([...committed].sort((a, b) => a - b)).toEqual(Array.from({ length: chunks }, (_, i) => i));
    const report = L.report();
    for (const c of report) expect(c.attempts.filter((a) => a.outcome === 'committed')).toHaveLength(1);
    for (const c of report) {
      for (const a of c.attempts) {
        if (a.speculative) stats.speculative++;
        if (a.speculative && a.outcome === 'committed') stats.speculativeCommitted++;
        if (a.outcome === 'dropped') stats.dropped++;
        if (a.cancelled) stats.cancelled++;
      }
    }
  }
  const stats = { speculative: 0, speculativeCommitted: 0, dropped: 0, cancelled: 0 };

  it('commits every chunk exactly once, whatever the order of events', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 10, maxLength: 200, size: 'max' }), fc.integer({ min: 1, max: 9 }), (ops, n) => simulate(ops, n)),
      { numRuns: 400, seed: 20240607 },
    );
    // The interleavings did exercise speculation, late and cancelled copies.
    expect(stats.speculative).toBeGreaterThan(100);
    expect(stats.speculativeCommitted).toBeGreaterThan(20);
    expect(stats.dropped).toBeGreaterThan(50);
    expect(stats.cancelled).toBeGreaterThan(20);
  });
});

// ------------------------------------------------------------------ real processes

const V1 = path.join(CONFORMANCE, 'V1');
const ARGS = ['--i', 'optimisation_set.star', '--b', '48'];
const FILES = ['half1.mrc', 'half2.mrc', 'merged.mrc', 'data_half1.mrc', 'data_half2.mrc', 'weight_half1.mrc', 'weight_merged.mrc'];
const FAST_MS = 200;
const SLOW_MS = 2000;
const bed = natsTestBed('distributed-straggler');
const { tmp, procs } = bed;
const clean = path.join(tmp, 'clean');

interface Attempt {
  worker: string;
  outcome: string;
  speculative?: boolean;
  cancelled?: boolean;
  assignedAt: string;
  doneAt?: string;
  droppedAt?: string;
}
interface Report {
  status: string;
  totals: Record<string, number>;
  workers: { id: string; pid: number; state: string }[];
  chunks: { id: number; count: number; state: string; attempts: Attempt[]; committed: { worker: string } | null; fromCheckpoint: boolean }[];
}

beforeAll(async () => {
  const res = runCli(['reconstruct', ...ARGS, '--o', clean], V1);
  expect(res.status, res.stderr).toBe(0);
});

const ts = (l: LogLine | undefined): number => (l?.ts ? Date.parse(l.ts) : NaN);
const workerId = (c: CliProcess, pid: number): string => c.lines().find((l) => l.msg === 'worker joined' && l.fields?.pid === pid)?.fields?.worker as string;

interface Run {
  /** From the first chunk handed to a fast worker to the coordinator's 'done' (coordinator clock), s. */
  seconds: number;
  coordinator: CliProcess;
  report: Report;
  slowId?: string;
  /** The coordinator's last /metrics scrape. */
  metrics: string;
}

function metric(body: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([-0-9.e+]+)$`, 'm').exec(body);
  return m ? Number(m[1]) : NaN;
}

/**
 * coordinator + two fast workers (+ one slow worker, started when 13 of the 24 chunks are still
 * pending: about 1.4 s of the fast workers' work, more than a worker needs to start and join
 * (a few hundred ms), less than one slow chunk; so the slow worker's chunk is still running when
 * the queue runs dry, as a straggler's last chunk is. Its speculative copy is handed out then
 * and takes one fast chunk time, while the slow copy has ≥ 0.45 s left: the race is not close).
 */
async function run(name: string, withSlow: boolean): Promise<Run> {
  const out = path.join(tmp, name);
  const runId = `${name}-${process.pid}`;
  const coordinator = procs.cli(
    ['coordinator', '--nats', bed.nats.url, '--run-id', runId, '--chunk-size', '2', '--commit-interval', '120', '--metrics-port', '0', ...ARGS, '--o', out],
    V1,
  );
  await coordinator.waitFor((c) => c.count('metrics served') === 1, 20_000, 'the metrics endpoint');
  const url = coordinator.lines().find((l) => l.msg === 'metrics served')!.fields!.url as string;
  let metrics = '';
  const scraping = (async () => {
    while (coordinator.running) {
      try {
        metrics = await (await fetch(url)).text();
      } catch {
        /* ended */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const fast = [0, 1].map(() => procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId], tmp, { TOMORECON_TEST_CHUNK_DELAY_MS: String(FAST_MS) }));
  let slow: CliProcess | null = null;
  if (withSlow) {
    await coordinator.waitFor((c) => c.count('chunk assigned') >= 11, 20_000, 'eleven chunks handed to the fast workers');
    slow = procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId], tmp, { TOMORECON_TEST_CHUNK_DELAY_MS: String(SLOW_MS) });
  }
  const ended = await coordinator.exit(60_000);
  await scraping;
  expect(ended.code, coordinator.stderr).toBe(0);
  for (const w of [...fast, ...(slow ? [slow] : [])]) expect((await w.exit(20_000)).code, w.stderr).toBe(0);
  const lines = coordinator.lines();
  const fastIds = fast.map((w) => workerId(coordinator, w.pid));
  const start = ts(lines.find((l) => l.msg === 'chunk assigned' && fastIds.includes(l.fields?.worker as string)));
  const end = ts(lines.find((l) => l.msg === 'done'));
  for (const f of FILES) {
    const r = pearson(readMrc(path.join(out, f)).data, readMrc(path.join(clean, f)).data);
    expect(r, `${name} ${f}: r = ${r}`).toBeGreaterThanOrEqual(0.999999);
  }
  const report: Report = JSON.parse(fs.readFileSync(path.join(out, 'distributed_report.json'), 'utf8'));
  return { seconds: (end - start) / 1000, coordinator, report, slowId: slow ? workerId(coordinator, slow.pid) : undefined, metrics };
}

function expectExactlyOnce(report: Report): void {
  expect(report.status).toBe('finished');
  for (const c of report.chunks) {
    expect(c.state, `chunk ${c.id}`).toBe('committed');
    expect(c.attempts.filter((a) => a.outcome === 'committed'), `chunk ${c.id}`).toHaveLength(1);
  }
  expect(report.totals.committedParticles).toBe(48);
}

describe('a worker 10× slower than the others', () => {
  it('does not delay the run by its last chunk: that chunk is re-dispatched, the first result counts, the slow copy is dropped', async () => {
    const base = await run('fast-only', false);
    expectExactlyOnce(base.report);
    const mixed = await run('straggler', true);
    expectExactlyOnce(mixed.report);
    const rep = mixed.report;
    const slowId = mixed.slowId!;

    // The straggler's chunk(s) re-dispatched; the speculative copy counted, the slow one dropped.
    const speculated = rep.chunks.filter((c) => c.attempts.some((a) => a.speculative));
    expect(speculated.length).toBeGreaterThanOrEqual(1);
    expect(rep.totals.speculativeCopies).toBe(speculated.length);
    const slowTail = speculated.filter((c) => c.attempts[0].worker === slowId);
    expect(slowTail.length, `the slow worker’s chunk was not re-dispatched: ${JSON.stringify(rep.chunks.filter((c) => c.attempts.some((a) => a.worker === slowId)))}`).toBeGreaterThanOrEqual(1);
    let saved = Infinity;
    for (const c of slowTail) {
      const [orig, spec] = c.attempts;
      expect(spec.speculative).toBe(true);
      // First result counted: the speculative copy finished first and is the one committed …
      expect(spec.outcome).toBe('committed');
      expect(c.committed!.worker).toBe(spec.worker);
      // … and the slow copy was dropped (cancelled while it ran, or dropped when it finished).
      expect(orig.outcome).toBe('dropped');
      expect(Date.parse(orig.droppedAt!)).toBeGreaterThanOrEqual(Date.parse(spec.doneAt!));
      saved = Math.min(saved, Date.parse(orig.assignedAt) + SLOW_MS - Date.parse(spec.doneAt!));
    }
    expect(rep.totals.speculativeCopiesCounted).toBeGreaterThanOrEqual(1);
    expect(rep.totals.duplicatesDropped).toBeGreaterThanOrEqual(slowTail.length);
    expect(mixed.coordinator.count('straggler: chunk re-dispatched to an idle worker')).toBe(speculated.length);
    // Metrics: a re-dispatch counts as a requeue, the dropped copy as a duplicate result dropped.
    expect(metric(mixed.metrics, 'tomorecon_chunk_requeues_total')).toBe(speculated.length);
    expect(metric(mixed.metrics, 'tomorecon_duplicate_results_dropped_total')).toBe(rep.totals.duplicatesDropped);
    expect(metric(base.metrics, 'tomorecon_chunk_requeues_total')).toBe(0);

    // Wall time (from the first chunk of a fast worker to the coordinator's 'done', so that process
    // start-up is not counted): at most the run of the two fast workers alone plus one slow chunk,
    // plus 1.5 s: the two runs are sequential and, under `npm test`, share the two cores with
    // another test file, which has stretched a 3 s run by up to ≈ 1 s (alone they differ by
    // < 0.2 s). This bound is the criterion; that the run did not wait for the slow copy
    // is shown above (the speculative copy was counted, the slow one dropped).
    const slowChunk = SLOW_MS / 1000;
    console.log(
      `straggler: ${mixed.seconds.toFixed(2)} s with a 10× slower third worker vs ${base.seconds.toFixed(2)} s with the two fast workers only ` +
        `(bound ${(base.seconds + slowChunk + 1.5).toFixed(2)} s); speculative copies ${speculated.length}, dropped ${rep.totals.duplicatesDropped}; ` +
        `the counted copy finished ${(saved / 1000).toFixed(2)} s before the slow copy could have`,
    );
    expect(mixed.seconds).toBeLessThan(base.seconds + slowChunk + 1.5);
  }, 90_000);
});
