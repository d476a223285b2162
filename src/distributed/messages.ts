/**
 * Control-plane (NATS) and data-plane (ZeroMQ) messages, encoded with msgpackr (typed arrays
 * travel as typed arrays). All NATS subjects of a run start with tomorecon.<run id>.
 */
import { Packr } from 'msgpackr';
import type { KernelOptions, TomogramGeometry } from '../recon/particleKernel.js';
import type { Chunk } from './chunks.js';

const packr = new Packr({ useRecords: false, moreTypes: true });

export function encode(m: unknown): Uint8Array {
  return packr.pack(m);
}

export function decode<T>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}

export interface Subjects {
  /** Worker → coordinator requests (join, work, fail, leave, ping). */
  rpc: string;
  /** Worker heartbeats (published). */
  heartbeat: string;
  /** Coordinator → every worker (wake-ups, end of run). */
  broadcast: string;
  /** Coordinator → one worker (fenced, rejoin, cancel). */
  control: (worker: string) => string;
}

export function subjects(runId: string): Subjects {
  const p = `tomorecon.${runId}`;
  return { rpc: `${p}.rpc`, heartbeat: `${p}.hb`, broadcast: `${p}.bcast`, control: (w) => `${p}.ctl.${w}` };
}

/** What a worker needs to know about the run, sent when it joins. */
export interface RunInfo {
  runId: string;
  epoch: string;
  /**
   * Digest of what the run is made of (options, the identity of every input file, the chunks):
   * a coordinator restarted under the same run id on other inputs has another. A worker's
   * compute threads keep tomograms' tables and frames by work index, valid only within one plan.
   */
  plan: string;
  kernel: KernelOptions;
  hasHalfSets: boolean;
  /** Accumulator pairs in a volume set: 2 with half sets, else 1. */
  halves: number;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  segmentDoubles: number;
  window: number;
  maxFrames: number;
  maxFramePixels: number;
  maxChunkRecordDoubles: number;
  chunkCount: number;
}

export interface FrameRef {
  path: string; // absolute
  section: number;
}

export interface TomoInfo {
  work: number;
  tomogram: number;
  geometry: TomogramGeometry;
  frames: FrameRef[];
  recordLength: number;
}

export interface ReducePlan {
  round: number;
  epoch: string;
  /** Where this node sends its sums: the parent worker's or the coordinator's endpoint. */
  parentEndpoint: string;
  parent: string;
  children: string[];
  lengths: number[];
  segmentDoubles: number;
  /**
   * When set, only the voxels the back-projection can write for this box travel
   * (insertionRuns(box, halves) in tree.ts: about half of the volume set); the rest is zero.
   */
  box?: number;
}

interface Base {
  runId: string;
  worker: string;
}

export interface JoinRequest extends Base {
  type: 'join';
  host: string;
  pid: number;
  endpoint: string;
  memGB: number;
  threads: number;
}

export interface WorkRequest extends Base {
  type: 'work';
  epoch: string;
  seq: number;
  /**
   * Chunks finished since the last answered request. Each is held outside the accumulators
   * until the reply's verdict for it: counted (folded in) or dropped.
   */
  done: number[];
  /** For each of them, the attempt number it was handed out with. */
  doneAttempts?: number[];
  /** For each of them, the particle tilt images back-projected (particle × visible tilt). */
  doneTilts?: number[];
  /**
   * For each of them, the milliseconds its compute thread spent on it. A chunk taken ahead waits
   * behind the one before it, so hand-out to completion would overstate its time.
   */
  doneMs?: number[];
  /** Copies stopped on the coordinator's word (cancel), their partial sums discarded, with their attempt numbers. */
  cancelled?: number[];
  cancelledAttempts?: number[];
  /** Work indices of the tomograms whose frames are cached. */
  holds: number[];
  /** Compute threads without a chunk. */
  idle: number;
  /**
   * Compute threads busy with a chunk and with none queued behind it: each would take one more
   * chunk *ahead* (direct only), so that it starts the moment the current one ends instead of a
   * request round trip later. Answered with a chunk only while plenty are pending (see the
   * coordinator's workReply); otherwise 'wait', and the worker asks again when a thread frees up.
   */
  ahead?: number;
  /** Set while the worker takes part in a commit round: it asks for the round's outcome. */
  round?: number;
}

export interface FailRequest extends Base {
  type: 'fail';
  epoch: string;
  seq: number;
  chunk: number | null;
  message: string;
  userError: boolean;
}

export interface LeaveRequest extends Base {
  type: 'leave';
  epoch: string;
  reason: string;
}

export interface PingRequest {
  type: 'ping';
  runId: string;
  worker: string;
}

export type Request = JoinRequest | WorkRequest | FailRequest | LeaveRequest | PingRequest;

export type Reply = ReplyBody & {
  /**
   * Answer to a work request: for each entry of its `done` list, true = count it (fold it into
   * the accumulators), false = drop it (another copy was counted, or it is stale).
   */
  verdicts?: boolean[];
};

export type ReplyBody =
  | { type: 'joined'; info: RunInfo }
  /**
   * attempt: reported back with the completion; held: compute it outside the accumulators and
   * hold it until the verdict (it may be raced), else sum it directly (it will be counted);
   * speculative: a second copy of a straggling chunk (always held).
   */
  | { type: 'chunk'; chunk: Chunk; attempt: number; held?: boolean; speculative?: boolean; tomo: TomoInfo; records: Float64Array }
  | { type: 'wait'; ms: number }
  | { type: 'reduce'; plan: ReducePlan }
  | { type: 'outcome'; round: number; outcome: 'pending' | 'committed' | 'aborted' }
  | { type: 'fenced'; reason: string }
  | { type: 'rejoin'; reason: string }
  | { type: 'finished'; ok: boolean; message?: string }
  | { type: 'refused'; message: string }
  | { type: 'pong'; epoch: string; pid: number };

export interface Heartbeat {
  runId: string;
  worker: string;
  epoch: string;
  busy: number[];
  /** Resident memory of the worker process, bytes. */
  rss?: number;
}

export type ControlMessage =
  | { type: 'fenced'; reason: string }
  | { type: 'rejoin'; reason: string }
  | { type: 'wake' }
  | { type: 'abort'; round: number }
  /** Stop this copy of a chunk (another copy was counted) and discard its partial sums. */
  | { type: 'cancel'; epoch: string; chunk: number; attempt: number }
  | { type: 'finished'; ok: boolean; message?: string };

/** Data-plane message headers (first frame; the payload, if any, is the second frame). */
export type DataHeader =
  | {
      t: 'seg';
      run: string;
      epoch: string;
      round: number;
      from: string;
      k: number;
      K: number;
      crc: number;
      /** On the last segment: the chunk ids summed, per worker, of the sender's subtree. */
      contrib?: Record<string, number[]>;
    }
  | { t: 'ack' | 'nack'; run: string; epoch: string; round: number; k: number };
