/**
 * Flags of `tomorecon coordinator` and `tomorecon worker` (besides the reconstruct flags the
 * coordinator shares with `tomorecon reconstruct`), and their conversion into checked options.
 * Pure: the CLI builds its parsers from these lists without loading any networking code.
 */
import { TomoError } from '../errors.js';
import { FlagSpec, numberFlag, stringFlag } from '../cli/flags.js';

export const NATS_AUTH_FLAGS: FlagSpec[] = [
  { name: 'nats-user', kind: 'string', describe: 'NATS user name (with --nats-pass)' },
  { name: 'nats-pass', kind: 'string', describe: 'NATS password (with --nats-user)' },
  { name: 'nats-token', kind: 'string', describe: 'NATS authentication token; default: $TOMORECON_NATS_TOKEN (which keeps it off the process list)' },
  { name: 'nats-nkey-seed', kind: 'string', describe: 'File holding an NKey seed (SU…) for NATS authentication' },
  { name: 'nats-creds', kind: 'string', describe: 'NATS .creds file (user JWT and NKey seed)' },
  { name: 'nats-tls-ca', kind: 'string', describe: 'CA certificate file (PEM) to verify the NATS server; turns TLS on' },
  { name: 'nats-tls-cert', kind: 'string', describe: 'Client certificate file (PEM) for NATS mutual TLS' },
  { name: 'nats-tls-key', kind: 'string', describe: 'Client key file (PEM) for NATS mutual TLS' },
];

export const METRICS_FLAGS: FlagSpec[] = [
  { name: 'metrics-port', kind: 'number', describe: 'Serve Prometheus metrics on this port (/metrics; 0 = any free port); default: off' },
  { name: 'metrics-bind', kind: 'string', describe: 'Interface the metrics endpoint binds to; default 127.0.0.1' },
];

export const COORDINATOR_FLAGS: FlagSpec[] = [
  { name: 'nats', kind: 'string', describe: 'NATS server URL, e.g. nats://host:4222 (required)' },
  { name: 'run-id', kind: 'string', describe: 'Run id the workers are started with (letters, digits, - and _); default: a random one, printed at start' },
  { name: 'heartbeat-timeout', kind: 'number', describe: 'Seconds without a heartbeat after which a worker is declared lost; default 10' },
  { name: 'chunk-size', kind: 'number', describe: 'Particles per chunk (unit of work); default: total/256, between 1 and 64' },
  {
    name: 'min-workers',
    kind: 'number',
    describe: 'Hand out no chunk until this many workers have joined (the wait is logged; later joins and losses do not stop the run); default 1',
  },
  { name: 'commit-interval', kind: 'number', describe: 'Seconds between commit rounds (reduction + checkpoint); default 300' },
  { name: 'zmq-bind', kind: 'string', describe: 'Interface (or tcp://host:port) the data-plane socket binds to; default 127.0.0.1' },
  { name: 'segment-mb', kind: 'number', describe: 'Size of the pieces volumes are reduced in, MiB; default 1' },
  {
    name: 'speculate-after',
    kind: 'number',
    describe: 'When nothing is pending, give an idle worker a second copy of a chunk running longer than this many times the median chunk time (first result counts); 0 = never; default 2',
  },
  ...METRICS_FLAGS,
  ...NATS_AUTH_FLAGS,
];

export const WORKER_FLAGS: FlagSpec[] = [
  { name: 'nats', kind: 'string', describe: 'NATS server URL, e.g. nats://host:4222 (required)' },
  { name: 'run-id', kind: 'string', describe: 'Run id of the coordinator to work for (required); chunks of other runs are never taken' },
  { name: 'mem', kind: 'number', describe: 'Memory cap in GB for accumulators, tilt-image cache and buffers; default -1 = no cap' },
  { name: 'threads', kind: 'number', describe: 'Compute threads, each with its own accumulators; default 1' },
  { name: 'zmq-bind', kind: 'string', describe: 'Interface (or tcp://host:port) the data-plane socket binds to; default 127.0.0.1' },
  { name: 'coordinator-timeout', kind: 'number', describe: 'Seconds to wait for an absent coordinator before giving up; default 600' },
  ...METRICS_FLAGS,
  ...NATS_AUTH_FLAGS,
];

export interface NatsAuthOptions {
  user: string;
  pass: string;
  token: string;
  nkeySeedFile: string;
  credsFile: string;
  tlsCa: string;
  tlsCert: string;
  tlsKey: string;
}

export interface CoordinatorOptions {
  nats: string;
  runId: string;
  heartbeatTimeoutS: number;
  /** 0 = automatic. */
  chunkSize: number;
  /** Workers that must have joined before the first chunk is handed out. */
  minWorkers: number;
  commitIntervalS: number;
  zmqBind: string;
  segmentMiB: number;
  /** Speculative copies of chunks running longer than this × the median chunk time; 0 = never. */
  speculateAfter: number;
  metrics: MetricsOptions;
  auth: NatsAuthOptions;
}

export interface MetricsOptions {
  /** -1 = off. */
  port: number;
  bind: string;
}

export interface WorkerOptions {
  nats: string;
  runId: string;
  memGB: number;
  threads: number;
  zmqBind: string;
  coordinatorTimeoutS: number;
  metrics: MetricsOptions;
  auth: NatsAuthOptions;
}

const RUN_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function checkRunId(id: string): string {
  if (!RUN_ID.test(id)) throw new TomoError(`--run-id '${id}': use 1 to 64 letters, digits, '-' or '_'`);
  return id;
}

export function natsAuthFromArgs(args: Record<string, unknown>): NatsAuthOptions {
  const a: NatsAuthOptions = {
    user: stringFlag(args, 'nats-user', ''),
    pass: stringFlag(args, 'nats-pass', ''),
    // From the environment when not given: a command line is visible to every user of the node.
    token: stringFlag(args, 'nats-token', process.env.TOMORECON_NATS_TOKEN ?? ''),
    nkeySeedFile: stringFlag(args, 'nats-nkey-seed', ''),
    credsFile: stringFlag(args, 'nats-creds', ''),
    tlsCa: stringFlag(args, 'nats-tls-ca', ''),
    tlsCert: stringFlag(args, 'nats-tls-cert', ''),
    tlsKey: stringFlag(args, 'nats-tls-key', ''),
  };
  if (Boolean(a.user) !== Boolean(a.pass)) throw new TomoError('--nats-user and --nats-pass go together');
  const methods = [a.user ? 'user/password' : '', a.token ? 'token' : '', a.nkeySeedFile ? 'nkey' : '', a.credsFile ? 'creds' : ''].filter(Boolean);
  if (methods.length > 1) throw new TomoError(`give one NATS authentication method, not ${methods.join(' and ')}`);
  if (Boolean(a.tlsCert) !== Boolean(a.tlsKey)) throw new TomoError('--nats-tls-cert and --nats-tls-key go together');
  return a;
}

function natsUrl(args: Record<string, unknown>): string {
  const url = stringFlag(args, 'nats', '');
  if (!url) throw new TomoError('--nats URL is required (e.g. --nats nats://127.0.0.1:4222)');
  return url;
}

function metricsFromArgs(args: Record<string, unknown>): MetricsOptions {
  const port = numberFlag(args, 'metrics-port', -1);
  if (port !== -1 && !(Number.isInteger(port) && port >= 0 && port < 65536)) throw new TomoError(`--metrics-port ${port}: give a port number (0 = any free port)`);
  return { port, bind: stringFlag(args, 'metrics-bind', '127.0.0.1') };
}

function positive(v: number, flag: string): number {
  if (!(v > 0)) throw new TomoError(`${flag} ${v} must be greater than 0`);
  return v;
}

function speculateAfter(v: number): number {
  if (!(v === 0 || v >= 1)) throw new TomoError(`--speculate-after ${v}: give a factor ≥ 1 (times the median chunk time), or 0 to never re-dispatch a running chunk`);
  return v;
}

export function coordinatorOptionsFromArgs(args: Record<string, unknown>, randomId: () => string): CoordinatorOptions {
  const chunkSize = numberFlag(args, 'chunk-size', 0);
  if (chunkSize !== 0 && !(Number.isInteger(chunkSize) && chunkSize >= 1)) {
    throw new TomoError(`--chunk-size ${chunkSize} must be a whole number ≥ 1`);
  }
  const minWorkers = numberFlag(args, 'min-workers', 1);
  if (!(Number.isInteger(minWorkers) && minWorkers >= 1)) throw new TomoError(`--min-workers ${minWorkers} must be a whole number ≥ 1`);
  return {
    nats: natsUrl(args),
    runId: checkRunId(stringFlag(args, 'run-id', '') || randomId()),
    heartbeatTimeoutS: positive(numberFlag(args, 'heartbeat-timeout', 10), '--heartbeat-timeout'),
    chunkSize,
    minWorkers,
    commitIntervalS: positive(numberFlag(args, 'commit-interval', 300), '--commit-interval'),
    zmqBind: stringFlag(args, 'zmq-bind', '127.0.0.1'),
    segmentMiB: positive(numberFlag(args, 'segment-mb', 1), '--segment-mb'),
    speculateAfter: speculateAfter(numberFlag(args, 'speculate-after', 2)),
    metrics: metricsFromArgs(args),
    auth: natsAuthFromArgs(args),
  };
}

export function workerOptionsFromArgs(args: Record<string, unknown>): WorkerOptions {
  const runId = stringFlag(args, 'run-id', '');
  if (!runId) throw new TomoError('--run-id is required: the id the coordinator printed when it started');
  const threads = numberFlag(args, 'threads', 1);
  if (!(Number.isInteger(threads) && threads >= 1)) throw new TomoError(`--threads ${threads} must be a whole number ≥ 1`);
  return {
    nats: natsUrl(args),
    runId: checkRunId(runId),
    memGB: numberFlag(args, 'mem', -1),
    threads,
    zmqBind: stringFlag(args, 'zmq-bind', '127.0.0.1'),
    coordinatorTimeoutS: positive(numberFlag(args, 'coordinator-timeout', 600), '--coordinator-timeout'),
    metrics: metricsFromArgs(args),
    auth: natsAuthFromArgs(args),
  };
}

/** `127.0.0.1` → `tcp://127.0.0.1:*` (any free port); a full tcp:// endpoint is used as given. */
export function zmqEndpoint(bind: string): string {
  if (/^tcp:\/\//.test(bind)) return bind;
  if (/^[A-Za-z0-9.:\-[\]]+$/.test(bind) && !bind.includes('/')) {
    return bind.includes(':') && !bind.startsWith('[') ? `tcp://[${bind}]:*` : `tcp://${bind}:*`;
  }
  throw new TomoError(`--zmq-bind '${bind}': give an interface address (e.g. 127.0.0.1) or an endpoint tcp://host:port`);
}
