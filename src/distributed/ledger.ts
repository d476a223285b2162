/**
 * Exactly-once bookkeeping of the coordinator (pure, no I/O). Every chunk is in one state:
 *
 *   pending ──assign──▶ assigned(w…) ──first completion──▶ done(w) ──commit round──▶ committed
 *      ▲                    │  ▲                              │
 *      │                    │  └─ speculate: a second copy    │
 *      └── all runners lost ┴──────── worker w lost ──────────┘
 *
 * A chunk is handed out as an *attempt* (its index in the chunk's attempt list travels with the
 * chunk and comes back with the completion), either *direct* (the worker sums it straight into
 * its accumulators: it must be counted) or *held* (the worker computes it into a scratch set and
 * holds it there until the verdict). While nothing is pending, a held attempt that has run much
 * longer than the typical chunk may get a second, speculative (held) copy on an idle worker
 * (speculate). The first completion of a running attempt wins: the chunk becomes done(w) and the
 * worker is told to *count* it (fold it into its accumulators); every other copy is superseded
 * and told to *drop* it when it completes, or is cancelled while it runs. Only held copies are
 * ever raced, so a dropped copy never reaches any sum.
 *
 * "done(w)" means the chunk's contribution lives only in worker w's accumulators. A lost (fenced)
 * worker's done chunks, and running chunks that have no other copy, go back to pending (front of
 * their tomogram's queue) and are dispatched again; whatever the fenced worker sends later is
 * ignored. A completion of anything but a running attempt (a superseded, cancelled, lost or stale
 * copy, a redelivered message) is dropped and counted. A commit round is accepted only if the
 * chunk ids each worker says it summed are exactly the chunks the ledger has as done by that
 * worker, so no chunk enters the committed sums twice.
 */
import { Chunk } from './chunks.js';

export type ChunkState = 'pending' | 'assigned' | 'done' | 'committed';
/**
 * running: computing; done: its completion was counted; committed: counted and committed;
 * lost: its worker was lost (or rejoined) before it was committed; superseded: another copy
 * completed first (this one is still running, it will be dropped); dropped: completed or
 * cancelled after it was superseded, or otherwise not counted.
 */
export type AttemptOutcome = 'running' | 'done' | 'lost' | 'committed' | 'superseded' | 'dropped';

export interface Attempt {
  worker: string;
  epoch: string;
  outcome: AttemptOutcome;
  assignedAt: string;
  /** A second copy of a chunk that was running for too long (straggler). */
  speculative?: boolean;
  /** Computed outside the accumulators and held until the verdict (may be raced); else summed directly. */
  held?: boolean;
  doneAt?: string;
  /** When a copy that lost was dropped; cancelled: the worker stopped it before it finished. */
  droppedAt?: string;
  cancelled?: boolean;
  round?: number;
}

export interface CommittedRecord {
  id: number;
  worker: string;
  epoch: string;
  round: number;
}

interface Entry {
  chunk: Chunk;
  state: ChunkState;
  /** done/committed: the worker whose copy was counted; assigned: the first runner. */
  owner: string | null;
  /** Running attempts (indices into attempts) while assigned, in dispatch order. */
  running: number[];
  attempts: Attempt[];
  /** Clock (ms) at which each attempt was handed out. */
  startedMs: number[];
  duplicates: number;
  committed: CommittedRecord | null;
}

export interface ChunkReport {
  id: number;
  tomogram: string;
  first: number;
  count: number;
  state: ChunkState;
  attempts: Attempt[];
  /** Completions that were dropped as duplicates or stale. */
  duplicatesDropped: number;
  committed: CommittedRecord | null;
  /** Committed by an earlier coordinator process (taken from the checkpoint). */
  fromCheckpoint: boolean;
}

/** A chunk handed out: the chunk and the attempt number the worker reports back. */
export interface Dispatch {
  chunk: Chunk;
  attempt: number;
  speculative: boolean;
  held: boolean;
}

/** Outcome of a completion: count it (the first of a running attempt) or drop it. */
export interface Completion {
  verdict: 'count' | 'drop';
  /** For 'count': the other copies still running, which are now superseded (worker, attempt). */
  superseded: { worker: string; attempt: number }[];
  /** For 'count': milliseconds from hand-out to this completion. */
  ms?: number;
}

/** When to start a speculative copy: running longer than factor × the median completed chunk. */
export interface SpeculationPolicy {
  /** 0 = never. */
  factor: number;
  /** Completed chunks needed before the median is trusted. */
  minSamples: number;
}

export class ChunkLedger {
  private readonly entries: Entry[];
  /** Pending chunk ids per work index, in dispatch order. */
  private readonly queues: number[][];
  private readonly fromCheckpoint = new Set<number>();
  /** Work index each worker last received a chunk of (affinity and spreading). */
  private readonly lastWork = new Map<string, number>();
  private readonly counts: Record<ChunkState, number> = { pending: 0, assigned: 0, done: 0, committed: 0 };
  /** Time of every counted completion, ms (see completion), for the speculation threshold. */
  private readonly durations: number[] = [];
  /** The median of the first medianOf durations (recomputed when more have come). */
  private median = 0;
  private medianOf = 0;
  /** Work index of each worker's last counted chunk (a chunk of another one read a tilt series). */
  private readonly lastDoneWork = new Map<string, number>();
  /** Times of counted chunks that were their worker's first of a tomogram (they read its tilt series), ms. */
  private readonly firstOfTomogram: number[] = [];
  duplicatesDropped = 0;
  speculations = 0;

  constructor(
    chunks: Chunk[],
    private readonly epoch: string,
    committedBefore: CommittedRecord[] = [],
    private readonly clock: () => number = Date.now,
  ) {
    this.entries = chunks.map((chunk) => ({
      chunk,
      state: 'pending',
      owner: null,
      running: [],
      attempts: [],
      startedMs: [],
      duplicates: 0,
      committed: null,
    }));
    for (const c of committedBefore) {
      const e = this.entries[c.id];
      if (!e) throw new Error(`ledger: committed chunk ${c.id} is not in the plan`);
      e.state = 'committed';
      e.committed = c;
      this.fromCheckpoint.add(c.id);
    }
    for (const e of this.entries) this.counts[e.state]++;
    const works = chunks.reduce((m, c) => Math.max(m, c.work + 1), 0);
    this.queues = Array.from({ length: works }, () => []);
    for (const e of this.entries) if (e.state === 'pending') this.queues[e.chunk.work].push(e.chunk.id);
  }

  private iso(): string {
    return new Date(this.clock()).toISOString();
  }

  get size(): number {
    return this.entries.length;
  }

  chunk(id: number): Chunk {
    return this.entries[id].chunk;
  }

  state(id: number): ChunkState {
    return this.entries[id].state;
  }

  owner(id: number): string | null {
    return this.entries[id].owner;
  }

  /** Workers running a copy of the chunk (assigned state), in dispatch order. */
  runners(id: number): string[] {
    const e = this.entries[id];
    return e.running.map((a) => e.attempts[a].worker);
  }

  /** Attempt n of the chunk (a copy), or undefined. */
  attempt(id: number, n: number | undefined): Readonly<Attempt> | undefined {
    return n === undefined ? undefined : this.entries[id]?.attempts[n];
  }

  count(state: ChunkState): number {
    return this.counts[state];
  }

  private move(e: Entry, to: ChunkState): void {
    this.counts[e.state]--;
    this.counts[to]++;
    e.state = to;
  }

  committedParticles(): number {
    let n = 0;
    for (const e of this.entries) if (e.state === 'committed') n += e.chunk.count;
    return n;
  }

  allCommitted(): boolean {
    return this.counts.committed === this.entries.length;
  }

  /** Chunks assigned (at least one copy running) and not yet reported done. */
  inFlight(): number {
    return this.count('assigned');
  }

  private start(e: Entry, worker: string, speculative: boolean, held: boolean): Dispatch {
    const attempt = e.attempts.length;
    const a: Attempt = { worker, epoch: this.epoch, outcome: 'running', assignedAt: this.iso() };
    if (speculative) a.speculative = true;
    if (held) a.held = true;
    e.attempts.push(a);
    e.startedMs.push(this.clock());
    e.running.push(attempt);
    return { chunk: e.chunk, attempt, speculative, held };
  }

  /**
   * The next chunk for `worker`: first one of a tomogram it holds (the one it worked on last
   * first), otherwise one of the tomogram with the fewest workers on it (most pending first),
   * except a tomogram with no more chunks pending than workers on it.
   */
  assign(worker: string, holds: number[] = []): Chunk | null {
    return this.dispatch(worker, holds)?.chunk ?? null;
  }

  /**
   * As assign, with the attempt number the worker reports back. `held`: the worker holds the
   * result until the verdict, so the chunk may get a speculative copy; direct ones never do.
   */
  dispatch(worker: string, holds: number[] = [], held = true): Dispatch | null {
    const prefer = this.lastWork.get(worker);
    const order = prefer !== undefined ? [prefer, ...holds.filter((h) => h !== prefer)] : holds;
    let work = order.find((w) => this.queues[w]?.length > 0);
    if (work === undefined) {
      const busy = new Map<number, number>();
      for (const w of this.lastWork.values()) busy.set(w, (busy.get(w) ?? 0) + 1);
      let best = -1;
      const chunkMs = this.medianChunkMs();
      const switchMs = this.switchCostMs();
      for (let w = 0; w < this.queues.length; w++) {
        const left = this.queues[w].length;
        const on = busy.get(w) ?? 0;
        if (left === 0) continue;
        // Leave a tomogram's last chunks to the workers on it when they would finish them before
        // this worker had read its tilt series and done one: with measured times, when
        // left · chunk ≤ on · (switch + chunk); before there are any, when left ≤ on.
        if (on > 0 && (chunkMs !== null && switchMs !== null ? left * chunkMs <= on * (switchMs + chunkMs) : left <= on)) continue;
        if (
          best < 0 ||
          (busy.get(w) ?? 0) < (busy.get(best) ?? 0) ||
          ((busy.get(w) ?? 0) === (busy.get(best) ?? 0) && this.queues[w].length > this.queues[best].length)
        ) {
          best = w;
        }
      }
      if (best < 0) return null;
      work = best;
    }
    const id = this.queues[work].shift()!;
    const e = this.entries[id];
    this.move(e, 'assigned');
    e.owner = worker;
    this.lastWork.set(worker, work);
    return this.start(e, worker, false, held);
  }

  /**
   * What a chunk costs on a worker that must first read its tomogram's tilt series, beyond an
   * ordinary chunk: the median time of the chunks that were a worker's first of a tomogram minus
   * the median chunk time (ms); null before both are known.
   */
  switchCostMs(): number | null {
    const m = this.medianChunkMs();
    const f = this.firstOfTomogram;
    if (m === null || f.length === 0) return null;
    const d = [...f].sort((a, b) => a - b);
    const median = d.length % 2 ? d[(d.length - 1) >> 1] : (d[d.length / 2 - 1] + d[d.length / 2]) / 2;
    return Math.max(0, median - m);
  }

  /** Median of the counted chunks' hand-out-to-completion times (ms), or null without enough samples. */
  medianChunkMs(minSamples = 1): number | null {
    const n = this.durations.length;
    if (n === 0 || n < minSamples) return null;
    if (this.medianOf !== n) {
      const d = [...this.durations].sort((a, b) => a - b);
      this.median = n % 2 ? d[(n - 1) >> 1] : (d[n / 2 - 1] + d[n / 2]) / 2;
      this.medianOf = n;
    }
    return this.median;
  }

  /**
   * Candidates for a speculative copy on `worker`, oldest first (none while chunks are pending):
   * assigned chunks with a single running copy, held (not direct), not on `worker`, that has run
   * for longer than factor × the median chunk time.
   * With `horizon` > 0 also those that become candidates within that many ms (for wait hints).
   */
  private candidates(worker: string, p: SpeculationPolicy, horizon = 0): { e: Entry; dueIn: number; since: number }[] {
    // Only when nothing is pending: pending chunks are always the better use of an idle worker.
    if (!(p.factor > 0) || this.counts.pending > 0) return [];
    const median = this.medianChunkMs(p.minSamples);
    if (median === null) return [];
    const threshold = p.factor * median;
    const now = this.clock();
    const out: { e: Entry; dueIn: number; since: number }[] = [];
    for (const e of this.entries) {
      if (e.state !== 'assigned' || e.running.length !== 1) continue;
      const a = e.running[0];
      if (e.attempts[a].worker === worker || !e.attempts[a].held) continue;
      const since = e.startedMs[a];
      const dueIn = since + threshold - now;
      if (dueIn < 0 || dueIn <= horizon) out.push({ e, dueIn, since });
    }
    return out.sort((x, y) => x.since - y.since || x.e.chunk.id - y.e.chunk.id);
  }

  /** A speculative second copy of the oldest straggling chunk for the idle `worker`, or null. */
  speculate(worker: string, p: SpeculationPolicy): Dispatch | null {
    const c = this.candidates(worker, p).find((x) => x.dueIn < 0);
    if (!c) return null;
    this.speculations++;
    return this.start(c.e, worker, true, true);
  }

  /** Milliseconds until speculate(worker) could return a chunk (≤ horizon), or null. */
  nextSpeculationIn(worker: string, p: SpeculationPolicy, horizon: number): number | null {
    const c = this.candidates(worker, p, horizon);
    return c.length ? Math.max(0, Math.min(...c.map((x) => x.dueIn))) : null;
  }

  /** The latest attempt of `worker` on the chunk that is in one of `outcomes` (for reports without an attempt number). */
  private latest(e: Entry, worker: string, outcomes: AttemptOutcome[]): number {
    for (let i = e.attempts.length - 1; i >= 0; i--) {
      if (e.attempts[i].worker === worker && outcomes.includes(e.attempts[i].outcome)) return i;
    }
    return -1;
  }

  private drop(e: Entry, attempt: number, cancelled: boolean): void {
    this.duplicatesDropped++;
    e.duplicates++;
    const a = e.attempts[attempt];
    if (a && (a.outcome === 'superseded' || a.outcome === 'running')) {
      a.outcome = 'dropped';
      a.droppedAt = this.iso();
      if (cancelled) a.cancelled = true;
    }
  }

  /**
   * A worker reports a copy finished. The first completion of a running attempt of an assigned
   * chunk is counted (the chunk becomes done by that worker; other running copies are superseded);
   * anything else is dropped. `attempt` is the number the chunk was handed out with (omitted:
   * the worker's latest running or superseded attempt).
   */
  complete(worker: string, id: number, attempt?: number): 'ok' | 'duplicate' {
    return this.completion(worker, id, attempt).verdict === 'count' ? 'ok' : 'duplicate';
  }

  /**
   * As complete, with the copies that are now superseded (to be cancelled) and the chunk time:
   * `computeMs` as the worker measured it when given (a chunk taken ahead waited behind another),
   * else hand-out to completion.
   */
  completion(worker: string, id: number, attempt?: number, computeMs?: number): Completion {
    const e = this.entries[id];
    if (!e) {
      this.duplicatesDropped++;
      return { verdict: 'drop', superseded: [] };
    }
    const n = attempt ?? this.latest(e, worker, ['running', 'superseded']);
    const a = e.attempts[n];
    if (e.state !== 'assigned' || !a || a.worker !== worker || a.outcome !== 'running' || !e.running.includes(n)) {
      this.drop(e, n, false);
      return { verdict: 'drop', superseded: [] };
    }
    const now = this.clock();
    this.move(e, 'done');
    e.owner = worker;
    a.outcome = 'done';
    a.doneAt = this.iso();
    const superseded: { worker: string; attempt: number }[] = [];
    for (const r of e.running) {
      if (r === n) continue;
      e.attempts[r].outcome = 'superseded';
      superseded.push({ worker: e.attempts[r].worker, attempt: r });
    }
    e.running = [];
    const ms = computeMs !== undefined && Number.isFinite(computeMs) && computeMs >= 0 ? computeMs : now - e.startedMs[n];
    this.durations.push(ms);
    if (this.lastDoneWork.get(worker) !== e.chunk.work) this.firstOfTomogram.push(ms);
    this.lastDoneWork.set(worker, e.chunk.work);
    return { verdict: 'count', superseded, ms };
  }

  /**
   * A worker stopped a copy on the coordinator's word (its partial sums discarded). Normally a
   * superseded copy; should it be a running one (a stale cancel), the copy is gone all the same:
   * the chunk goes back to pending when no other copy runs. Returns false for a report that
   * names no copy of this worker (or one already dropped).
   */
  cancelled(worker: string, id: number, attempt: number): boolean {
    const e = this.entries[id];
    const a = e?.attempts[attempt];
    if (!e || !a || a.worker !== worker || a.outcome === 'dropped') return false;
    if (a.outcome === 'running' && e.state === 'assigned' && e.running.includes(attempt)) {
      e.running = e.running.filter((r) => r !== attempt);
      if (e.running.length === 0) this.requeue([id]);
      else e.owner = e.attempts[e.running[0]].worker;
    }
    this.drop(e, attempt, true);
    return true;
  }

  private requeue(ids: number[]): void {
    for (const id of ids) {
      const e = this.entries[id];
      this.move(e, 'pending');
      e.owner = null;
      e.running = [];
    }
    // Back to the front, in id order.
    for (let i = ids.length - 1; i >= 0; i--) this.queues[this.entries[ids[i]].chunk.work].unshift(ids[i]);
  }

  /** Chunks whose contribution is (only) in `worker`'s accumulators. */
  doneBy(worker: string): number[] {
    const out: number[] = [];
    for (const e of this.entries) if (e.state === 'done' && e.owner === worker) out.push(e.chunk.id);
    return out;
  }

  /** Chunks with a running copy on `worker`. */
  assignedTo(worker: string): number[] {
    const out: number[] = [];
    for (const e of this.entries) if (e.state === 'assigned' && e.running.some((a) => e.attempts[a].worker === worker)) out.push(e.chunk.id);
    return out;
  }

  /** Workers with done, uncommitted chunks (the participants of a commit round). */
  workersWithDone(): string[] {
    const s = new Set<string>();
    for (const e of this.entries) if (e.state === 'done' && e.owner) s.add(e.owner);
    return [...s];
  }

  /**
   * Worker lost (fenced) or rejoined without its sums: its done chunks, and its running chunks
   * that have no other copy, go back to the front of their queues. Returns those chunk ids.
   */
  lose(worker: string): number[] {
    const requeued: number[] = [];
    for (const e of this.entries) {
      if (e.state === 'done' && e.owner === worker) {
        const a = e.attempts[this.latest(e, worker, ['done'])];
        if (a) a.outcome = 'lost';
        requeued.push(e.chunk.id);
      } else if (e.state === 'assigned') {
        const mine = e.running.filter((a) => e.attempts[a].worker === worker);
        if (mine.length === 0) continue;
        for (const a of mine) e.attempts[a].outcome = 'lost';
        e.running = e.running.filter((a) => e.attempts[a].worker !== worker);
        if (e.running.length === 0) requeued.push(e.chunk.id);
        else e.owner = e.attempts[e.running[0]].worker;
      }
      // Its superseded copies will never report.
      for (const a of e.attempts) if (a.worker === worker && a.outcome === 'superseded') a.outcome = 'lost';
    }
    this.requeue(requeued);
    this.lastWork.delete(worker);
    this.lastDoneWork.delete(worker);
    return requeued;
  }

  /** A worker left cleanly (or went away for good) without chunks: forget its affinity. */
  forget(worker: string): void {
    this.lastWork.delete(worker);
    this.lastDoneWork.delete(worker);
  }

  /**
   * Checks the chunk ids a reduction says each worker contributed: exactly the ledger's done
   * chunks of every participant, each once. Returns null when acceptable, or the reason.
   */
  validateRound(participants: string[], contributions: Record<string, number[]>): string | null {
    const seen = new Set<number>();
    for (const w of Object.keys(contributions)) {
      if (!participants.includes(w)) return `worker ${w} is not a participant of the round`;
    }
    for (const w of participants) {
      const got = contributions[w];
      if (!got) return `no chunk list from worker ${w}`;
      const expect = new Set(this.doneBy(w));
      for (const id of got) {
        if (seen.has(id)) return `chunk ${id} was summed twice`;
        seen.add(id);
        const e = this.entries[id];
        if (!e) return `worker ${w} reports unknown chunk ${id}`;
        if (e.state === 'committed') return `worker ${w} reports chunk ${id}, which is already committed`;
        if (!expect.has(id)) return `worker ${w} reports chunk ${id}, which is not a chunk it completed (state ${e.state})`;
      }
      if (got.length !== expect.size) return `worker ${w} summed ${got.length} chunks, the ledger has ${expect.size} done by it`;
    }
    return null;
  }

  /** Marks the contributions of an accepted round committed. Returns the number of particles. */
  commit(round: number, contributions: Record<string, number[]>): number {
    let particles = 0;
    for (const [w, ids] of Object.entries(contributions)) {
      for (const id of ids) {
        const e = this.entries[id];
        if (e.state !== 'done' || e.owner !== w) throw new Error(`ledger: chunk ${id} cannot be committed from state ${e.state}`);
        this.move(e, 'committed');
        const a = e.attempts[this.latest(e, w, ['done'])];
        if (a) {
          a.outcome = 'committed';
          a.round = round;
        }
        e.committed = { id, worker: w, epoch: this.epoch, round };
        particles += e.chunk.count;
      }
    }
    return particles;
  }

  committedRecords(): CommittedRecord[] {
    return this.entries.filter((e) => e.committed).map((e) => e.committed!);
  }

  report(): ChunkReport[] {
    return this.entries.map((e) => ({
      id: e.chunk.id,
      tomogram: e.chunk.tomoName,
      first: e.chunk.first,
      count: e.chunk.count,
      state: e.state,
      attempts: e.attempts,
      duplicatesDropped: e.duplicates,
      committed: e.committed,
      fromCheckpoint: this.fromCheckpoint.has(e.chunk.id),
    }));
  }
}
