/**
 * The coordinator of a distributed run: plans the run as the local engine does, keeps the queue
 * of chunks and hands them to workers that ask for work (affinity to the tilt series they hold),
 * watches heartbeats and fences lost workers, runs commit rounds (the workers' sums reduced over
 * a tree to here, added to the committed sums, checkpointed), and finally symmetrises and writes
 * the maps with the local engine's functions.
 */
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { Msg, NatsConnection, Subscription } from 'nats';
import { JobAborted, TomoError, isTomoError, pipelineAbortFile } from '../src/errors.js';
import { writeFileAtomic } from '../src/formats/atomicWrite.js';
import { ReconstructOptions, optionWarnings, validateOptions } from '../src/engine/options.js';
import { RunPlan, planRun } from '../src/engine/plan.js';
import { runFingerprint } from '../src/engine/checkpoint.js';
import { finishRun, prepareOutputDir } from '../src/engine/finish.js';
import { FinalisationPool, worthWarmingUp } from '../src/engine/finalisePool.js';
import { PhaseTimes } from '../src/engine/phases.js';
import { RUNTIME_BYTES, planBytes } from '../src/engine/local.js';
import { Accumulator } from '../src/recon/backproject.js';
import { particleRecordLength } from '../src/recon/particleKernel.js';
import { Chunk, chunkPlanDigest, defaultChunkSize, planChunks } from '../src/distributed/chunks.js';
import {
  DistributedCheckpointMeta,
  distributedCheckpointPath,
  readDistributedCheckpoint,
  writeDistributedCheckpoint,
  writeDistributedCheckpointDeferred,
} from '../src/distributed/checkpoint.js';
import { CoordinatorOptions, zmqEndpoint } from '../src/distributed/flags.js';
import { ChunkLedger, CommittedRecord, Dispatch, SpeculationPolicy } from '../src/distributed/ledger.js';
import { Logger, cpuSeconds } from '../src/distributed/log.js';
import { planCoordinatorMemory } from '../src/distributed/memory.js';
import {
  ControlMessage,
  Heartbeat,
  ReducePlan,
  Reply,
  Request,
  RunInfo,
  TomoInfo,
  WorkRequest,
  decode,
  encode,
  subjects,
  Subjects,
} from '../src/distributed/messages.js';
import { LayoutRuns, SetLayout, binaryTree, coordinatorChildren, insertionRuns, treeDepth } from '../src/distributed/tree.js';
import { connectNats } from './net/nats.js';
import { wasmVolume } from '../src/recon/wasmVolume.js';
import { AbortedError, DataPlane, RoundReceiver, receiveSubtree, touchPages } from './net/dataPlane.js';
import { MetricsServer, serveMetrics } from './net/metricsServer.js';
// Loaded only with --metrics-port: prom-client adds ~25 ms to every process start.
import type { CoordinatorMetrics } from '../src/metrics/registry.js';

const MiB = 1024 ** 2;
const WINDOW = 2;
/** Counted chunks needed before the median chunk time is trusted for speculation. */
const SPECULATION_MIN_SAMPLES = 3;

interface WorkerRec {
  id: string;
  host: string;
  pid: number;
  endpoint: string;
  memGB: number;
  threads: number;
  state: 'live' | 'lost' | 'left';
  joinedAt: string;
  lostAt?: string;
  reason?: string;
  lastSeen: number;
  lastSeq: number;
  lastReply: Uint8Array | null;
  completed: number;
  lastNotice: number;
  /** Has been told the run is over (a 'finished' reply, or it left after the broadcast). */
  toldFinished: boolean;
  joinedMs: number;
  lastDoneAt: number;
  rate: number;
  /** Smoothed hand-out-to-completion time of its counted chunks, ms (0 = none yet). */
  chunkMs: number;
}

interface Round {
  n: number;
  participants: string[];
  plans: Map<string, ReducePlan>;
  dispatched: Set<string>;
  started: number;
  receiver: RoundReceiver;
  abort: AbortController;
  layout: SetLayout;
  chunks: number;
  particles: number;
}

interface RoundRecord {
  epoch: string;
  round: number;
  outcome: 'committed' | 'aborted';
  participants: string[];
  depth: number;
  chunks: number;
  particles: number;
  MiB: number;
  seconds: number;
  MBps?: number;
  reason?: string;
}

type Phase = 'running' | 'draining' | 'reducing' | 'finalising' | 'failed';

export class Coordinator {
  private readonly log = new Logger('coordinator');
  private readonly epoch = randomBytes(6).toString('hex');
  private readonly started = new Date().toISOString();
  private readonly subj: Subjects;
  private plan!: RunPlan;
  private chunks!: Chunk[];
  private chunkSize = 0;
  private ledger!: ChunkLedger;
  private committed!: [Accumulator, Accumulator];
  private lengths: number[] = [];
  private roundArrays: Float64Array[] | null = null;
  /** Nothing committed yet (and no checkpoint read): the committed sums are zero, their pages untouched. */
  private committedZero = false;
  /** When the last checkpoint was written (or the back-projection started), ms. */
  private lastCheckpointAt = Date.now();
  private halves = 2;
  private fingerprint = '';
  private roundCounter = 0;
  private roundLog: RoundRecord[] = [];
  private epochs: { epoch: string; started: string }[] = [];
  private resumedChunks = 0;
  private readonly workers = new Map<string, WorkerRec>();
  private readonly fenced = new Set<string>();
  private readonly rejoinNotices = new Map<string, number>();
  private readonly outcomes = new Map<number, 'committed' | 'aborted'>();
  private phase: Phase = 'running';
  /** --min-workers reached (see waitingForWorkers); and the joined count last logged while waiting. */
  private gateOpen = false;
  private gateLoggedAt = 0;
  private round: Round | null = null;
  private nc: NatsConnection | null = null;
  private plane: DataPlane | null = null;
  private readonly subs: Subscription[] = [];
  private connected = true;
  /** A NATS round trip (PING) has been outstanding for too long: the link may be dead without a disconnect yet. */
  private probe: { since: number } | null = null;
  private suspect = false;
  private lastProbe = 0;
  private graceUntil = 0;
  private lastTick = Date.now();
  private lastCommit = Date.now();
  private nextRoundAllowed = 0;
  private consecutiveAborts = 0;
  private lastWaitingLog = 0;
  private lastProgressDecile = -1;
  private failure: Error | null = null;
  private resolveDone: () => void = () => {};
  private rejectDone: (e: Error) => void = () => {};
  private readonly tomoInfos = new Map<number, TomoInfo>();
  private metrics: CoordinatorMetrics | null = null;
  private metricsServer: MetricsServer | null = null;
  private started0 = Date.now();
  private timer: NodeJS.Timeout | null = null;
  private serving = false;
  /** The pieces of the volume set a round moves (insertionRuns), made at the first round. */
  private insertion: LayoutRuns | null = null;
  /** Steps to run while the workers back-project (runServed), once each thread has a chunk done. */
  private beforeWork: (() => void)[] | null = null;
  private hbTimeoutMs: number;
  private segmentDoubles: number;
  /** The finalisation has a pool: data sums are made in WebAssembly memories (dataSums). */
  private wasmSums = false;

  constructor(
    private readonly o: ReconstructOptions,
    private readonly c: CoordinatorOptions,
  ) {
    this.subj = subjects(c.runId);
    this.hbTimeoutMs = c.heartbeatTimeoutS * 1000;
    this.segmentDoubles = Math.max(1024, Math.round((c.segmentMiB * MiB) / 8));
  }

  private get reportPath(): string {
    return path.join(this.o.o, 'distributed_report.json');
  }

  async run(): Promise<void> {
    validateOptions(this.o);
    if (this.c.metrics.port >= 0) await this.startMetrics();
    try {
      await this.runServed();
    } finally {
      await this.metricsServer?.close();
    }
  }

  private observePhase(name: string, t0: number): void {
    this.metrics?.phaseDuration.observe({ phase: name }, (Date.now() - t0) / 1000);
  }

  private async runServed(): Promise<void> {
    const t0 = Date.now();
    const o = this.o;
    const plan = planRun(o);
    this.plan = plan;
    this.observePhase('planning', t0);
    for (const w of [...optionWarnings(o), ...plan.warnings]) this.log.warn(w);
    const s = plan.kernel.s;
    const sh = (s >> 1) + 1;
    this.halves = plan.hasHalfSets ? 2 : 1;
    this.lengths = [];
    for (let h = 0; h < this.halves; h++) this.lengths.push(2 * sh * s * s, sh * s * s);
    const symmetric = !/^[cC]1$/.test(o.sym) || o.nrHelicalAsu > 1;
    const mem = planCoordinatorMemory(s, plan.hasHalfSets, symmetric, o.mem, o.j, this.segmentDoubles, WINDOW, RUNTIME_BYTES + planBytes(plan));
    this.wasmSums = mem.finaliseThreads > 0;
    const stale = prepareOutputDir(o.o);
    if (stale > 0) this.log.info('removed temporary files that an interrupted run left', { count: stale, dir: o.o });
    this.chunkSize = this.c.chunkSize || defaultChunkSize(plan.totalParticles);
    this.chunks = planChunks(plan.work, this.chunkSize);
    this.fingerprint = JSON.stringify({ run: runFingerprint(o, plan), chunkSize: this.chunkSize, chunks: chunkPlanDigest(this.chunks) });

    const ckptFile = distributedCheckpointPath(o.o);
    const ckpt = readDistributedCheckpoint(ckptFile, s, this.wasmSums, this.fingerprint);
    let before: CommittedRecord[] = [];
    if (ckpt?.halves) {
      this.committed = ckpt.halves;
      before = ckpt.meta.committed;
      this.roundCounter = ckpt.meta.rounds;
      this.epochs = ckpt.meta.epochs;
      this.roundLog = ckpt.meta.roundLog as RoundRecord[];
      this.resumedChunks = before.length;
      this.log.info('resuming from the checkpoint', { committedChunks: before.length, chunks: this.chunks.length, checkpoint: ckptFile });
    } else {
      if (ckpt) this.log.warn('the checkpoint in the output directory was made with other options or inputs; starting again', { checkpoint: ckptFile });
      this.committed = [
        { data: this.dataSums(2 * sh * s * s), weight: new Float64Array(sh * s * s) },
        { data: this.dataSums(2 * sh * s * s), weight: new Float64Array(sh * s * s) },
      ];
      this.committedZero = true;
    }
    this.epochs.push({ epoch: this.epoch, started: this.started });
    this.ledger = new ChunkLedger(this.chunks, this.epoch, before);
    this.log.info('run planned', {
      run: this.c.runId,
      epoch: this.epoch,
      particles: plan.totalParticles,
      tomograms: plan.work.length,
      chunks: this.chunks.length,
      chunkSize: this.chunkSize,
      box: s,
      volumeSetMiB: +((this.lengths.reduce((a, b) => a + b, 0) * 8) / MiB).toFixed(2),
      coordinatorMemoryMiB: Math.round(mem.totalBytes / MiB),
    });

    const networked = !this.ledger.allCommitted();
    let pool: FinalisationPool | null = null;
    // While the workers back-project: the finalisation threads start up, the round's sums are
    // paged in and the insertion sphere's pieces listed (not at the start of the first round:
    // 10 ms at box 128). Steps, so that the caller can run them on separate turns of the event
    // loop (see workReply). (The round's kernels are not run beforehand to have V8 optimise them:
    // on the bench that took more CPU from the workers than the cold first round loses.)
    const beforeWork: (() => void)[] = [
      () => {
        if (!pool && mem.finaliseThreads > 0) pool = new FinalisationPool(mem.finaliseThreads, { warmUp: worthWarmingUp(s, networked) });
      },
      () => networked && this.prepareRoundSums(),
      () => {
        if (networked) this.insertion ??= insertionRuns(s, this.halves);
      },
    ];
    try {
      const tb = Date.now();
      this.lastCheckpointAt = tb;
      if (networked) await this.distribute(beforeWork);
      else this.log.info('every chunk is committed already; finalising');
      for (const step of beforeWork) step();
      this.observePhase('backprojection', tb);
      // The last round's checkpoint (not written by finishRound) is written by finishRun, meanwhile.
      // As the local engine (--checkpoint_interval): not worth writing after a short run; with
      // --no_recon always (the sums are the result).
      const worth = o.noRecon || (Date.now() - this.lastCheckpointAt) / 1000 >= o.checkpointInterval;
      await this.finalise(t0, pool, ckptFile, networked && !o.noBackup && worth);
    } finally {
      await (pool as FinalisationPool | null)?.close();
      // NATS stays open through the finalisation, so workers asking are told the run is over.
      if (networked) await this.shutdown();
    }
  }

  private async finalise(t0: number, pool: FinalisationPool | null, ckptFile: string, saveSums: boolean): Promise<void> {
    this.phase = 'finalising';
    this.writeReport('finalising');
    try {
      await this.finaliseSums(t0, pool, ckptFile, saveSums);
    } catch (e) {
      // Every chunk is committed (and the workers were told the run is over): only the report
      // has to say that making the maps failed; the run exits with the error.
      this.phase = 'failed';
      this.writeReport('failed', (e as Error).message);
      throw e;
    }
  }

  private async finaliseSums(t0: number, pool: FinalisationPool | null, ckptFile: string, saveSums: boolean): Promise<void> {
    const o = this.o;
    const plan = this.plan;
    // The local engine's end of a run: symmetrise, maps, checkpoint removal, report, note.txt.
    const phases = new PhaseTimes();
    const save = (): Promise<void> => writeDistributedCheckpointDeferred(ckptFile, this.checkpointMeta(), this.committed);
    // With --no_recon the sums are the result: written here (finishRun makes no maps to write
    // them beside), for a later run to finalise from.
    if (o.noRecon && saveSums) await phases.timeAsync('checkpoints', save);
    await finishRun(o, plan, this.committed, {
      symmetryThreads: o.j,
      pool,
      checkpointFile: ckptFile,
      saveSums: saveSums && !o.noRecon ? save : undefined,
      phases,
      log: (line: string) => this.log.info(line),
    });
    for (const [name, seconds] of phases.seconds) this.metrics?.phaseDuration.observe({ phase: name }, seconds);
    this.log.info('time per phase of the finalisation', Object.fromEntries([...phases.seconds].map(([k, v]) => [k, +v.toFixed(3)])));
    const seconds = (Date.now() - t0) / 1000;
    this.writeReport('finished', undefined, seconds);
    this.log.info('done', { particles: plan.totalParticles, chunks: this.chunks.length, seconds: +seconds.toFixed(2), maps: o.o, ...cpuSeconds() });
  }

  // ------------------------------------------------------------------ distribution

  /**
   * The `whenServing` steps run once the workers' first chunks are done (not before: on a shared
   * node they would otherwise compete with the workers' joining and first chunks; see workReply).
   */
  private async distribute(whenServing: (() => void)[]): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.nc = await connectNats(this.c.nats, this.c.auth, 'tomorecon coordinator', this.log, {
      onDisconnect: () => {
        this.connected = false;
      },
      onReconnect: () => {
        this.connected = true;
        this.probe = null;
        this.grace('reconnected to NATS');
      },
    });
    this.timer = setInterval(() => this.tick(), 200);
    await this.checkAlone();
    this.plane = new DataPlane('coordinator', this.c.runId, this.log);
    try {
      await this.plane.bind(zmqEndpoint(this.c.zmqBind));
    } catch (e) {
      throw new TomoError((e as Error).message);
    }
    this.subs.push(this.nc.subscribe(this.subj.rpc, { callback: (_e, m) => this.onRpc(m) }));
    this.subs.push(this.nc.subscribe(this.subj.heartbeat, { callback: (_e, m) => this.onHeartbeat(m.data) }));
    this.serving = true;
    await this.nc.flush();
    // Workers started before this coordinator retry their join with a back-off; this wakes them.
    this.broadcast({ type: 'wake' });
    this.lastCommit = Date.now();
    this.log.info('waiting for workers', {
      run: this.c.runId,
      endpoint: this.plane.endpoint,
      start: `tomorecon worker --nats ${this.c.nats} --run-id ${this.c.runId}`,
    });
    this.beforeWork = whenServing;
    await done;
  }

  /**
   * Tells the workers the run is over and closes. A worker that missed the broadcast (e.g. still
   * reconnecting to NATS) learns it from its next request or from the repeated broadcast; the
   * coordinator waits (at most 2 heartbeat timeouts) until every live worker has been told, except
   * those silent for longer than the heartbeat timeout.
   */
  private async shutdown(): Promise<void> {
    const nc = this.nc;
    if (!nc) return;
    const msg: ControlMessage = { type: 'finished', ok: !this.failure, message: this.failure?.message };
    const deadline = Date.now() + 2 * this.hbTimeoutMs + 1000;
    let lastBroadcast = 0;
    // Not serving (e.g. another coordinator has this run id): tell nobody anything.
    while (this.serving) {
      const now = Date.now();
      const gone = (w: WorkerRec): boolean => this.connected && now > this.graceUntil && now - w.lastSeen > this.hbTimeoutMs;
      const waiting = [...this.workers.values()].filter((w) => w.state === 'live' && !w.toldFinished && !gone(w));
      if (waiting.length === 0 || now > deadline) break;
      if (now - lastBroadcast >= 1000) {
        lastBroadcast = now;
        this.broadcast(msg);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (this.timer) clearInterval(this.timer);
    try {
      await nc.flush();
    } catch {
      /* disconnected */
    }
    for (const sub of this.subs) sub.unsubscribe();
    await nc.close().catch(() => {});
    this.plane?.close();
  }

  private async startMetrics(): Promise<void> {
    const { CoordinatorMetrics } = await import('../src/metrics/registry.js');
    const m = new CoordinatorMetrics(this.c.runId);
    this.metricsServer = await serveMetrics(m.registry, this.c.metrics.port, this.c.metrics.bind);
    this.metrics = m;
    this.log.info('metrics served', { url: `http://${this.c.metrics.bind}:${this.metricsServer.port}/metrics` });
  }

  /** Gauges that follow the ledger and the workers (updated every tick). */
  private updateGauges(now: number): void {
    const m = this.metrics;
    if (!m || !this.ledger) return;
    const L = this.ledger;
    m.setChunkCounts({ pending: L.count('pending'), assigned: L.count('assigned'), done: L.count('done'), committed: L.count('committed') });
    const ws = [...this.workers.values()];
    m.workers.set({ state: 'active' }, ws.filter((w) => w.state === 'live').length);
    m.workers.set({ state: 'lost' }, ws.filter((w) => w.state === 'lost').length);
    if (ws.some((w) => w.state === 'left')) m.workers.set({ state: 'left' }, ws.filter((w) => w.state === 'left').length);
    const total = this.chunks.length;
    const finished = L.count('done') + L.count('committed');
    const ratio = total > 0 ? finished / total : 1;
    m.progressRatio.set(ratio);
    // ETA from the chunks finished by this coordinator process.
    const mine = finished - this.resumedChunks;
    const left = total - finished;
    const elapsed = (now - this.started0) / 1000;
    m.etaSeconds.set(mine > 0 ? (elapsed * left) / mine : 0);
  }

  /** Refuses to run next to another live coordinator of the same run id. */
  private async checkAlone(): Promise<void> {
    try {
      const m = await this.nc!.request(this.subj.rpc, encode({ type: 'ping', runId: this.c.runId, worker: 'coordinator' } satisfies Request), {
        timeout: 1000,
      });
      const r = decode<Reply>(m.data);
      if (r.type === 'pong') {
        throw new TomoError(`another coordinator (pid ${r.pid}) is already serving run ${this.c.runId}; choose another --run-id`);
      }
    } catch (e) {
      if (isTomoError(e)) throw e;
      /* no responders or timeout: we are alone */
    }
  }

  private grace(why: string): void {
    this.graceUntil = Date.now() + this.hbTimeoutMs;
    for (const w of this.workers.values()) w.lastSeen = Math.max(w.lastSeen, Date.now());
    if (this.round) this.round.receiver.lastProgress = Date.now();
    this.log.info('loss detection paused for one heartbeat timeout', { reason: why, seconds: this.c.heartbeatTimeoutS });
  }

  private publish(subject: string, m: ControlMessage): void {
    try {
      this.nc?.publish(subject, encode(m));
    } catch {
      /* disconnected */
    }
  }

  private broadcast(m: ControlMessage): void {
    this.publish(this.subj.broadcast, m);
  }

  private tick(): void {
    const now = Date.now();
    // A blocked event loop (checkpoint writing, summing) is not the workers' silence.
    if (now - this.lastTick > 1000) this.grace(`event loop busy for ${((now - this.lastTick) / 1000).toFixed(1)} s`);
    this.lastTick = now;
    this.updateGauges(now);
    if (this.phase === 'failed' || this.phase === 'finalising') return;
    // The RELION pipeliner's abort: the run stops (committed chunks stay in the checkpoint).
    const abortFile = pipelineAbortFile(this.o.pipelineControl);
    if (abortFile) {
      this.fail(new JobAborted(`${abortFile} found: stopped with ${this.ledger.count('committed')} of ${this.chunks.length} chunks committed`));
      return;
    }
    this.probeNats(now);
    if (!this.connected || this.suspect) {
      if (this.round) this.round.receiver.lastProgress = now;
      return;
    }
    if (now >= this.graceUntil) {
      for (const w of this.workers.values()) {
        if (w.state === 'live' && now - w.lastSeen > this.hbTimeoutMs) this.lose(w, `no heartbeat for ${((now - w.lastSeen) / 1000).toFixed(1)} s`);
      }
    }
    if (this.phase === 'reducing' && this.round) {
      const limit = Math.max(10_000, 3 * this.hbTimeoutMs);
      const last = Math.max(this.round.started, this.round.receiver.lastProgress);
      if (now - last > limit) this.abortRound(this.round, `no data for ${(limit / 1000).toFixed(0)} s`);
    }
    this.advance();
    if (this.phase === 'running' && ![...this.workers.values()].some((w) => w.state === 'live') && now - this.lastWaitingLog > 30_000) {
      this.lastWaitingLog = now;
      this.log.info('no live workers; waiting', { start: `tomorecon worker --nats ${this.c.nats} --run-id ${this.c.runId}` });
    }
  }

  /**
   * Before anyone is declared lost the coordinator's own link must be alive: one NATS round trip
   * per second; while one is unanswered for more than 2 s, loss detection is suspended, and it
   * resumes with a grace period when the server answers again (a silently dead link is only
   * noticed by the client after several missed pings).
   */
  private probeNats(now: number): void {
    if (!this.nc || !this.connected) return;
    if (this.probe) {
      if (!this.suspect && now - this.probe.since > 2000) {
        this.suspect = true;
        this.log.warn('NATS server not answering; loss detection suspended');
      }
      // A round trip lost with the connection may never settle: try a new one.
      if (now - this.probe.since < 10_000) return;
      this.probe = null;
    }
    if (now - this.lastProbe < 1000) return;
    this.lastProbe = now;
    const probe = { since: now };
    this.probe = probe;
    this.nc.rtt().then(
      () => {
        if (this.probe === probe) this.probe = null;
        if (this.suspect) {
          this.suspect = false;
          this.grace('NATS server answering again');
        }
      },
      () => {
        if (this.probe === probe) this.probe = null;
      },
    );
  }

  /** Moves the phase on: start a commit round when due, start reducing when drained, finish. */
  private advance(): void {
    const L = this.ledger;
    if (this.phase === 'running') {
      if (L.allCommitted()) {
        this.phase = 'finalising';
        // The gauges show the end at once (the tick stops updating progress while finalising).
        this.updateGauges(Date.now());
        this.broadcast({ type: 'finished', ok: true });
        this.resolveDone();
        return;
      }
      const doneChunks = L.count('done');
      const nothingLeft = L.count('pending') === 0 && L.inFlight() === 0;
      const due = Date.now() - this.lastCommit >= this.c.commitIntervalS * 1000;
      if (doneChunks > 0 && (nothingLeft || due) && Date.now() >= this.nextRoundAllowed) {
        this.phase = 'draining';
        this.log.info('commit round due; workers finish their chunks and take no new ones', {
          reason: nothingLeft ? 'all chunks done' : 'commit interval',
          inFlight: L.inFlight(),
        });
      }
    }
    if (this.phase === 'draining' && L.inFlight() === 0) this.startRound();
  }

  // ------------------------------------------------------------------ control plane

  private onRpc(m: Msg): void {
    let req: Request;
    try {
      req = decode<Request>(m.data);
    } catch {
      return;
    }
    const reply = (r: Reply): Uint8Array => {
      const bytes = encode(r);
      try {
        m.respond(bytes);
      } catch {
        /* disconnected: the worker retries with the same sequence number */
      }
      return bytes;
    };
    if (req.runId !== this.c.runId) {
      reply({ type: 'refused', message: `this coordinator serves run ${this.c.runId}, not ${req.runId}` });
      return;
    }
    if (req.type === 'ping') {
      reply({ type: 'pong', epoch: this.epoch, pid: process.pid });
      return;
    }
    if (this.fenced.has(req.worker)) {
      const w = this.workers.get(req.worker);
      reply({ type: 'fenced', reason: w?.reason ?? 'declared lost' });
      return;
    }
    if (req.type === 'join') {
      reply(this.onJoin(req));
      return;
    }
    const w = this.workers.get(req.worker);
    if (!w || req.epoch !== this.epoch) {
      if (req.type !== 'leave') reply({ type: 'rejoin', reason: 'the coordinator does not know this worker (it restarted)' });
      else reply({ type: 'wait', ms: 0 });
      return;
    }
    w.lastSeen = Date.now();
    if (req.type === 'leave') {
      if (this.phase === 'finalising' || this.phase === 'failed') w.toldFinished = true;
      else this.departed(w, 'left', req.reason);
      reply({ type: 'wait', ms: 0 });
      return;
    }
    // A retried request (its reply was lost) gets the same reply, and its content is not applied twice.
    if (req.seq === w.lastSeq && w.lastReply) {
      try {
        m.respond(w.lastReply);
      } catch {
        /* retried again later */
      }
      return;
    }
    if (req.seq < w.lastSeq) return; // stale
    w.lastSeq = req.seq;
    const r = req.type === 'fail' ? this.onFail(w, req) : this.onWork(w, req);
    if (r.type === 'finished') w.toldFinished = true;
    w.lastReply = reply(r);
    this.advance();
  }

  private runInfo(): RunInfo {
    const p = this.plan;
    let maxFrames = 0;
    let maxPixels = 0;
    let maxRecords = 0;
    for (const w of p.work) {
      maxFrames = Math.max(maxFrames, w.tomogram.frameCount);
      maxPixels = Math.max(maxPixels, w.tomogram.imageW * w.tomogram.imageH);
      maxRecords = Math.max(maxRecords, particleRecordLength(w.tomogram.frameCount) * Math.min(w.particleCount, this.chunkSize + 1));
    }
    return {
      runId: this.c.runId,
      epoch: this.epoch,
      plan: createHash('sha256').update(this.fingerprint).digest('hex').slice(0, 16),
      kernel: p.kernel,
      hasHalfSets: p.hasHalfSets,
      halves: this.halves,
      heartbeatMs: Math.max(100, Math.min(2000, Math.round(this.hbTimeoutMs / 5))),
      heartbeatTimeoutMs: this.hbTimeoutMs,
      segmentDoubles: this.segmentDoubles,
      window: WINDOW,
      maxFrames,
      maxFramePixels: maxPixels,
      maxChunkRecordDoubles: maxRecords,
      chunkCount: this.chunks.length,
    };
  }

  private onJoin(req: Extract<Request, { type: 'join' }>): Reply {
    if (this.phase === 'finalising') return { type: 'finished', ok: true };
    if (this.phase === 'failed') return { type: 'finished', ok: false, message: this.failure?.message };
    const old = this.workers.get(req.worker);
    if (old && old.state === 'live') {
      // Joining again means it dropped its sums: its chunks are redone.
      const requeued = this.ledger.lose(old.id);
      if (requeued.length) this.log.warn('worker joined again; its uncommitted chunks are redone', { worker: old.id, requeued });
      if (this.round?.participants.includes(old.id)) this.abortRound(this.round, `participant ${old.id} joined again`);
    }
    const now = Date.now();
    this.workers.set(req.worker, {
      id: req.worker,
      host: req.host,
      pid: req.pid,
      endpoint: req.endpoint,
      memGB: req.memGB,
      threads: req.threads,
      state: 'live',
      joinedAt: new Date(now).toISOString(),
      lastSeen: now,
      lastSeq: 0,
      lastReply: null,
      completed: old?.completed ?? 0,
      lastNotice: 0,
      toldFinished: false,
      joinedMs: now,
      lastDoneAt: 0,
      rate: 0,
      chunkMs: 0,
    });
    this.log.info('worker joined', { worker: req.worker, host: req.host, pid: req.pid, endpoint: req.endpoint, mem: req.memGB, threads: req.threads });
    return { type: 'joined', info: this.runInfo() };
  }

  private onWork(w: WorkerRec, req: WorkRequest): Reply {
    // Copies the worker stopped on our word (cancel): never counted.
    (req.cancelled ?? []).forEach((id, i) => {
      const attempt = req.cancelledAttempts?.[i] ?? -1;
      if (!this.validChunk(id)) return;
      const before = this.ledger.state(id);
      if (!this.ledger.cancelled(w.id, id, attempt)) return;
      this.metrics?.duplicatesDropped.inc();
      this.log.info('cancelled copy dropped', { chunk: id, worker: w.id, attempt });
      if (before === 'assigned' && this.ledger.state(id) === 'pending') this.broadcast({ type: 'wake' });
    });
    // The first completion of a running copy is counted; every other one is dropped. The worker
    // holds each finished copy outside its accumulators until it has this verdict.
    const verdicts = req.done.map((id, i) => {
      const attempt = req.doneAttempts?.[i];
      const c = this.ledger.completion(w.id, id, attempt, req.doneMs?.[i]);
      if (c.verdict === 'count') {
        w.completed++;
        if (c.ms !== undefined) w.chunkMs = w.chunkMs === 0 ? c.ms : 0.5 * w.chunkMs + 0.5 * c.ms;
        this.log.debug('chunk done', { chunk: id, worker: w.id, ms: c.ms });
        for (const s of c.superseded) {
          // Stop the losing copy; should it finish first anyway, its verdict is 'drop'.
          this.publish(this.subj.control(s.worker), { type: 'cancel', epoch: this.epoch, chunk: id, attempt: s.attempt });
        }
        if (c.superseded.length) {
          this.log.info('first completion counted; other copies are cancelled and dropped', {
            chunk: id,
            worker: w.id,
            attempt,
            speculative: this.ledger.attempt(id, attempt)?.speculative === true,
            superseded: c.superseded.map((s) => s.worker),
          });
        }
        const m = this.metrics;
        if (m) {
          const n = this.ledger.chunk(id).count;
          m.particlesBackprojected.inc(n);
          m.tiltImagesBackprojected.inc(req.doneTilts?.[i] ?? 0);
          m.workerChunks.inc({ worker: w.id });
          // Particles per second of this worker: the chunk's particles over the time since its previous report.
          const now = Date.now();
          const dt = (now - (w.lastDoneAt || w.joinedMs)) / 1000;
          if (dt > 0) {
            w.rate = w.rate === 0 ? n / dt : 0.7 * w.rate + 0.3 * (n / dt);
            m.workerThroughput.set({ worker: w.id }, w.rate);
          }
          w.lastDoneAt = now;
        }
        return true;
      }
      this.metrics?.duplicatesDropped.inc();
      const late = this.validChunk(id) && this.ledger.attempt(id, attempt)?.outcome === 'dropped' && this.ledger.attempt(id, attempt)?.worker === w.id;
      if (late) this.log.info('late copy dropped (another copy was counted first)', { chunk: id, worker: w.id, attempt });
      else this.log.warn('duplicate or stale completion dropped', { chunk: id, worker: w.id, attempt, state: this.validChunk(id) ? this.ledger.state(id) : 'unknown' });
      return false;
    });
    const r = this.workReply(w, req);
    return req.done.length ? { ...r, verdicts } : r;
  }

  /**
   * --min-workers: no chunk is handed out until that many workers have joined this coordinator
   * (so that a short run is not finished by the first worker before the others start). Once
   * open, the gate stays open: workers lost later do not stop the run.
   */
  private waitingForWorkers(): boolean {
    if (this.gateOpen) return false;
    const joined = this.workers.size;
    if (joined >= this.c.minWorkers) {
      this.gateOpen = true;
      if (this.c.minWorkers > 1) this.log.info('enough workers joined; handing out chunks', { joined, minWorkers: this.c.minWorkers });
      return false;
    }
    if (joined > this.gateLoggedAt) {
      this.gateLoggedAt = joined;
      this.log.info('waiting for workers before handing out chunks (--min-workers)', { joined, minWorkers: this.c.minWorkers });
    }
    return true;
  }

  private validChunk(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.ledger.size;
  }

  private workReply(w: WorkerRec, req: WorkRequest): Reply {
    if (req.done.length) {
      this.progress();
      // Once as many chunks are done as the live workers have compute threads (each has, most
      // likely, finished its first and been given the next): run earlier, the steps held up the
      // replies of workers whose first chunk ended just after another's (43 ms of a compute
      // thread's time, with two workers). One step per turn of the event loop, after this reply
      // has gone out, so that requests are answered between them.
      const steps = this.beforeWork;
      if (steps && this.ledger.count('done') + this.ledger.count('committed') >= this.liveLanes()) {
        this.beforeWork = null;
        const next = (i: number): void => {
          if (i >= steps.length) return;
          steps[i]();
          setImmediate(() => next(i + 1));
        };
        setImmediate(() => next(0));
      }
    }
    this.advance();
    if (this.phase === 'failed') return { type: 'finished', ok: false, message: this.failure?.message };
    if (this.phase === 'finalising') return { type: 'finished', ok: true };
    if (req.round !== undefined) {
      const outcome = this.outcomes.get(req.round) ?? (this.round?.n === req.round ? 'pending' : 'aborted');
      return { type: 'outcome', round: req.round, outcome };
    }
    if (this.phase === 'reducing' && this.round) {
      const plan = this.round.plans.get(w.id);
      if (plan && !this.round.dispatched.has(w.id)) {
        this.round.dispatched.add(w.id);
        return { type: 'reduce', plan };
      }
    }
    if (this.phase === 'running' && this.waitingForWorkers()) return { type: 'wait', ms: 200 };
    if (req.idle <= 0) {
      // A chunk ahead (queued behind the thread's current one) only while more are pending than
      // there are compute threads, so the last chunks go to whichever thread is free first; and
      // only direct ones (a held chunk needs the thread's scratch set, occupied until its verdict).
      if ((req.ahead ?? 0) > 0 && this.phase === 'running' && this.ledger.count('pending') > this.liveLanes() && !this.holdFor(w)) {
        const d = this.ledger.dispatch(w.id, req.holds, false);
        if (d) return this.assigned(w, d, true);
      }
      return { type: 'wait', ms: 1000 };
    }
    if (this.phase !== 'running' && this.phase !== 'draining') return { type: 'wait', ms: 300 };
    const d = this.phase === 'running' ? this.ledger.dispatch(w.id, req.holds, this.holdFor(w)) : null;
    if (d) return this.assigned(w, d, false);
    // Nothing pending (or a commit round is draining): an idle worker takes a second copy of a
    // chunk that has been running for much longer than the typical chunk (a straggler's).
    const policy = this.speculation();
    const s = this.ledger.speculate(w.id, policy);
    if (s) {
      this.metrics?.requeues.inc();
      this.log.info('straggler: chunk re-dispatched to an idle worker', {
        chunk: s.chunk.id,
        worker: w.id,
        attempt: s.attempt,
        runningOn: this.ledger.runners(s.chunk.id).filter((x) => x !== w.id),
        medianChunkMs: Math.round(this.ledger.medianChunkMs() ?? 0),
      });
      return this.chunkReply(s);
    }
    // Come back when a running chunk becomes a straggler candidate (at most 500 ms).
    const dueIn = this.ledger.nextSpeculationIn(w.id, policy, 500);
    return { type: 'wait', ms: dueIn === null ? 500 : Math.max(20, Math.ceil(dueIn) + 10) };
  }

  private assigned(w: WorkerRec, d: Dispatch, ahead: boolean): Reply {
    const c = d.chunk;
    this.log.info('chunk assigned', { chunk: c.id, worker: w.id, tomogram: c.tomoName, first: c.first, count: c.count, attempt: d.attempt, held: d.held, ...(ahead ? { ahead } : {}) });
    return this.chunkReply(d);
  }

  /** Compute threads of the live workers. */
  private liveLanes(): number {
    let lanes = 0;
    for (const x of this.workers.values()) if (x.state === 'live') lanes += x.threads;
    return lanes;
  }

  /**
   * Whether the next chunk for `w` is handed out held (computed outside its accumulators until
   * the verdict, so that it can be raced by a speculative copy) rather than direct (summed
   * straight in, no extra pass over a volume set): when its speed is not known yet, when it is a
   * straggler (its chunks take longer than the speculation threshold), and for the last chunks
   * (no more pending than live compute threads), which are the ones a slow worker can hold up.
   */
  private holdFor(w: WorkerRec): boolean {
    const factor = this.c.speculateAfter;
    if (!(factor > 0)) return false;
    if (w.chunkMs === 0) return true;
    const median = this.ledger.medianChunkMs(SPECULATION_MIN_SAMPLES);
    if (median !== null && w.chunkMs > factor * median) return true;
    return this.ledger.count('pending') <= this.liveLanes();
  }

  private speculation(): SpeculationPolicy {
    return { factor: this.c.speculateAfter, minSamples: SPECULATION_MIN_SAMPLES };
  }

  private chunkReply(d: Dispatch): Reply {
    const chunk = d.chunk;
    const work = this.plan.work[chunk.work];
    const len = particleRecordLength(work.tomogram.frameCount);
    return {
      type: 'chunk',
      chunk,
      attempt: d.attempt,
      ...(d.held ? { held: true } : {}),
      ...(d.speculative ? { speculative: true } : {}),
      tomo: this.tomoInfo(chunk.work),
      records: work.records.slice(chunk.first * len, (chunk.first + chunk.count) * len),
    };
  }

  private tomoInfo(work: number): TomoInfo {
    let t = this.tomoInfos.get(work);
    if (!t) {
      const w = this.plan.work[work];
      t = {
        work,
        tomogram: w.tomogram.index,
        geometry: w.geometry,
        // Inputs are on a shared file system; workers may run in another directory.
        frames: w.tomogram.frames.map((f) => ({ path: path.resolve(f.path), section: f.section })),
        recordLength: particleRecordLength(w.tomogram.frameCount),
      };
      this.tomoInfos.set(work, t);
    }
    return t;
  }

  private onFail(w: WorkerRec, req: Extract<Request, { type: 'fail' }>): Reply {
    const c = req.chunk !== null && req.chunk >= 0 ? this.ledger.chunk(req.chunk) : null;
    const where = c ? ` on chunk ${c.id} (tomogram ${c.tomoName}, particles ${c.first + 1}–${c.first + c.count})` : '';
    const message = req.userError
      ? `worker ${w.id} (${w.host}) failed${where}: ${req.message}`
      : `internal error in worker ${w.id} (${w.host})${where}: ${req.message}`;
    // Every chunk is committed and the maps are being made: the run no longer depends on any
    // worker (before, the report said "failed", the workers were told so, and the run exited 0).
    if (this.phase === 'finalising') {
      this.log.warn('a worker failed after every chunk was committed; the run goes on', { worker: w.id, message });
      return { type: 'finished', ok: true };
    }
    this.fail(req.userError ? new TomoError(message) : new Error(message));
    return { type: 'finished', ok: false, message };
  }

  private onHeartbeat(data: Uint8Array): void {
    let hb: Heartbeat;
    try {
      hb = decode<Heartbeat>(data);
    } catch {
      return;
    }
    if (hb.runId !== this.c.runId) return;
    const w = this.workers.get(hb.worker);
    const now = Date.now();
    if (this.fenced.has(hb.worker)) {
      if (w && now - w.lastNotice > 1000) {
        w.lastNotice = now;
        this.publish(this.subj.control(hb.worker), { type: 'fenced', reason: w.reason ?? 'declared lost' });
      }
      return;
    }
    if (!w || hb.epoch !== this.epoch) {
      if (now - (this.rejoinNotices.get(hb.worker) ?? 0) > 1000) {
        this.rejoinNotices.set(hb.worker, now);
        this.publish(this.subj.control(hb.worker), { type: 'rejoin', reason: 'the coordinator restarted' });
      }
      return;
    }
    w.lastSeen = now;
    if (this.metrics) {
      this.metrics.workerHeartbeat.set({ worker: w.id }, now / 1000);
      if (hb.rss) this.metrics.workerRss.set({ worker: w.id }, hb.rss);
    }
  }

  private progress(): void {
    const total = this.chunks.length;
    const finished = total - this.ledger.count('pending') - this.ledger.inFlight();
    const decile = Math.floor((10 * finished) / total);
    if (decile > this.lastProgressDecile) {
      this.lastProgressDecile = decile;
      this.log.info('progress', {
        chunksDone: finished,
        chunks: total,
        committed: this.ledger.count('committed'),
        percent: Math.round((100 * finished) / total),
      });
    }
  }

  /** Declares a worker lost: fenced (later messages ignored, told to exit), its uncommitted chunks redone. */
  private lose(w: WorkerRec, reason: string): void {
    this.departed(w, 'lost', reason);
  }

  private departed(w: WorkerRec, state: 'lost' | 'left', reason: string): void {
    if (w.state !== 'live') return;
    w.state = state;
    w.lostAt = new Date().toISOString();
    w.reason = reason;
    this.fenced.add(w.id);
    const requeued = this.ledger.lose(w.id);
    this.metrics?.requeues.inc(requeued.length);
    if (state === 'lost') this.metrics?.workersLost.inc();
    if (state === 'lost') this.log.warn('worker lost; fenced, its uncommitted chunks will be redone', { worker: w.id, reason, requeued });
    else this.log.info('worker left', { worker: w.id, reason, requeued });
    this.publish(this.subj.control(w.id), { type: 'fenced', reason });
    if (this.round?.participants.includes(w.id)) this.abortRound(this.round, `participant ${w.id} ${state}`);
    if (requeued.length) this.broadcast({ type: 'wake' });
  }

  private fail(e: Error): void {
    if (this.phase === 'failed') return;
    this.phase = 'failed';
    this.failure = e;
    this.log.error('run failed', { message: e.message });
    if (this.round) this.abortRound(this.round, 'run failed');
    this.broadcast({ type: 'finished', ok: false, message: e.message });
    this.writeReport('failed', e.message);
    this.rejectDone(e);
  }

  // ------------------------------------------------------------------ commit rounds

  private startRound(): void {
    const order = [...this.workers.keys()];
    const participants = this.ledger
      .workersWithDone()
      .filter((id) => this.workers.get(id)?.state === 'live')
      .sort((a, b) => order.indexOf(a) - order.indexOf(b));
    if (participants.length === 0) {
      this.phase = 'running';
      return;
    }
    const n = ++this.roundCounter;
    const s = this.plan.kernel.s;
    // Only the sphere the back-projection writes travels (the rest of the sums is zero everywhere).
    this.insertion ??= insertionRuns(s, this.halves);
    const layout = new SetLayout(this.lengths, this.segmentDoubles, this.insertion);
    const plans = new Map<string, ReducePlan>();
    for (const node of binaryTree(participants)) {
      plans.set(node.worker, {
        round: n,
        epoch: this.epoch,
        parentEndpoint: node.parent ? this.workers.get(node.parent)!.endpoint : this.plane!.endpoint,
        parent: node.parent ?? 'coordinator',
        children: node.children,
        lengths: this.lengths,
        segmentDoubles: this.segmentDoubles,
        box: s,
      });
    }
    let chunks = 0;
    let particles = 0;
    for (const p of participants) {
      for (const id of this.ledger.doneBy(p)) {
        chunks++;
        particles += this.ledger.chunk(id).count;
      }
    }
    const abort = new AbortController();
    const receiver = this.plane!.openRound(this.epoch, n, coordinatorChildren(participants), layout);
    const round: Round = { n, participants, plans, dispatched: new Set(), started: Date.now(), receiver, abort, layout, chunks, particles };
    this.round = round;
    this.phase = 'reducing';
    this.log.info('commit round started', {
      round: n,
      participants,
      depth: treeDepth(participants.length),
      chunks,
      segments: layout.segments,
      volumeSetMiB: +((this.lengths.reduce((a, b) => a + b, 0) * 8) / MiB).toFixed(2),
      // Only the insertion sphere travels (see insertionRuns).
      movedMiB: +((layout.total * 8) / MiB).toFixed(2),
    });
    this.broadcast({ type: 'wake' });
    this.receiveRound(round).then(
      (contrib) => {
        // E.g. its checkpoint cannot be written (disk full): the run fails, reported as any failure.
        try {
          this.finishRound(round, contrib);
        } catch (e) {
          this.fail(e as Error);
        }
      },
      (e) => {
        if (!(e instanceof AbortedError)) this.abortRound(round, (e as Error).message);
      },
    );
  }

  /**
   * The committed sums plus the round being received (receiveSubtree), swapped with the committed
   * sums when the round commits. Allocated, and every page written, before the first round (a
   * slice per turn of the event loop), so that the round takes no page faults. The committed sums
   * are not touched: while they are zero the first round copies instead of adding (nothing reads
   * them), and after it they are the next round's arrays, touched then (finishRound). (Touching
   * both box-128 sets, reading each page and writing it back, took 0.27 s in the coordinator's
   * CPU profile of a bench run, while the workers computed their first chunks; fresh arrays are
   * now touched by writing only, one fault per page instead of two.)
   */
  private prepareRoundSums(): void {
    if (this.roundArrays || this.ledger.allCommitted()) return;
    // Data sums (even indices) as the committed ones: they become the committed sums.
    this.roundArrays = this.lengths.map((n, i) => (i % 2 === 0 ? this.dataSums(n) : new Float64Array(n)));
    touchPages(this.roundArrays, { zero: true, stop: () => this.round !== null }).catch(() => {});
  }

  /**
   * Zero data sums of n doubles: in a WebAssembly memory of their own when a finalisation pool
   * will transform them (wasmVolume.ts: in place, no copy), else an ordinary array.
   */
  private dataSums(n: number): Float64Array {
    return (this.wasmSums ? wasmVolume(this.plan.kernel.s) : null) ?? new Float64Array(n);
  }

  private committedArrays(): Float64Array[] {
    return this.committed.slice(0, this.halves).flatMap((h) => [h.data, h.weight]);
  }

  private receiveRound(round: Round): Promise<Record<string, number[]>> {
    this.prepareRoundSums();
    return receiveSubtree(round.receiver, coordinatorChildren(round.participants), this.committedZero ? null : this.committedArrays(), this.roundArrays!, round.abort.signal);
  }

  private finishRound(round: Round, contrib: Record<string, number[]>): void {
    if (this.round !== round) return;
    const reason = this.ledger.validateRound(round.participants, contrib);
    if (reason) {
      const offenders = round.participants.filter((w) => !sameSet(contrib[w] ?? [], this.ledger.doneBy(w)));
      this.abortRound(round, `chunk lists rejected: ${reason}`);
      for (const id of offenders) this.lose(this.workers.get(id)!, 'its chunk list did not match the chunks it was given');
      return;
    }
    // The round's arrays hold committed + this round's sums: they become the committed sums.
    const next = this.roundArrays!;
    this.committed.slice(0, this.halves).forEach((h, i) => {
      [h.data, next[2 * i]] = [next[2 * i], h.data];
      [h.weight, next[2 * i + 1]] = [next[2 * i + 1], h.weight];
    });
    const wasZero = this.committedZero;
    this.committedZero = false;
    const particles = this.ledger.commit(round.n, contrib);
    // Not needed for the finalisation, which has memory of its own to plan. Otherwise they are
    // the next round's (the first round's committed arrays had never been touched: zeros).
    if (this.ledger.allCommitted()) this.roundArrays = null;
    this.outcomes.set(round.n, 'committed');
    this.plane!.closeRound('committed');
    this.round = null;
    if (this.roundArrays) touchPages(this.roundArrays, { zero: wasZero, stop: () => this.round !== null }).catch(() => {});
    const seconds = (Date.now() - round.started) / 1000;
    const bytes = round.receiver.bytes;
    this.roundLog.push({
      epoch: this.epoch,
      round: round.n,
      outcome: 'committed',
      participants: round.participants,
      depth: treeDepth(round.participants.length),
      chunks: Object.values(contrib).reduce((n, l) => n + l.length, 0),
      particles,
      MiB: +(bytes / MiB).toFixed(3),
      seconds: +seconds.toFixed(3),
      MBps: +(bytes / 1e6 / Math.max(seconds, 1e-6)).toFixed(1),
    });
    this.metrics?.reductionBytes.inc(bytes);
    this.metrics?.reductionDuration.observe(seconds);
    this.metrics?.commits.inc();
    this.lastCommit = Date.now();
    this.consecutiveAborts = 0;
    if (!this.o.noBackup && !this.ledger.allCommitted()) {
      writeDistributedCheckpoint(distributedCheckpointPath(this.o.o), this.checkpointMeta(), this.committed);
      this.lastCheckpointAt = Date.now();
    }
    this.writeReport('running');
    this.log.info('round committed', {
      round: round.n,
      chunks: this.roundLog[this.roundLog.length - 1].chunks,
      particles,
      committedParticles: this.ledger.committedParticles(),
      totalParticles: this.plan.totalParticles,
      seconds: +seconds.toFixed(3),
      receivedMiB: +(bytes / MiB).toFixed(2),
      checkpoint: !this.o.noBackup,
    });
    this.phase = 'running';
    this.broadcast({ type: 'wake' });
    this.advance();
  }

  private abortRound(round: Round, reason: string): void {
    if (this.round !== round) return;
    round.abort.abort(reason);
    this.plane!.closeRound(reason);
    this.outcomes.set(round.n, 'aborted');
    this.round = null;
    this.roundLog.push({
      epoch: this.epoch,
      round: round.n,
      outcome: 'aborted',
      participants: round.participants,
      depth: treeDepth(round.participants.length),
      chunks: 0,
      particles: 0,
      MiB: +(round.receiver.bytes / MiB).toFixed(3),
      seconds: +((Date.now() - round.started) / 1000).toFixed(3),
      reason,
    });
    this.metrics?.reductionBytes.inc(round.receiver.bytes);
    this.broadcast({ type: 'abort', round: round.n });
    this.log.warn('commit round aborted; the workers keep their sums for the next round', { round: round.n, reason });
    if (this.phase === 'failed') return;
    this.phase = 'running';
    this.nextRoundAllowed = Date.now() + 1000;
    if (++this.consecutiveAborts >= 5) {
      this.fail(
        new TomoError(
          `5 commit rounds in a row failed (last: ${reason}); check that the workers' data-plane endpoints (--zmq-bind) are reachable from one another and from the coordinator`,
        ),
      );
    }
  }

  private checkpointMeta(): DistributedCheckpointMeta {
    return {
      fingerprint: this.fingerprint,
      chunkCount: this.chunks.length,
      committed: this.ledger.committedRecords(),
      rounds: this.roundCounter,
      epochs: this.epochs,
      roundLog: this.roundLog,
    };
  }

  // ------------------------------------------------------------------ report

  private writeReport(status: string, message?: string, seconds?: number): void {
    const chunks = this.ledger.report();
    const thisRun = chunks.filter((c) => c.attempts.some((a) => a.epoch === this.epoch));
    const report = {
      runId: this.c.runId,
      epoch: this.epoch,
      status,
      message,
      started: this.started,
      updated: new Date().toISOString(),
      seconds,
      epochs: this.epochs,
      options: {
        chunkSize: this.chunkSize,
        heartbeatTimeoutS: this.c.heartbeatTimeoutS,
        commitIntervalS: this.c.commitIntervalS,
        speculateAfter: this.c.speculateAfter,
        segmentMiB: this.c.segmentMiB,
      },
      totals: {
        chunks: this.chunks.length,
        particles: this.plan.totalParticles,
        committedChunks: this.ledger.count('committed'),
        committedParticles: this.ledger.committedParticles(),
        chunksFromCheckpoint: this.resumedChunks,
        chunksProcessedThisRun: thisRun.length,
        attemptsThisRun: thisRun.reduce((n, c) => n + c.attempts.filter((a) => a.epoch === this.epoch).length, 0),
        chunksRedoneAfterLoss: chunks.filter((c) => c.attempts.some((a) => a.outcome === 'lost')).length,
        duplicatesDropped: this.ledger.duplicatesDropped,
        speculativeCopies: this.ledger.speculations,
        speculativeCopiesCounted: chunks.filter((c) => c.attempts.some((a) => a.speculative && (a.outcome === 'done' || a.outcome === 'committed'))).length,
        copiesCancelled: chunks.reduce((n, c) => n + c.attempts.filter((a) => a.cancelled).length, 0),
        rounds: this.roundLog.filter((r) => r.outcome === 'committed').length,
        abortedRounds: this.roundLog.filter((r) => r.outcome === 'aborted').length,
      },
      workers: [...this.workers.values()].map((w) => ({
        id: w.id,
        host: w.host,
        pid: w.pid,
        endpoint: w.endpoint,
        memGB: w.memGB,
        threads: w.threads,
        state: w.state,
        joinedAt: w.joinedAt,
        lostAt: w.lostAt,
        reason: w.reason,
        chunksCompleted: w.completed,
        chunksCommitted: chunks.filter((c) => c.committed?.worker === w.id && c.committed.epoch === this.epoch).length,
      })),
      rounds: this.roundLog,
      chunks,
    };
    try {
      writeFileAtomic(this.reportPath, JSON.stringify(report, null, 1) + '\n');
    } catch (e) {
      this.log.warn('cannot write the run report', { error: (e as Error).message });
    }
  }
}

function sameSet(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return s.size === a.length && b.every((x) => s.has(x));
}


