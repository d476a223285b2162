/**
 * Exactly-once bookkeeping of the coordinator (pure, no I/O). Every chunk is in one state:
 *
 *   pending ──assign──▶ assigned(w) ──complete──▶ done(w) ──commit round──▶ committed
 *      ▲                    │                        │
 *      └──── worker w lost ─┴────────────────────────┘
 *
 * "done(w)" means the chunk's contribution lives only in worker w's accumulators. A lost (fenced)
 * worker's assigned and done chunks go back to pending (front of their tomogram's queue) and are
 * dispatched again; whatever the fenced worker sends later is ignored. A completion for a chunk
 * that is not assigned to that worker (a redelivered or stale message) is dropped and counted.
 * A commit round is accepted only if the chunk ids each worker says it summed are exactly the
 * chunks the ledger has as done by that worker, so no chunk enters the committed sums twice.
 */
import { Chunk } from './chunks.js';

export type ChunkState = 'pending' | 'assigned' | 'done' | 'committed';
export type AttemptOutcome = 'running' | 'done' | 'lost' | 'committed' | 'abandoned';

export interface Attempt {
  worker: string;
  epoch: string;
  outcome: AttemptOutcome;
  assignedAt: string;
  doneAt?: string;
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
  owner: string | null;
  attempts: Attempt[];
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

export class ChunkLedger {
  private readonly entries: Entry[];
  /** Pending chunk ids per work index, in dispatch order. */
  private readonly queues: number[][];
  private readonly fromCheckpoint = new Set<number>();
  /** Work index each worker last received a chunk of (affinity and spreading). */
  private readonly lastWork = new Map<string, number>();
  private readonly counts: Record<ChunkState, number> = { pending: 0, assigned: 0, done: 0, committed: 0 };
  duplicatesDropped = 0;

  constructor(
    chunks: Chunk[],
    private readonly epoch: string,
    committedBefore: CommittedRecord[] = [],
    private readonly now: () => string = () => new Date().toISOString(),
  ) {
    this.entries = chunks.map((chunk) => ({ chunk, state: 'pending', owner: null, attempts: [], duplicates: 0, committed: null }));
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

  /** Chunks assigned to live workers and not yet reported done. */
  inFlight(): number {
    return this.count('assigned');
  }

  /**
   * The next chunk for `worker`: first one of a tomogram it holds (the one it worked on last
   * first), otherwise one of the tomogram with the fewest workers on it (most pending first).
   */
  assign(worker: string, holds: number[] = []): Chunk | null {
    const prefer = this.lastWork.get(worker);
    const order = prefer !== undefined ? [prefer, ...holds.filter((h) => h !== prefer)] : holds;
    let work = order.find((w) => this.queues[w]?.length > 0);
    if (work === undefined) {
      const busy = new Map<number, number>();
      for (const w of this.lastWork.values()) busy.set(w, (busy.get(w) ?? 0) + 1);
      let best = -1;
      for (let w = 0; w < this.queues.length; w++) {
        if (this.queues[w].length === 0) continue;
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
    e.attempts.push({ worker, epoch: this.epoch, outcome: 'running', assignedAt: this.now() });
    this.lastWork.set(worker, work);
    return e.chunk;
  }

  /** A worker reports a chunk done. Anything but the expected completion is dropped. */
  complete(worker: string, id: number): 'ok' | 'duplicate' {
    const e = this.entries[id];
    if (!e || e.state !== 'assigned' || e.owner !== worker) {
      this.duplicatesDropped++;
      if (e) e.duplicates++;
      return 'duplicate';
    }
    this.move(e, 'done');
    const a = e.attempts[e.attempts.length - 1];
    a.outcome = 'done';
    a.doneAt = this.now();
    return 'ok';
  }

  /** Chunks whose contribution is (only) in `worker`'s accumulators. */
  doneBy(worker: string): number[] {
    const out: number[] = [];
    for (const e of this.entries) if (e.state === 'done' && e.owner === worker) out.push(e.chunk.id);
    return out;
  }

  assignedTo(worker: string): number[] {
    const out: number[] = [];
    for (const e of this.entries) if (e.state === 'assigned' && e.owner === worker) out.push(e.chunk.id);
    return out;
  }

  /** Workers with done, uncommitted chunks (the participants of a commit round). */
  workersWithDone(): string[] {
    const s = new Set<string>();
    for (const e of this.entries) if (e.state === 'done' && e.owner) s.add(e.owner);
    return [...s];
  }

  /** Worker lost (fenced): its assigned and done chunks go back to the front of their queues. */
  lose(worker: string): number[] {
    const requeued: number[] = [];
    for (const e of this.entries) {
      if ((e.state === 'assigned' || e.state === 'done') && e.owner === worker) {
        this.move(e, 'pending');
        e.owner = null;
        e.attempts[e.attempts.length - 1].outcome = 'lost';
        requeued.push(e.chunk.id);
      }
    }
    // Back to the front, in id order.
    for (let i = requeued.length - 1; i >= 0; i--) this.queues[this.entries[requeued[i]].chunk.work].unshift(requeued[i]);
    this.lastWork.delete(worker);
    return requeued;
  }

  /** A worker left cleanly (or went away for good) without chunks: forget its affinity. */
  forget(worker: string): void {
    this.lastWork.delete(worker);
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
        const a = e.attempts[e.attempts.length - 1];
        a.outcome = 'committed';
        a.round = round;
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
