/**
 * The Prometheus metrics of a run (prom-client registries). Names and labels follow Prometheus
 * conventions: snake_case with the `tomorecon_` prefix, base units (seconds, bytes), `_total` on
 * counters only, labels of bounded cardinality (chunk states, worker ids, phases). The HTTP side
 * lives in metricsServer.ts; this file only defines and updates values.
 */
import client from 'prom-client';

/**
 * prom-client's default process and Node.js metrics, minus the three gauges it names with a
 * counter's `_total` suffix (promtool rejects them; their per-type siblings stay).
 */
function collectDefaults(r: client.Registry): void {
  client.collectDefaultMetrics({ register: r });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    r.removeSingleMetric(name);
  }
}

export const CHUNK_STATES = ['pending', 'assigned', 'done', 'committed'] as const;
export type ChunkState = (typeof CHUNK_STATES)[number];

export class CoordinatorMetrics {
  readonly registry = new client.Registry();
  readonly chunks: client.Gauge<'state'>;
  readonly particlesBackprojected: client.Counter;
  readonly tiltImagesBackprojected: client.Counter;
  readonly progressRatio: client.Gauge;
  readonly etaSeconds: client.Gauge;
  readonly workers: client.Gauge<'state'>;
  readonly workerChunks: client.Counter<'worker'>;
  readonly workerThroughput: client.Gauge<'worker'>;
  readonly workerHeartbeat: client.Gauge<'worker'>;
  readonly workerRss: client.Gauge<'worker'>;
  readonly requeues: client.Counter;
  readonly workersLost: client.Counter;
  readonly duplicatesDropped: client.Counter;
  readonly reductionBytes: client.Counter;
  readonly reductionDuration: client.Histogram;
  readonly phaseDuration: client.Histogram<'phase'>;
  readonly commits: client.Counter;

  constructor(runId: string) {
    const r = this.registry;
    r.setDefaultLabels({ run_id: runId });
    collectDefaults(r);
    this.chunks = new client.Gauge({ name: 'tomorecon_chunks', help: 'Chunks of the run by state.', labelNames: ['state'], registers: [r] });
    for (const s of CHUNK_STATES) this.chunks.set({ state: s }, 0);
    this.particlesBackprojected = new client.Counter({
      name: 'tomorecon_particles_backprojected_total',
      help: 'Particles back-projected by the workers (each counted once per delivered chunk result).',
      registers: [r],
    });
    this.tiltImagesBackprojected = new client.Counter({
      name: 'tomorecon_tilt_images_backprojected_total',
      help: 'Particle tilt images (particle × visible tilt) back-projected.',
      registers: [r],
    });
    this.progressRatio = new client.Gauge({ name: 'tomorecon_progress_ratio', help: 'Fraction of the run done (0–1).', registers: [r] });
    this.etaSeconds = new client.Gauge({ name: 'tomorecon_eta_seconds', help: 'Estimated seconds until the back-projection is done.', registers: [r] });
    this.workers = new client.Gauge({ name: 'tomorecon_workers', help: 'Workers by state.', labelNames: ['state'], registers: [r] });
    this.workers.set({ state: 'active' }, 0);
    this.workers.set({ state: 'lost' }, 0);
    this.workerChunks = new client.Counter({
      name: 'tomorecon_worker_chunks_completed_total',
      help: 'Chunks completed, per worker.',
      labelNames: ['worker'],
      registers: [r],
    });
    this.workerThroughput = new client.Gauge({
      name: 'tomorecon_worker_particles_per_second',
      help: 'Recent back-projection throughput of each worker.',
      labelNames: ['worker'],
      registers: [r],
    });
    this.workerHeartbeat = new client.Gauge({
      name: 'tomorecon_worker_last_heartbeat_timestamp_seconds',
      help: 'Unix time of the last heartbeat received from each worker.',
      labelNames: ['worker'],
      registers: [r],
    });
    this.workerRss = new client.Gauge({
      name: 'tomorecon_worker_resident_memory_bytes',
      help: 'Resident memory reported by each worker in its heartbeat (for workers whose own /metrics cannot be scraped).',
      labelNames: ['worker'],
      registers: [r],
    });
    this.requeues = new client.Counter({ name: 'tomorecon_chunk_requeues_total', help: 'Chunks dispatched again (lost worker, straggler, corrupt transfer).', registers: [r] });
    this.workersLost = new client.Counter({ name: 'tomorecon_workers_lost_total', help: 'Workers declared lost (silent past the heartbeat timeout).', registers: [r] });
    this.duplicatesDropped = new client.Counter({
      name: 'tomorecon_duplicate_results_dropped_total',
      help: 'Chunk results dropped because the chunk was already counted.',
      registers: [r],
    });
    this.reductionBytes = new client.Counter({
      name: 'tomorecon_reduction_received_bytes_total',
      help: 'Bytes of partial volumes received by the coordinator in reductions.',
      registers: [r],
    });
    this.reductionDuration = new client.Histogram({
      name: 'tomorecon_reduction_duration_seconds',
      help: 'Duration of reduction (commit) rounds.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [r],
    });
    this.phaseDuration = new client.Histogram({
      name: 'tomorecon_phase_duration_seconds',
      help: 'Duration of the phases of the run (planning, back-projection, reduction, symmetrisation, finalisation, …).',
      labelNames: ['phase'],
      buckets: [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
      registers: [r],
    });
    this.commits = new client.Counter({ name: 'tomorecon_commits_total', help: 'Commit rounds (reduction + checkpoint) completed.', registers: [r] });
  }

  setChunkCounts(counts: Record<ChunkState, number>): void {
    for (const s of CHUNK_STATES) this.chunks.set({ state: s }, counts[s]);
  }
}

export class WorkerMetrics {
  readonly registry = new client.Registry();
  readonly chunks: client.Counter;
  readonly particles: client.Counter;
  readonly tiltImages: client.Counter;
  readonly busySeconds: client.Counter;
  readonly heldTiltSeries: client.Gauge;
  readonly memoryCapBytes: client.Gauge;

  constructor(runId: string, workerId: string) {
    const r = this.registry;
    r.setDefaultLabels({ run_id: runId, worker: workerId });
    collectDefaults(r);
    this.chunks = new client.Counter({ name: 'tomorecon_worker_chunks_total', help: 'Chunks this worker back-projected.', registers: [r] });
    this.particles = new client.Counter({ name: 'tomorecon_worker_particles_total', help: 'Particles this worker back-projected.', registers: [r] });
    this.tiltImages = new client.Counter({ name: 'tomorecon_worker_tilt_images_total', help: 'Particle tilt images this worker back-projected.', registers: [r] });
    this.busySeconds = new client.Counter({ name: 'tomorecon_worker_busy_seconds_total', help: 'Seconds spent back-projecting.', registers: [r] });
    this.heldTiltSeries = new client.Gauge({ name: 'tomorecon_worker_tilt_series_held', help: 'Tilt series whose frames this worker holds.', registers: [r] });
    this.memoryCapBytes = new client.Gauge({ name: 'tomorecon_worker_memory_cap_bytes', help: 'The worker --mem cap (0 = none).', registers: [r] });
  }
}
