/**
 * A worker process: joins the run over NATS, pulls chunks when a compute thread is idle,
 * heartbeats, and takes part in commit rounds (reduction tree over ZeroMQ). Its accumulators
 * hold the chunks done since the last commit; they are zeroed only when the coordinator says
 * the round that carried them was committed.
 */
import fs from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { Worker as Thread } from 'node:worker_threads';
import type { NatsConnection, Subscription } from 'nats';
import { TomoError } from '../src/errors.js';
import { WorkerOptions, zmqEndpoint } from '../src/distributed/flags.js';
import { Logger } from '../src/distributed/log.js';
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
import { SetLayout, addSegment } from '../src/distributed/tree.js';
import { connectNats } from '../coordinator/net/nats.js';
import { AbortedError, DataPlane } from '../coordinator/net/dataPlane.js';
import { MetricsServer, serveMetrics } from '../coordinator/net/metricsServer.js';
import { WorkerMetrics } from '../src/metrics/registry.js';
import type { LaneChunk, LaneInit, LaneReply } from './lane.js';

const MiB = 1024 ** 2;

interface Lane {
  thread: Thread;
  arrays: Float64Array[];
  busy: number | null;
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
  private seq = 0;
  private unreported: number[] = [];
  private readonly accChunks = new Set<number>();
  private holds = new Set<number>();
  private roundState: RoundState | null = null;
  private fenced: string | null = null;
  private rejoinAsked = false;
  private finished: { ok: boolean; message?: string } | null = null;
  private laneFailure: { chunk: number; message: string; userError: boolean } | null = null;
  private wakeUp: (() => void) | null = null;
  private lastContact = Date.now();
  private unreachableLogged = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly subs: Subscription[] = [];
  private readonly delayMs = Number(process.env.TOMORECON_TEST_CHUNK_DELAY_MS ?? 0) || 0;
  private readonly segmentDelayMs = Number(process.env.TOMORECON_TEST_SEGMENT_DELAY_MS ?? 0) || 0;
  private chunksDone = 0;
  private metrics: WorkerMetrics | null = null;
  private metricsServer: MetricsServer | null = null;
  private unreportedTilts: number[] = [];

  constructor(private readonly o: WorkerOptions) {
    this.subj = subjects(o.runId);
  }

  async run(): Promise<void> {
    if (os.endianness() !== 'LE') throw new TomoError('tomorecon workers need a little-endian host');
    this.nc = await connectNats(this.o.nats, this.o.auth, `tomorecon worker ${this.id}`, this.log);
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
          this.log.info('run finished; exiting', { worker: this.id, chunksDone: this.chunksDone, peakRssBytes: peakRss() });
          return;
        }
        await this.reset('the coordinator restarted');
      }
    } finally {
      await this.shutdown();
    }
  }

  private async startMetrics(): Promise<void> {
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
      else if (m.type === 'rejoin') this.rejoinAsked = this.info !== null;
      else if (m.type === 'abort') {
        if (this.roundState?.round === m.round) this.roundState.abort.abort('round aborted by the coordinator');
      } else if (m.type === 'finished') this.finished = { ok: m.ok, message: m.message };
      this.wake();
    };
    this.subs.push(nc.subscribe(this.subj.control(this.id), { callback: (_e, msg) => handle(msg.data) }));
    this.subs.push(nc.subscribe(this.subj.broadcast, { callback: (_e, msg) => handle(msg.data) }));
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  /** Sleeps up to ms, or until a lane finishes or a control message arrives. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeUp = null;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** One request to the coordinator, retried (same sequence number) until it is answered. */
  private async call(req: Request): Promise<Reply> {
    const payload = encode(req);
    let wait = 100;
    for (;;) {
      if (this.fenced) return { type: 'fenced', reason: this.fenced };
      try {
        const msg = await this.nc!.request(this.subj.rpc, payload, { timeout: 3000 });
        this.lastContact = Date.now();
        if (this.unreachableLogged) this.log.info('coordinator reachable again');
        this.unreachableLogged = false;
        return decode<Reply>(msg.data);
      } catch (e) {
        const silent = (Date.now() - this.lastContact) / 1000;
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
    const shape = (i: RunInfo): string =>
      JSON.stringify([i.kernel, i.halves, i.maxFrames, i.maxFramePixels, i.maxChunkRecordDoubles, i.segmentDoubles, i.window]);
    const same = this.info !== null && shape(this.info) === shape(info);
    this.info = info;
    this.seq = 0;
    if (same && this.lanes.length > 0) return;
    for (const l of this.lanes) void l.thread.terminate();
    this.lanes = [];
    const k = info.kernel;
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
      const arrays: Float64Array[] = [];
      for (let h = 0; h < info.halves; h++) {
        arrays.push(new Float64Array(new SharedArrayBuffer(2 * sh * k.s * k.s * 8)));
        arrays.push(new Float64Array(new SharedArrayBuffer(sh * k.s * k.s * 8)));
      }
      const init: LaneInit = { kernel: k, arrays, cacheFrames: plan.cacheFramesPerLane, framePixels: info.maxFramePixels, delayMs: this.delayMs };
      const thread = new Thread(new URL('./lane.js', import.meta.url), { workerData: init });
      const lane: Lane = { thread, arrays, busy: null };
      thread.on('message', (m: LaneReply) => this.onLane(lane, m));
      thread.on('error', (e) => {
        this.laneFailure = { chunk: lane.busy ?? -1, message: e.message, userError: false };
        this.wake();
      });
      this.lanes.push(lane);
    }
  }

  private onLane(lane: Lane, m: LaneReply): void {
    if (m.type === 'done') {
      lane.busy = null;
      this.unreported.push(m.chunk);
      this.unreportedTilts.push(m.tiltImages);
      this.accChunks.add(m.chunk);
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
      lane.busy = null;
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
        busy: this.lanes.filter((l) => l.busy !== null).map((l) => l.busy!),
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
      const idle = this.lanes.filter((l) => l.busy === null);
      if (!this.roundState && idle.length === 0) {
        await this.pause(1000);
        continue;
      }
      const done = this.unreported.slice();
      const doneTilts = this.unreportedTilts.slice();
      const reply = await this.call({
        type: 'work',
        ...this.base(),
        seq: ++this.seq,
        done,
        doneTilts,
        holds: [...this.holds],
        idle: idle.length,
        ...(this.roundState ? { round: this.roundState.round } : {}),
      });
      this.unreported.splice(0, done.length);
      this.unreportedTilts.splice(0, done.length);
      switch (reply.type) {
        case 'chunk': {
          const lane = idle[0];
          lane.busy = reply.chunk.id;
          const m: LaneChunk = { type: 'chunk', chunk: reply.chunk, tomo: reply.tomo, records: reply.records };
          lane.thread.postMessage(m);
          this.log.debug('chunk taken', { chunk: reply.chunk.id, tomogram: reply.chunk.tomoName });
          break;
        }
        case 'wait':
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
      for (const l of this.lanes) for (const a of l.arrays) a.fill(0);
      this.log.info('round committed; accumulators cleared', { round, chunks: this.accChunks.size });
      this.accChunks.clear();
    } else {
      r.abort.abort('round aborted');
      this.plane!.closeRound('round aborted');
      this.plane!.cancelSenders('round aborted');
      this.log.warn('round aborted; keeping the accumulators for the next round', { round });
    }
    this.roundState = null;
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
    const layout = new SetLayout(plan.lengths, plan.segmentDoubles);
    const K = layout.segments;
    const plane = this.plane!;
    const receiver = plan.children.length > 0 ? plane.openRound(plan.epoch, plan.round, plan.children, layout) : null;
    const sender = plane.sender(plan.parentEndpoint, plan.epoch, plan.round, K, this.info!.window);
    const own = [...this.accChunks].sort((x, y) => x - y);
    try {
      for (let k = 0; k < K; k++) {
        const buf = new Float64Array(layout.segmentLength(k));
        layout.copyOut(this.lanes[0].arrays, k, buf);
        for (let i = 1; i < this.lanes.length; i++) layout.addOut(this.lanes[i].arrays, k, buf);
        let contrib: Record<string, number[]> | undefined;
        if (k === K - 1) contrib = { [this.id]: own };
        for (const child of plan.children) {
          const seg = await receiver!.take(child, k, signal);
          addSegment(buf, seg.data);
          if (k === K - 1) Object.assign(contrib!, seg.contrib ?? {});
        }
        // TOMORECON_TEST_SEGMENT_DELAY_MS: slow reductions down so that tests can interrupt one.
        if (this.segmentDelayMs > 0) await new Promise((r) => setTimeout(r, this.segmentDelayMs));
        if (signal.aborted) throw new AbortedError(String(signal.reason));
        await sender.send(k, buf, contrib, signal);
      }
      await sender.drain(signal);
      return sender.bytes;
    } finally {
      if (receiver) plane.closeRound('round done');
    }
  }

  private async reset(why: string): Promise<void> {
    // Wait for running chunks (their results belong to the old coordinator and are dropped).
    while (this.lanes.some((l) => l.busy !== null)) await this.pause(200);
    this.roundState?.abort.abort(why);
    this.roundState = null;
    this.plane?.closeRound(why);
    this.plane?.cancelSenders(why);
    for (const l of this.lanes) for (const a of l.arrays) a.fill(0);
    this.log.warn('discarding uncommitted sums and joining again', { reason: why, chunks: this.accChunks.size });
    this.accChunks.clear();
    this.unreported = [];
    this.unreportedTilts = [];
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
    await Promise.all(this.lanes.map((l) => l.thread.terminate()));
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
