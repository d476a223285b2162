/**
 * A worker process: joins the run over NATS, pulls chunks when a compute thread is idle,
 * heartbeats, and takes part in commit rounds (reduction tree over ZeroMQ). Its accumulators
 * hold the chunks done and counted since the last commit; they are zeroed only when the
 * coordinator says the round that carried them was committed. A chunk handed out *held* is
 * computed into its thread's scratch set and stays there until the coordinator's verdict (in the
 * reply that acknowledges it): count (folded into the accumulators) or drop (another copy was
 * counted first). A *direct* chunk (one that is never raced) is summed straight in.
 */
import fs from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { Worker as Thread } from 'node:worker_threads';
import type { NatsConnection, Subscription } from 'nats';
import { TomoError } from '../src/errors.js';
import { WorkerOptions, zmqEndpoint } from '../src/distributed/flags.js';
import { Logger, cpuSeconds } from '../src/distributed/log.js';
import { planWorkerMemory, WorkerMemoryPlan } from '../src/distributed/memory.js';
import {
  ControlMessage,
  Heartbeat,
  ReducePlan,
  Reply,
  Request,
  RunInfo,
  decode,
  encode,
  subjects,
  Subjects,
} from '../src/distributed/messages.js';
import { LayoutRuns, SetLayout, insertionRuns } from '../src/distributed/tree.js';
import { clearRuns } from '../src/recon/insertion.js';
import { connectNats } from '../coordinator/net/nats.js';
import { AbortedError, DataPlane, sendSubtree } from '../coordinator/net/dataPlane.js';
import { Wakeup } from '../src/distributed/wakeup.js';
import { Accumulator, accumulatorBytes } from '../src/recon/backproject.js';
import { KernelWorkspace, evenAberrationTables } from '../src/recon/particleKernel.js';
import { WasmArena } from '../src/recon/wasmArena.js';
import { MetricsServer, serveMetrics } from '../coordinator/net/metricsServer.js';
// Loaded only with --metrics-port: prom-client adds ~25 ms to every process start.
import type { WorkerMetrics } from '../src/metrics/registry.js';
import type { LaneChunk, LaneInit, LaneMessage, LaneReply, LaneVerdict } from './lane.js';

const MiB = 1024 ** 2;

/** A copy of a chunk on a compute thread. */
interface Copy {
  chunk: number;
  attempt: number;
  token: number;
  /** Computed into the scratch set and held until the verdict; else summed straight into the accumulators. */
  held: boolean;
}

interface Lane {
  thread: Thread;
  arrays: Float64Array[];
  scratch: Float64Array[];
  /** [0]: copies with a token up to this one are cancelled (tokens only grow). */
  control: Int32Array;
  /** Its arrays live in a WebAssembly arena: the thread inserts with the WebAssembly kernel. */
  wasm: boolean;
  /** The copy being computed. */
  busy: Copy | null;
  /** A direct copy taken ahead, posted to the thread behind `busy` (starts when it ends). */
  queued: Copy | null;
  /**
   * A finished copy in scratch, awaiting its verdict. deferred: counted during a commit round,
   * folded after it. inRound: counted in the reply that started a round, and sent in that round
   * straight from the scratch set (no fold first); cleared once the round commits, folded if it
   * is aborted.
   */
  holding: (Copy & { deferred: boolean; inRound?: boolean }) | null;
  /** Verdicts posted and not yet settled by the thread. */
  folds: number;
}

/** The thread's scratch set holds a finished chunk beyond the reply being handled. */
function scratchTaken(l: Lane): boolean {
  return l.holding !== null && (l.holding.deferred || l.holding.inRound === true);
}

/** A finished copy not yet reported to the coordinator. */
interface Finished extends Copy {
  lane: Lane;
  tilts: number;
  /** Compute time on its thread. */
  ms: number;
}

interface RoundState {
  round: number;
  abort: AbortController;
  status: 'running' | 'sent' | 'failed';
}

type Outcome = { kind: 'finished'; ok: boolean; message?: string } | { kind: 'rejoin' };

export class WorkerProcess {
  readonly id = `${os.hostname().replace(/[^A-Za-z0-9_-]/g, '_')}-${process.pid}-${randomBytes(2).toString('hex')}`;
  private readonly log = new Logger('worker');
  private readonly subj: Subjects;
  private nc: NatsConnection | null = null;
  private plane: DataPlane | null = null;
  private info: RunInfo | null = null;
  private mem: WorkerMemoryPlan | null = null;
  private lanes: Lane[] = [];
  /**
   * The pieces of the volume set a round moves, for the box and number of half sets of the last
   * round (see ReducePlan.box): a coordinator restarted on other inputs may change either.
   */
  private insertion: { box: number; halves: number; runs: LayoutRuns } | null = null;
  /** Compute threads started at launch, not yet given to a lane. */
  private spareThreads: Thread[] = [];
  private seq = 0;
  private unreported: Finished[] = [];
  private cancelledCopies: Copy[] = [];
  private tokens = 0;
  private foldWaiters: (() => void)[] = [];
  /** Tokens of held chunks sent in a committed round from their scratch sets, being zeroed. */
  private readonly sentFromScratch = new Set<number>();
  /** Threads started at launch that have reported 'ready' (see threadReady). */
  private threadsReady = 0;
  /** Chunks counted and folded into the accumulators since the last commit. */
  private readonly accChunks = new Set<number>();
  private holds = new Set<number>();
  private roundState: RoundState | null = null;
  private fenced: string | null = null;
  private rejoinAsked = false;
  private rejoinReason = 'the coordinator restarted';
  private finished: { ok: boolean; message?: string } | null = null;
  private laneFailure: { chunk: number; message: string; userError: boolean } | null = null;
  private readonly wakeup = new Wakeup();
  /** The coordinator had no chunk to give ahead; not asked again until a thread finishes one. */
  private aheadDeclined = false;
  private unreachableLogged = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly subs: Subscription[] = [];
  private readonly delayMs = Number(process.env.TOMORECON_TEST_CHUNK_DELAY_MS ?? 0) || 0;
  private readonly segmentDelayMs = Number(process.env.TOMORECON_TEST_SEGMENT_DELAY_MS ?? 0) || 0;
  private chunksDone = 0;
  private metrics: WorkerMetrics | null = null;
  private metricsServer: MetricsServer | null = null;

  constructor(private readonly o: WorkerOptions) {
    this.subj = subjects(o.runId);
  }

  async run(): Promise<void> {
    if (os.endianness() !== 'LE') throw new TomoError('tomorecon workers need a little-endian host');
    this.spareThreads = Array.from({ length: this.o.threads }, () => this.spawnLaneThread());
    try {
      this.nc = await connectNats(this.o.nats, this.o.auth, `tomorecon worker ${this.id}`, this.log);
    } catch (e) {
      await this.shutdown();
      throw e;
    }
    const stop = (sig: string): void => void this.leave(`received ${sig}`).finally(() => process.exit(130));
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    try {
      this.plane = new DataPlane(this.id, this.o.runId, this.log);
      try {
        await this.plane.bind(zmqEndpoint(this.o.zmqBind));
      } catch (e) {
        throw new TomoError((e as Error).message);
      }
      this.subscribe();
      if (this.o.metrics.port >= 0) await this.startMetrics();
      this.log.info('worker started', { worker: this.id, run: this.o.runId, pid: process.pid, endpoint: this.plane.endpoint });
      for (;;) {
        const over = await this.join();
        const out = over ?? (await this.mainLoop());
        if (out.kind === 'finished') {
          // Lets the coordinator know this worker has heard (it waits for everyone before closing).
          await this.leave('run finished');
          if (!out.ok) {
            this.log.error('the run failed; the coordinator reports why', { message: out.message ?? '' });
            throw new TomoError(`the run failed (see the coordinator): ${out.message ?? 'unknown reason'}`);
          }
          this.log.info('run finished; exiting', { worker: this.id, chunksDone: this.chunksDone, peakRssBytes: peakRss(), ...cpuSeconds() });
          return;
        }
        await this.reset(this.rejoinReason);
      }
    } finally {
      await this.shutdown();
    }
  }

  private async startMetrics(): Promise<void> {
    const { WorkerMetrics } = await import('../src/metrics/registry.js');
    const m = new WorkerMetrics(this.o.runId, this.id);
    m.memoryCapBytes.set(this.o.memGB > 0 ? this.o.memGB * 1024 ** 3 : 0);
    this.metricsServer = await serveMetrics(m.registry, this.o.metrics.port, this.o.metrics.bind);
    this.metrics = m;
    this.log.info('metrics served', { url: `http://${this.o.metrics.bind}:${this.metricsServer.port}/metrics` });
  }

  private subscribe(): void {
    const nc = this.nc!;
    const handle = (data: Uint8Array): void => {
      let m: ControlMessage;
      try {
        m = decode<ControlMessage>(data);
      } catch {
        return;
      }
      if (m.type === 'fenced') this.fenced = m.reason;
      else if (m.type === 'cancel') {
        if (m.epoch === this.info?.epoch) this.cancel(m.chunk, m.attempt);
        return;
      } else if (m.type === 'rejoin') {
        this.rejoinAsked = this.info !== null;
        this.rejoinReason = 'the coordinator restarted';
      }
      else if (m.type === 'abort') {
        if (this.roundState?.round === m.round) this.roundState.abort.abort('round aborted by the coordinator');
      } else if (m.type === 'finished') this.finished = { ok: m.ok, message: m.message };
      this.wake();
    };
    this.subs.push(nc.subscribe(this.subj.control(this.id), { callback: (_e, msg) => handle(msg.data) }));
    this.subs.push(nc.subscribe(this.subj.broadcast, { callback: (_e, msg) => handle(msg.data) }));
  }

  /** Stops a running copy (another copy of the chunk was counted); its partial sums are discarded. */
  private cancel(chunk: number, attempt: number): void {
    const lane = this.lanes.find((l) => l.busy?.chunk === chunk && l.busy.attempt === attempt);
    if (!lane) return; // finished already: its verdict will be 'drop'
    if (!lane.busy!.held) {
      // A direct chunk is never raced, so this cancel is not for it (its partial sums could not be taken back).
      this.log.warn('cancel for a chunk summed directly ignored', { chunk, attempt });
      return;
    }
    this.log.info('cancelling a copy another worker finished first', { chunk, attempt });
    // A held copy is never queued behind another, so this cancels it and nothing taken after it.
    Atomics.store(lane.control, 0, lane.busy!.token);
    Atomics.notify(lane.control, 0);
  }

  private wake(): void {
    this.wakeup.wake();
  }

  /** Sleeps up to ms, or until a lane finishes or a control message arrives (also one that came since the loop last looked). */
  private pause(ms: number): Promise<void> {
    return this.wakeup.sleep(ms);
  }

  /**
   * One request to the coordinator, retried (same sequence number) until it is answered; given up
   * once the coordinator has not answered for --coordinator-timeout since the first unanswered
   * attempt (not since the last answer: a worker asks nothing while its threads compute, and a
   * chunk may take longer than the timeout).
   */
  private async call(req: Request): Promise<Reply> {
    const payload = encode(req);
    let wait = 100;
    let unansweredSince: number | null = null;
    for (;;) {
      if (this.fenced) return { type: 'fenced', reason: this.fenced };
      const asked = Date.now();
      try {
        const msg = await this.nc!.request(this.subj.rpc, payload, { timeout: 3000 });
        if (this.unreachableLogged) this.log.info('coordinator reachable again');
        this.unreachableLogged = false;
        return decode<Reply>(msg.data);
      } catch (e) {
        unansweredSince ??= asked;
        const silent = (Date.now() - unansweredSince) / 1000;
        if (silent > this.o.coordinatorTimeoutS) {
          throw new TomoError(`no coordinator of run ${this.o.runId} answered for ${silent.toFixed(0)} s (--coordinator-timeout); giving up`);
        }
        if (!this.unreachableLogged) {
          this.log.warn('coordinator not reachable; retrying', { error: (e as Error).message });
          this.unreachableLogged = true;
        }
        await this.pause(wait);
        wait = Math.min(1000, wait * 2);
      }
    }
  }

  /** Joins the run; returns the end of the run instead if it is already over. */
  private async join(): Promise<Outcome | null> {
    for (;;) {
      const reply = await this.call({
        type: 'join',
        runId: this.o.runId,
        worker: this.id,
        host: os.hostname(),
        pid: process.pid,
        endpoint: this.plane!.endpoint,
        memGB: this.o.memGB,
        threads: this.o.threads,
      });
      if (reply.type === 'joined') {
        this.setup(reply.info);
        this.startHeartbeat();
        this.log.info('joined the run', {
          epoch: reply.info.epoch,
          threads: this.lanes.length,
          cacheFramesPerThread: this.mem!.cacheFramesPerLane,
          plannedMiB: Math.round(this.mem!.totalBytes / MiB),
          // Whether the threads insert slices with the WebAssembly kernel (recon/wasmArena.ts).
          insertion: this.lanes.every((l) => l.wasm) ? 'WebAssembly' : 'JavaScript',
        });
        return null;
      }
      if (reply.type === 'fenced') throw new TomoError(`the coordinator fenced this worker: ${reply.reason}`);
      if (reply.type === 'refused') throw new TomoError(`the coordinator refused this worker: ${reply.message}`);
      if (reply.type === 'finished') return { kind: 'finished', ok: reply.ok, message: reply.message };
      await this.pause(500);
    }
  }

  private setup(info: RunInfo): void {
    // The compute threads are kept for a coordinator that restarted on the same plan (they hold
    // its tomograms' tables and frames by work index); for another plan, even of the same shape,
    // they are started again.
    const shape = (i: RunInfo): string =>
      JSON.stringify([i.plan, i.kernel, i.halves, i.maxFrames, i.maxFramePixels, i.maxChunkRecordDoubles, i.segmentDoubles, i.window]);
    const same = this.info !== null && shape(this.info) === shape(info);
    if (this.info !== null && !same && this.lanes.length > 0) {
      this.log.info('the coordinator runs another plan (inputs or options changed): compute threads start again', { plan: info.plan, before: this.info.plan });
    }
    this.info = info;
    this.seq = 0;
    if (same && this.lanes.length > 0) return;
    for (const l of this.lanes) void l.thread.terminate();
    this.lanes = [];
    const k = info.kernel;
    const evenTables = evenAberrationTables(k);
    let plan: WorkerMemoryPlan;
    try {
      plan = planWorkerMemory(
        {
          s: k.s,
          s0: k.s0,
          halves: info.halves,
          whiten: k.whiten,
          maxFrames: info.maxFrames,
          maxFramePixels: info.maxFramePixels,
          maxChunkRecordDoubles: info.maxChunkRecordDoubles,
          segmentDoubles: info.segmentDoubles,
          window: info.window,
          evenTables,
        },
        this.o.memGB,
        this.o.threads,
      );
    } catch (e) {
      void this.leave((e as Error).message);
      throw e;
    }
    this.mem = plan;
    const sh = (k.s >> 1) + 1;
    for (let i = 0; i < plan.lanes; i++) {
      // Accumulators and scratch in the lane's WebAssembly arena (its slice buffers follow them
      // there, lane.ts), so that it inserts with the WebAssembly kernel; else shared buffers.
      const arena = WasmArena.create(2 * info.halves * accumulatorBytes(k.s) + KernelWorkspace.arenaBytes(k.s, k.s0, evenTables));
      const pair = (): Accumulator =>
        arena?.accumulator(k.s) ?? { data: new Float64Array(new SharedArrayBuffer(16 * sh * k.s * k.s)), weight: new Float64Array(new SharedArrayBuffer(8 * sh * k.s * k.s)) };
      const arrays: Float64Array[] = [];
      const scratch: Float64Array[] = [];
      for (const set of [arrays, scratch]) {
        for (let h = 0; h < info.halves; h++) {
          const a = pair();
          set.push(a.data, a.weight);
        }
      }
      const control = new Int32Array(new SharedArrayBuffer(4));
      const init: LaneInit = {
        kernel: k,
        arrays,
        scratch,
        arena: arena ? { memory: arena.memory, used: arena.used } : null,
        control,
        cacheFrames: plan.cacheFramesPerLane,
        framePixels: info.maxFramePixels,
        delayMs: this.delayMs,
      };
      const thread = this.spareThreads.shift() ?? this.spawnLaneThread();
      thread.postMessage({ type: 'init', ...init } satisfies LaneMessage);
      this.lanes.push({ thread, arrays, scratch, control, wasm: arena !== null, busy: null, queued: null, holding: null, folds: 0 });
    }
    // Started at launch but not allowed by the memory plan.
    for (const t of this.spareThreads.splice(0)) void t.terminate();
  }

  /**
   * A compute thread; it waits for its 'init' message. The worker starts its threads at launch,
   * so that isolate start-up and loading the kernels overlap connecting and joining.
   */
  private spawnLaneThread(): Thread {
    const thread = new Thread(new URL('./lane.js', import.meta.url));
    const laneOf = (): Lane | undefined => this.lanes.find((l) => l.thread === thread);
    thread.on('message', (m: LaneReply) => {
      if (m.type === 'ready') {
        this.threadReady(m.seconds);
        return;
      }
      const lane = laneOf();
      if (lane) this.onLane(lane, m);
    });
    thread.on('error', (e) => {
      this.laneFailure = { chunk: laneOf()?.busy?.chunk ?? -1, message: e.message, userError: false };
      this.wake();
    });
    return thread;
  }

  /**
   * Once the threads started at launch have all warmed up: the worker is then idle until it
   * joins a run (operators and the bench's "workers up before" case wait for this line).
   */
  private threadReady(seconds: number): void {
    if (++this.threadsReady !== this.o.threads) return;
    this.log.info('compute threads ready', { threads: this.o.threads, warmUpSeconds: seconds, sinceLaunchSeconds: +process.uptime().toFixed(3) });
  }

  /** The lane's running copy `token` ended: the queued copy (if any) is now the running one. */
  private advanceLane(lane: Lane, token: number): Copy | null {
    if (lane.busy?.token === token) {
      const copy = lane.busy;
      lane.busy = lane.queued;
      lane.queued = null;
      return copy;
    }
    // Cancelled before it started (the worker drops everything to rejoin).
    if (lane.queued?.token === token) {
      const copy = lane.queued;
      lane.queued = null;
      return copy;
    }
    return null;
  }

  private onLane(lane: Lane, m: Exclude<LaneReply, { type: 'ready' }>): void {
    this.aheadDeclined = false;
    if (m.type === 'folded') {
      lane.folds--;
      if (m.counted) this.accChunks.add(m.chunk);
      // The thread counted it by exchanging its sets (lane.ts, settle): the sums are in the other.
      // Nothing here reads either set while a verdict is unsettled (foldsSettled comes first).
      if (m.swapped) [lane.arrays, lane.scratch] = [lane.scratch, lane.arrays];
      const sent = this.sentFromScratch.delete(m.token);
      this.log.debug(
        sent ? 'chunk sent from its scratch set; cleared' : m.swapped ? 'chunk counted (sets exchanged)' : m.counted ? 'chunk counted and folded in' : 'chunk dropped',
        { chunk: m.chunk, seconds: m.seconds },
      );
      const w = this.foldWaiters;
      this.foldWaiters = [];
      for (const f of w) f();
      return;
    }
    if (m.type === 'cancelled') {
      const copy = this.advanceLane(lane, m.token);
      if (copy) this.cancelledCopies.push(copy);
      this.log.info('copy cancelled; its partial sums are discarded', { chunk: m.chunk, attempt: copy?.attempt });
      this.wake();
      return;
    }
    if (m.type === 'done') {
      const copy = this.advanceLane(lane, m.token);
      if (!copy) {
        // Cannot happen; reported to the coordinator as an internal error rather than thrown in a listener.
        this.laneFailure = { chunk: m.chunk, message: `a compute thread reported copy ${m.token} of chunk ${m.chunk}, which it was not given`, userError: false };
        this.wake();
        return;
      }
      if (copy.held) lane.holding = { ...copy, deferred: false };
      this.unreported.push({ ...copy, lane, tilts: m.tiltImages, ms: m.seconds * 1000 });
      this.chunksDone++;
      this.holds = new Set(m.holds);
      if (this.metrics) {
        this.metrics.chunks.inc();
        this.metrics.particles.inc(m.particles);
        this.metrics.tiltImages.inc(m.tiltImages);
        this.metrics.busySeconds.inc(m.seconds);
        this.metrics.heldTiltSeries.set(this.holds.size);
      }
      this.log.debug('chunk done', { chunk: m.chunk, seconds: m.seconds });
    } else {
      lane.busy = lane.queued;
      lane.queued = null;
      this.laneFailure = { chunk: m.chunk, message: m.message, userError: m.userError };
      if (!m.userError) this.log.error('internal error in a compute thread', { stack: m.stack });
    }
    this.wake();
  }

  private startHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    const info = this.info!;
    this.heartbeat = setInterval(() => {
      const hb: Heartbeat = {
        runId: this.o.runId,
        worker: this.id,
        epoch: info.epoch,
        busy: this.lanes.filter((l) => l.busy !== null).map((l) => l.busy!.chunk),
        rss: process.memoryUsage.rss(),
      };
      try {
        this.nc!.publish(this.subj.heartbeat, encode(hb));
      } catch {
        /* disconnected: the client buffers or drops; the coordinator pauses loss detection */
      }
    }, info.heartbeatMs);
  }

  private base(): { runId: string; worker: string; epoch: string } {
    return { runId: this.o.runId, worker: this.id, epoch: this.info!.epoch };
  }

  private async mainLoop(): Promise<Outcome> {
    for (;;) {
      // Events from here on end the next pause; earlier ones are in the state read below.
      this.wakeup.clear();
      if (this.fenced) {
        throw new TomoError(`declared lost by the coordinator (${this.fenced}); its uncommitted chunks are redone by other workers; exiting`);
      }
      if (this.finished) return { kind: 'finished', ...this.finished };
      if (this.laneFailure) {
        const f = this.laneFailure;
        this.laneFailure = null;
        const reply = await this.call({ type: 'fail', ...this.base(), seq: ++this.seq, chunk: f.chunk, message: f.message, userError: f.userError });
        if (reply.type === 'finished') return { kind: 'finished', ok: reply.ok, message: reply.message };
        return { kind: 'finished', ok: false, message: f.message };
      }
      if (this.rejoinAsked) {
        this.rejoinAsked = false;
        return { kind: 'rejoin' };
      }
      // A thread holding a finished chunk is free once the verdict in this request's reply is applied.
      const idle = this.lanes.filter((l) => l.busy === null && !scratchTaken(l));
      const ahead = this.aheadDeclined ? [] : this.lanes.filter((l) => l.busy !== null && l.queued === null && !scratchTaken(l));
      const done = this.unreported.slice();
      const cancelled = this.cancelledCopies.slice();
      if (!this.roundState && idle.length === 0 && ahead.length === 0 && done.length === 0 && cancelled.length === 0) {
        await this.pause(1000);
        continue;
      }
      const reply = await this.call({
        type: 'work',
        ...this.base(),
        seq: ++this.seq,
        done: done.map((d) => d.chunk),
        doneAttempts: done.map((d) => d.attempt),
        doneTilts: done.map((d) => d.tilts),
        doneMs: done.map((d) => Math.round(d.ms)),
        ...(cancelled.length ? { cancelled: cancelled.map((c) => c.chunk), cancelledAttempts: cancelled.map((c) => c.attempt) } : {}),
        holds: [...this.holds],
        idle: idle.length,
        ...(ahead.length ? { ahead: ahead.length } : {}),
        ...(this.roundState ? { round: this.roundState.round } : {}),
      });
      this.unreported.splice(0, done.length);
      this.cancelledCopies.splice(0, cancelled.length);
      // Verdicts first: a chunk counted here may be in a round plan of this same reply.
      if (reply.verdicts) done.forEach((d, i) => this.settle(d, reply.verdicts![i] === true, reply.type === 'reduce'));
      switch (reply.type) {
        case 'chunk': {
          // A thread that is free, else (a direct chunk taken ahead) one with nothing queued.
          const lane =
            idle.find((l) => l.busy === null && !scratchTaken(l)) ??
            (reply.held ? undefined : this.lanes.find((l) => l.queued === null && !scratchTaken(l)));
          if (!lane) throw new Error('a chunk arrived with no compute thread free for it');
          const copy: Copy = { chunk: reply.chunk.id, attempt: reply.attempt, token: ++this.tokens, held: reply.held === true };
          if (lane.busy === null) lane.busy = copy;
          else lane.queued = copy;
          const m: LaneChunk = { type: 'chunk', token: copy.token, held: copy.held, chunk: reply.chunk, tomo: reply.tomo, records: reply.records };
          lane.thread.postMessage(m);
          this.prepareForRounds();
          if (reply.speculative) {
            this.log.info('took a second copy of a straggling chunk', { chunk: reply.chunk.id, attempt: reply.attempt, tomogram: reply.chunk.tomoName });
          } else this.log.debug('chunk taken', { chunk: reply.chunk.id, tomogram: reply.chunk.tomoName });
          break;
        }
        case 'wait':
          // Nothing to take ahead now: ask again only once a thread finishes something.
          if (idle.length === 0) this.aheadDeclined = true;
          await this.pause(reply.ms);
          break;
        case 'reduce':
          this.startRound(reply.plan);
          break;
        case 'outcome':
          await this.onOutcome(reply.round, reply.outcome);
          break;
        case 'fenced':
          this.fenced = reply.reason;
          break;
        case 'rejoin':
          this.rejoinReason = 'the coordinator restarted';
          return { kind: 'rejoin' };
        case 'finished':
          return { kind: 'finished', ok: reply.ok, message: reply.message };
        case 'refused':
          throw new TomoError(`the coordinator refused this worker: ${reply.message}`);
        default:
          await this.pause(200);
      }
    }
  }

  /**
   * Applies the coordinator's verdict on a finished copy: count (fold into the accumulators) or
   * drop. A count that arrives during a commit round waits until the round is over, so the
   * accumulators never change while they are being reduced or cleared. A count in the reply that
   * starts a round (`roundStarts`: the last chunks, held, end a run) goes into the round from the
   * scratch set: the round waited for the fold, 18–26 ms at box 128, and with it the other
   * workers' segments (the coordinator sums segment k of all children together).
   */
  private settle(d: Finished, count: boolean, roundStarts = false): void {
    if (!d.held) {
      if (count) this.accChunks.add(d.chunk);
      else {
        // Cannot happen (a direct chunk is the only copy); its sums are in the accumulators and
        // cannot be taken out, so drop them all and join again (the coordinator redoes them).
        this.log.error('a chunk summed directly was not counted; dropping the uncommitted sums and joining again', { chunk: d.chunk, attempt: d.attempt });
        this.rejoinAsked = true;
        this.rejoinReason = `chunk ${d.chunk} was summed but not counted`;
      }
      return;
    }
    const lane = d.lane;
    if (lane.holding?.token !== d.token) return;
    if (count && this.roundState) {
      lane.holding.deferred = true;
      return;
    }
    if (count && roundStarts) {
      lane.holding.inRound = true;
      this.accChunks.add(d.chunk);
      this.log.debug('chunk counted into the round from its scratch set', { chunk: d.chunk });
      return;
    }
    lane.holding = null;
    lane.folds++;
    const m: LaneVerdict = { type: 'verdict', token: d.token, chunk: d.chunk, count };
    lane.thread.postMessage(m);
    if (!count) this.log.info('finished copy dropped (another copy was counted first)', { chunk: d.chunk, attempt: d.attempt });
  }

  /** Folds the counts deferred during a commit round. */
  private settleDeferred(): void {
    for (const lane of this.lanes) {
      const h = lane.holding;
      if (!h?.deferred) continue;
      lane.holding = null;
      lane.folds++;
      lane.thread.postMessage({ type: 'verdict', token: h.token, chunk: h.chunk, count: true } satisfies LaneVerdict);
    }
  }

  /** Ends the holdings sent in a round: fold them (the round was aborted) or zero them (committed). */
  private settleInRound(fold: boolean): void {
    for (const lane of this.lanes) {
      const h = lane.holding;
      if (!h?.inRound) continue;
      lane.holding = null;
      lane.folds++;
      if (!fold) this.sentFromScratch.add(h.token);
      lane.thread.postMessage({ type: 'verdict', token: h.token, chunk: h.chunk, count: fold } satisfies LaneVerdict);
    }
  }

  /** Resolves when every posted verdict has been applied by its thread. */
  private async foldsSettled(): Promise<void> {
    while (this.lanes.some((l) => l.folds > 0)) await new Promise<void>((r) => this.foldWaiters.push(r));
  }

  private async onOutcome(round: number, outcome: 'pending' | 'committed' | 'aborted'): Promise<void> {
    const r = this.roundState;
    if (!r || r.round !== round) return;
    if (outcome === 'pending') {
      await this.pause(r.status === 'running' ? 250 : 50);
      return;
    }
    if (outcome === 'committed') {
      if (r.status !== 'sent') {
        // Cannot happen: the coordinator commits only what it received from the tree.
        this.log.warn('round committed before this worker finished sending', { round });
      }
      this.clearAccumulators();
      this.tellCleared();
      // Chunks sent from their scratch sets are in the committed sums: the threads zero them.
      this.settleInRound(false);
      this.log.info('round committed; accumulators cleared', { round, chunks: this.accChunks.size });
      this.accChunks.clear();
    } else {
      r.abort.abort('round aborted');
      this.plane!.closeRound('round aborted');
      this.plane!.cancelSenders('round aborted');
      // Chunks that were to go from their scratch sets are kept for the next round: folded in.
      this.settleInRound(true);
      this.log.warn('round aborted; keeping the accumulators for the next round', { round });
    }
    this.roundState = null;
    this.settleDeferred();
  }

  /**
   * Zeroes the accumulators after a commit: only the insertion sphere, the rest is zero already
   * (and, never written, not even paged in: filling it would fault in the other 45 % of the set
   * for nothing, 6 000 pages at box 128).
   */
  private clearAccumulators(): void {
    const runs = this.info ? this.cachedInsertion(this.info.kernel.s, this.info.halves) : null;
    for (const l of this.lanes) {
      if (!runs) {
        for (const a of l.arrays) a.fill(0);
        continue;
      }
      clearRuns(l.arrays, runs);
    }
  }

  /** Lets every lane know its accumulators are zero (it may then count a held chunk by exchange). */
  private tellCleared(): void {
    for (const l of this.lanes) l.thread.postMessage({ type: 'cleared' } satisfies LaneMessage);
  }

  /**
   * Once a lane computes (not on the way to the join, nor in the round): the insertion sphere's
   * pieces for this run's box.
   */
  private prepareForRounds(): void {
    if (this.info) this.insertionFor(this.info.kernel.s, this.info.halves);
  }

  /** The insertion sphere's pieces of a volume set for box s (kept for the last box asked). */
  private insertionFor(box: number, halves: number): LayoutRuns {
    return this.cachedInsertion(box, halves) ?? (this.insertion = { box, halves, runs: insertionRuns(box, halves) }).runs;
  }

  /** The kept pieces if they are those of this box and number of half sets, else null. */
  private cachedInsertion(box: number, halves: number): LayoutRuns | null {
    return this.insertion?.box === box && this.insertion.halves === halves ? this.insertion.runs : null;
  }

  private startRound(plan: ReducePlan): void {
    const state: RoundState = { round: plan.round, abort: new AbortController(), status: 'running' };
    this.roundState = state;
    const t0 = Date.now();
    this.reduce(plan, state.abort.signal).then(
      (bytes) => {
        state.status = 'sent';
        const s = (Date.now() - t0) / 1000;
        this.log.info('round sums sent', { round: plan.round, children: plan.children.length, MiB: +(bytes / MiB).toFixed(2), seconds: s });
        this.wake();
      },
      (e) => {
        state.status = 'failed';
        if (!(e instanceof AbortedError)) this.log.warn('reduction failed; waiting for the coordinator to abort the round', { round: plan.round, error: (e as Error).message });
        this.wake();
      },
    );
  }

  /** This node's part of the tree: own sums + children's, segment by segment, up to the parent. */
  private async reduce(plan: ReducePlan, signal: AbortSignal): Promise<number> {
    const layout = new SetLayout(plan.lengths, plan.segmentDoubles, plan.box !== undefined ? this.insertionFor(plan.box, plan.lengths.length / 2) : undefined);
    const K = layout.segments;
    const plane = this.plane!;
    const receiver = plan.children.length > 0 ? plane.openRound(plan.epoch, plan.round, plan.children, layout) : null;
    const sender = plane.sender(plan.parentEndpoint, plan.epoch, plan.round, K, this.info!.window, plan.segmentDoubles);
    try {
      // Chunks counted just before the round (maybe in the reply that carried the plan) are folded in first.
      await this.foldsSettled();
      const own = [...this.accChunks].sort((x, y) => x - y);
      return await sendSubtree({
        layout,
        // Counted chunks still in scratch sets (see settle) go in as sources of their own.
        sources: [...this.lanes.map((l) => l.arrays), ...this.lanes.filter((l) => l.holding?.inRound).map((l) => l.scratch)],
        children: plan.children,
        receiver,
        sender,
        own: { [this.id]: own },
        signal,
        // TOMORECON_TEST_SEGMENT_DELAY_MS: slow reductions down so that tests can interrupt one.
        segmentDelayMs: this.segmentDelayMs,
      });
    } finally {
      if (receiver) plane.closeRound('round done');
    }
  }

  private async reset(why: string): Promise<void> {
    // Running and finished chunks belong to the old coordinator: cancelled and dropped.
    for (const l of this.lanes) {
      if (!l.busy) continue;
      // Every copy given so far, running or queued, is cancelled.
      Atomics.store(l.control, 0, this.tokens);
      Atomics.notify(l.control, 0);
    }
    while (this.lanes.some((l) => l.busy !== null)) await this.pause(200);
    this.roundState?.abort.abort(why);
    this.roundState = null;
    this.plane?.closeRound(why);
    this.plane?.cancelSenders(why);
    for (const l of this.lanes) {
      const h = l.holding;
      if (!h) continue;
      l.holding = null;
      l.folds++;
      l.thread.postMessage({ type: 'verdict', token: h.token, chunk: h.chunk, count: false } satisfies LaneVerdict);
    }
    await this.foldsSettled();
    for (const l of this.lanes) for (const a of l.arrays) a.fill(0);
    this.tellCleared();
    this.log.warn('discarding uncommitted sums and joining again', { reason: why, chunks: this.accChunks.size });
    this.accChunks.clear();
    this.unreported = [];
    this.cancelledCopies = [];
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private async leave(reason: string): Promise<void> {
    if (!this.nc || !this.info) return;
    try {
      await this.nc.request(this.subj.rpc, encode({ type: 'leave', ...this.base(), reason } satisfies Request), { timeout: 1000 });
    } catch {
      /* the coordinator will notice the silence */
    }
  }

  private async shutdown(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    await Promise.all([...this.lanes.map((l) => l.thread), ...this.spareThreads.splice(0)].map((t) => t.terminate()));
    this.plane?.close();
    await this.metricsServer?.close();
    for (const s of this.subs) s.unsubscribe();
    try {
      await this.nc?.close();
    } catch {
      /* already closed */
    }
  }
}

/** Peak resident set size of this process (VmHWM), in bytes; 0 where /proc is unavailable. */
export function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
