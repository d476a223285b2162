/**
 * The ZeroMQ data plane: every process binds one ROUTER socket (on the interface it was given)
 * and reaches its parent in the reduction tree through a DEALER socket whose routing id is its
 * worker id. Sums travel as two-frame messages [msgpack header, float64 bytes]; the header
 * carries a CRC-32 of the bytes, checked on receipt. The receiver acknowledges a segment (ack)
 * when it takes it for summing, or asks for it again at once (nack, on a checksum or length
 * mismatch); a sender keeps at most `window` unacknowledged segments, re-sends nacked ones and
 * ones unanswered for 5 s. Segment bytes are never copied on the way: sent from the buffer they
 * were summed in, received into ZeroMQ's own message memory and used there.
 */
import os from 'node:os';
import * as zmq from 'zeromq';
import { bytesOf, crc32 } from '../../src/distributed/checksum.js';
import { DataHeader, decode, encode } from '../../src/distributed/messages.js';
import { SetLayout, addSegment } from '../../src/distributed/tree.js';
import type { Logger } from '../../src/distributed/log.js';

export interface Segment {
  data: Float64Array;
  contrib?: Record<string, number[]>;
}

export class AbortedError extends Error {
  constructor(why: string) {
    super(why);
    this.name = 'AbortedError';
  }
}

/**
 * Sends at once, never waiting: the data-plane sockets have sendTimeout 0, so zeromq.js queues a
 * message synchronously (or rejects, at the high-water mark of 1000 messages, which a window of a
 * few segments never reaches; the segment is then re-sent after 5 s like a lost one). Sending
 * synchronously matters: an acknowledgement must leave when the segment is taken, not after
 * whatever the taker does next (adding it in, or the coordinator's commit and checkpoint).
 */
class ImmediateSender {
  constructor(private readonly sock: zmq.Router | zmq.Dealer) {}
  send(frames: (Buffer | Uint8Array | string)[]): Promise<void> {
    return this.sock.send(frames);
  }
}

/** A promise that resolves at the next notify() or rejects when `signal` aborts. */
class Waiters {
  private list: { resolve: () => void; reject: (e: Error) => void }[] = [];
  wait(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new AbortedError(String(signal.reason ?? 'aborted')));
      const onAbort = (): void => reject(new AbortedError(String(signal?.reason ?? 'aborted')));
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => signal?.removeEventListener('abort', onAbort);
      this.list.push({
        resolve: () => (done(), resolve()),
        reject: (e) => (done(), reject(e)),
      });
    });
  }
  notify(): void {
    const l = this.list;
    this.list = [];
    for (const w of l) w.resolve();
  }
  failAll(e: Error): void {
    const l = this.list;
    this.list = [];
    for (const w of l) w.reject(e);
  }
}

/**
 * Receives the segments of one round from the node's children. A segment is acknowledged when
 * it is taken (consumed), not when it arrives, so a child can be at most `window` segments ahead
 * of this node: that is what bounds the segments a node holds ((3W + 2), docs/distributed.md).
 * Taken segments belong to the taker (the payload is the ZeroMQ message's own memory, not a
 * copy): a worker adds its sums into it and sends it on; the coordinator adds it to its sums.
 */
export class RoundReceiver {
  private readonly stored = new Map<string, Map<number, { seg: Segment; identity: Buffer }>>();
  private readonly next = new Map<string, number>();
  private readonly waiters = new Waiters();
  private closedWith: Error | null = null;
  lastProgress = Date.now();
  bytes = 0;
  mismatches = 0;
  /** The most segments held (received, not yet taken) from one child at any time. */
  maxHeld = 0;

  constructor(
    readonly epoch: string,
    readonly round: number,
    readonly children: string[],
    readonly layout: SetLayout,
    private readonly reply: (identity: Buffer, h: DataHeader) => void,
    private readonly log: Logger,
    private readonly runId: string,
  ) {
    for (const c of children) {
      this.stored.set(c, new Map());
      this.next.set(c, 0);
    }
  }

  private ack(identity: Buffer, t: 'ack' | 'nack', k: number): void {
    this.reply(identity, { t, run: this.runId, epoch: this.epoch, round: this.round, k });
  }

  onSegment(identity: Buffer, h: Extract<DataHeader, { t: 'seg' }>, payload: Buffer | undefined): void {
    const box = this.stored.get(h.from);
    if (!box || identity.toString() !== h.from || this.closedWith) return;
    const { k } = h;
    if (h.K !== this.layout.segments || !(k >= 0 && k < h.K)) {
      this.log.warn('segment outside the round layout ignored', { from: h.from, k, K: h.K });
      return;
    }
    // Taken already (its acknowledgement was lost): acknowledged again. Held, not yet taken:
    // it is acknowledged when taken.
    if (k < this.next.get(h.from)!) return this.ack(identity, 'ack', k);
    if (box.has(k)) return;
    const expected = this.layout.segmentLength(k) * 8;
    if (!payload || payload.length !== expected || crc32(payload) !== h.crc) {
      this.mismatches++;
      this.log.warn('checksum mismatch on a received segment; asking for it again', {
        from: h.from,
        round: h.round,
        segment: k,
        bytes: payload?.length ?? 0,
      });
      return this.ack(identity, 'nack', k);
    }
    let data: Float64Array;
    if (payload.byteOffset % 8 === 0) data = new Float64Array(payload.buffer, payload.byteOffset, payload.length / 8);
    else {
      data = new Float64Array(payload.length / 8);
      bytesOf(data).set(payload);
    }
    box.set(k, { seg: { data, contrib: h.contrib }, identity });
    this.maxHeld = Math.max(this.maxHeld, box.size);
    this.bytes += payload.length;
    this.lastProgress = Date.now();
    this.waiters.notify();
  }

  /** Segment k of `child` (waits for it), acknowledged now; the caller owns its data. */
  async take(child: string, k: number, signal?: AbortSignal): Promise<Segment> {
    const box = this.stored.get(child)!;
    for (;;) {
      if (this.closedWith) throw this.closedWith;
      const got = box.get(k);
      if (got) {
        box.delete(k);
        this.next.set(child, k + 1);
        this.ack(got.identity, 'ack', k);
        return got.seg;
      }
      await this.waiters.wait(signal);
    }
  }

  close(why: string): void {
    this.closedWith = new AbortedError(why);
    this.waiters.failAll(this.closedWith);
    this.stored.clear();
  }
}

interface Pending {
  header: Uint8Array;
  payload: Buffer;
  sentAt: number;
  tries: number;
  /** A buffer of the plane's pool, returned to it on a clean acknowledgement. */
  pooled: Float64Array | null;
}

/** Sends one node's sums of one round to its parent, segment by segment. */
export class SegmentSender {
  private readonly unacked = new Map<number, Pending>();
  private readonly waiters = new Waiters();
  private failure: Error | null = null;
  bytes = 0;

  constructor(
    private readonly q: ImmediateSender,
    private readonly base: { run: string; epoch: string; round: number; from: string; K: number },
    readonly window: number,
    private readonly log: Logger,
    private readonly pool: BufferPool = new BufferPool(0, 0),
  ) {}

  /**
   * A buffer of `n` doubles for a segment this node fills itself. Pass it back to send() as
   * `pooled`: it returns to the pool when the parent acknowledges it.
   */
  buffer(n: number): { data: Float64Array; pooled: Float64Array } {
    const pooled = this.pool.get(n);
    return { data: pooled.length === n ? pooled : pooled.subarray(0, n), pooled };
  }

  /**
   * Sends segment k (waits while `window` segments are unacknowledged). `data` is sent without
   * a copy and must not change until it is acknowledged (or the round ends).
   */
  async send(k: number, data: Float64Array, contrib: Record<string, number[]> | undefined, signal?: AbortSignal, pooled: Float64Array | null = null): Promise<void> {
    while (this.unacked.size >= this.window) {
      if (this.failure) throw this.failure;
      await this.waiters.wait(signal);
    }
    if (this.failure) throw this.failure;
    const payload = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const header = encode({ t: 'seg', ...this.base, k, crc: crc32(payload), contrib } satisfies DataHeader);
    this.unacked.set(k, { header, payload, sentAt: Date.now(), tries: 1, pooled });
    let out = payload;
    if (corruptOnce(k)) {
      out = Buffer.from(payload);
      out[out.length >> 1] ^= 0x5a;
      this.log.warn('test hook: corrupting a segment on its first transmission', { round: this.base.round, segment: k });
    }
    this.bytes += payload.length;
    await this.q.send([header, out]).catch((e) => this.log.warn('segment not queued; it is sent again later', { segment: k, error: (e as Error).message }));
  }

  onReply(h: Extract<DataHeader, { t: 'ack' | 'nack' }>): void {
    // A late reply about an earlier round's segment k (the same dealer serves every round) is not
    // about this round's: taking it would free the window early and drop the segment's re-send.
    if (h.run !== this.base.run || h.epoch !== this.base.epoch || h.round !== this.base.round) return;
    const p = this.unacked.get(h.k);
    if (!p) return;
    if (h.t === 'ack') {
      this.unacked.delete(h.k);
      // Sent once and received whole: ZeroMQ is done with it. (A re-sent one may still be queued.)
      if (p.pooled && p.tries === 1) this.pool.put(p.pooled);
      this.waiters.notify();
      return;
    }
    if (++p.tries > 5) {
      this.failure = new Error(`segment ${h.k} of round ${this.base.round} was refused 5 times (checksum mismatch)`);
      this.waiters.failAll(this.failure);
      return;
    }
    this.log.warn('segment refused by the receiver (checksum mismatch); sending it again', { round: this.base.round, segment: h.k });
    this.resend(h.k, p);
  }

  resendStale(now: number): void {
    for (const [k, p] of this.unacked) if (now - p.sentAt > 5000) this.resend(k, p);
  }

  private resend(k: number, p: Pending): void {
    p.sentAt = Date.now();
    p.tries = Math.max(p.tries, 2);
    this.q.send([p.header, p.payload]).catch((e) => this.log.warn('re-send failed', { segment: k, error: (e as Error).message }));
  }

  async drain(signal?: AbortSignal): Promise<void> {
    while (this.unacked.size > 0) {
      if (this.failure) throw this.failure;
      await this.waiters.wait(signal);
    }
  }

  cancel(why: string): void {
    this.failure = new AbortedError(why);
    this.waiters.failAll(this.failure);
    this.unacked.clear();
  }
}

/**
 * Segment buffers a node fills itself (a leaf whose segment spans two arrays or sums several
 * compute threads), reused from round to round: at most window + 1 are in use at once.
 */
class BufferPool {
  private free: Float64Array[] = [];
  constructor(
    readonly keep: number,
    readonly size: number,
  ) {}
  get(n: number): Float64Array {
    if (n <= this.size && this.free.length > 0) return this.free.pop()!;
    return new Float64Array(Math.max(n, this.size));
  }
  put(a: Float64Array): void {
    if (this.free.length < this.keep) this.free.push(a);
  }
}

// TOMORECON_TEST_CORRUPT_SEGMENT=k: flip a byte of segment k the first time this process sends it.
let corruptPending = process.env.TOMORECON_TEST_CORRUPT_SEGMENT !== undefined;
function corruptOnce(k: number): boolean {
  if (!corruptPending || Number(process.env.TOMORECON_TEST_CORRUPT_SEGMENT) !== k) return false;
  corruptPending = false;
  return true;
}

/**
 * The endpoint to tell others for a socket bound at `bound`. A wildcard address (0.0.0.0, as in
 * a container, or ::) is where this process listens, not where others reach it: they would
 * connect to themselves. It is replaced by this host's first external address (its interface
 * towards the others, e.g. a container's on the compose network), else loopback.
 */
export function advertised(bound: string, interfaces = os.networkInterfaces()): string {
  const m = /^tcp:\/\/(0\.0\.0\.0|\[::\]|\*):(\d+)$/.exec(bound);
  if (!m) return bound;
  const all = Object.values(interfaces).flatMap((l) => l ?? []);
  const v4 = all.find((a) => a.family === 'IPv4' && !a.internal);
  const v6 = all.find((a) => a.family === 'IPv6' && !a.internal && !a.address.startsWith('fe80'));
  if (m[1] !== '[::]' || !v6) return `tcp://${v4?.address ?? '127.0.0.1'}:${m[2]}`;
  return `tcp://[${v6.address}]:${m[2]}`;
}

export class DataPlane {
  private router: zmq.Router | null = null;
  private routerQ: ImmediateSender | null = null;
  private readonly dealers = new Map<string, { sock: zmq.Dealer; q: ImmediateSender; sender: SegmentSender | null }>();
  private receiver: RoundReceiver | null = null;
  /** Segments that arrived before this node opened their round (a child got its plan first). */
  private early: { identity: Buffer; h: Extract<DataHeader, { t: 'seg' }>; payload: Buffer | undefined }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private pool: BufferPool | null = null;
  endpoint = '';

  constructor(
    private readonly id: string,
    private readonly runId: string,
    private readonly log: Logger,
  ) {}

  async bind(endpoint: string): Promise<string> {
    const router = new zmq.Router({ linger: 0, sendTimeout: 0 });
    try {
      await router.bind(endpoint);
    } catch (e) {
      router.close();
      throw new Error(`cannot bind the data-plane socket to ${endpoint}: ${(e as Error).message}`);
    }
    this.router = router;
    this.routerQ = new ImmediateSender(router);
    this.endpoint = advertised(router.lastEndpoint ?? endpoint);
    void this.receiveLoop(router);
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const d of this.dealers.values()) d.sender?.resendStale(now);
    }, 1000);
    this.timer.unref();
    return this.endpoint;
  }

  private async receiveLoop(router: zmq.Router): Promise<void> {
    try {
      for await (const frames of router) {
        const [identity, head, payload] = frames;
        let h: DataHeader;
        try {
          h = decode<DataHeader>(head);
        } catch {
          this.log.warn('undecodable data-plane message ignored');
          continue;
        }
        if (h.t !== 'seg' || h.run !== this.runId) continue;
        const r = this.receiver;
        if (r && h.epoch === r.epoch && h.round === r.round) r.onSegment(identity, h, payload);
        else if (!r || h.epoch !== r.epoch || h.round > r.round) {
          // Kept until the round is opened here (bounded: senders wait for acks).
          this.early.push({ identity, h, payload });
          if (this.early.length > 16) this.early.shift();
        } else this.log.debug('segment of an earlier round ignored', { from: h.from, round: h.round });
      }
    } catch (e) {
      if (this.router) this.log.warn('data-plane receive loop ended', { error: (e as Error).message });
    }
  }

  /** Starts receiving round `round` from `children`. */
  openRound(epoch: string, round: number, children: string[], layout: SetLayout): RoundReceiver {
    this.receiver?.close('superseded by a new round');
    const r = new RoundReceiver(
      epoch,
      round,
      children,
      layout,
      (identity, h) => {
        this.routerQ!.send([identity, encode(h)]).catch(() => {});
      },
      this.log,
      this.runId,
    );
    this.receiver = r;
    const early = this.early;
    this.early = [];
    for (const e of early) {
      if (e.h.epoch === epoch && e.h.round === round) r.onSegment(e.identity, e.h, e.payload);
      else if (e.h.epoch === epoch && e.h.round > round) this.early.push(e);
    }
    return r;
  }

  closeRound(why: string): void {
    this.receiver?.close(why);
    this.receiver = null;
  }

  /** A sender of this node's sums of `round` to the parent at `endpoint` (segments of at most `segmentDoubles`). */
  sender(endpoint: string, epoch: string, round: number, K: number, window: number, segmentDoubles = 0): SegmentSender {
    let d = this.dealers.get(endpoint);
    if (!d) {
      const sock = new zmq.Dealer({ routingId: this.id, linger: 0, sendTimeout: 0 });
      sock.connect(endpoint);
      d = { sock, q: new ImmediateSender(sock), sender: null };
      this.dealers.set(endpoint, d);
      const entry = d;
      void (async () => {
        try {
          for await (const [head] of sock) {
            let h: DataHeader;
            try {
              h = decode<DataHeader>(head);
            } catch {
              continue;
            }
            if ((h.t === 'ack' || h.t === 'nack') && entry.sender) entry.sender.onReply(h);
          }
        } catch {
          /* socket closed */
        }
      })();
    }
    d.sender?.cancel('superseded by a new round');
    if (this.pool?.keep !== window + 1 || this.pool.size !== segmentDoubles) this.pool = new BufferPool(window + 1, segmentDoubles);
    d.sender = new SegmentSender(d.q, { run: this.runId, epoch, round, from: this.id, K }, window, this.log, this.pool);
    return d.sender;
  }

  cancelSenders(why: string): void {
    for (const d of this.dealers.values()) {
      d.sender?.cancel(why);
      d.sender = null;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.receiver?.close('closing');
    for (const d of this.dealers.values()) {
      d.sender?.cancel('closing');
      d.sock.close();
    }
    this.dealers.clear();
    const r = this.router;
    this.router = null;
    r?.close();
  }
}

/**
 * One node's part of a commit round (docs/distributed.md, "Commit rounds and the reduction"):
 * for each segment k, the node's own sums (`sources`: one list of arrays per compute thread,
 * summed) plus segment k of each child, sent to the parent. The last segment carries the chunk
 * lists of the subtree (`own` and the children's). Resolves with the bytes sent once the parent
 * has acknowledged every segment.
 *
 * No segment is copied more than it must be: a node with children adds its sums (and the other
 * child's) into the first child's segment, which it owns once taken, and sends that on; a leaf
 * with one compute thread sends its accumulators themselves (they do not change during a round)
 * wherever a segment lies within one array, and fills a pooled buffer only for a segment that
 * spans two arrays or sums several threads.
 */
export async function sendSubtree(o: {
  layout: SetLayout;
  sources: Float64Array[][];
  children: string[];
  receiver: RoundReceiver | null;
  sender: SegmentSender;
  own: Record<string, number[]>;
  signal: AbortSignal;
  /** Test hook: a pause before each segment is sent. */
  segmentDelayMs?: number;
}): Promise<number> {
  const { layout, sources, children, receiver, sender, signal } = o;
  const K = layout.segments;
  for (let k = 0; k < K; k++) {
    const last = k === K - 1;
    const contrib: Record<string, number[]> | undefined = last ? { ...o.own } : undefined;
    let out = children.length ? await sumChildren(receiver!, children, k, signal, contrib) : null;
    let pooled: Float64Array | null = null;
    if (out) {
      for (const arrays of sources) layout.addOut(arrays, k, out);
    } else if (sources.length === 1 && (out = layout.view(sources[0], k))) {
      // The accumulators themselves.
    } else {
      const b = sender.buffer(layout.segmentLength(k));
      out = b.data;
      pooled = b.pooled;
      layout.copyOut(sources[0], k, out);
      for (let i = 1; i < sources.length; i++) layout.addOut(sources[i], k, out);
    }
    if (o.segmentDelayMs) await new Promise((r) => setTimeout(r, o.segmentDelayMs));
    if (signal.aborted) throw new AbortedError(String(signal.reason));
    await sender.send(k, out, contrib, signal, pooled);
  }
  await sender.drain(signal);
  return sender.bytes;
}

/**
 * Segment k of every child, summed into the first child's segment as received (which the taker
 * owns), or null without children; with `contrib`, the children's chunk lists are added to it.
 */
async function sumChildren(receiver: RoundReceiver, children: string[], k: number, signal: AbortSignal, contrib?: Record<string, number[]>): Promise<Float64Array | null> {
  let sum: Float64Array | null = null;
  for (const child of children) {
    const seg = await receiver.take(child, k, signal);
    if (sum) addSegment(sum, seg.data);
    else sum = seg.data;
    if (contrib) Object.assign(contrib, seg.contrib ?? {});
  }
  return sum;
}

/**
 * The coordinator's side of a round: `next` = `committed` + the root's sums, segment by segment
 * as they arrive (each is dropped once added, so ZeroMQ's receive buffers are recycled and the
 * addition overlaps the transfer). Committing the round is then swapping `next` in; aborting it,
 * ignoring `next`. Resolves with the chunk lists. `committed` null: the committed sums are zero
 * (nothing committed yet), so the segments are copied and the committed arrays never read (their
 * pages are never faulted in, which is most of the cost of a first pass over fresh memory).
 */
export async function receiveSubtree(
  receiver: RoundReceiver,
  children: string[],
  committed: Float64Array[] | null,
  next: Float64Array[],
  signal: AbortSignal,
): Promise<Record<string, number[]>> {
  const contrib: Record<string, number[]> = {};
  const K = receiver.layout.segments;
  const layout = receiver.layout;
  for (let k = 0; k < K; k++) {
    if (children.length === 2) {
      // Both children's segments added and put in place in one pass (sum2In: the same
      // additions as summing them first, bit for bit).
      const a = await receiver.take(children[0], k, signal);
      const b = await receiver.take(children[1], k, signal);
      if (k === K - 1) Object.assign(contrib, a.contrib ?? {}, b.contrib ?? {});
      layout.sum2In(next, committed, k, a.data, b.data);
      continue;
    }
    const sum = await sumChildren(receiver, children, k, signal, k === K - 1 ? contrib : undefined);
    if (!sum) break;
    if (committed) layout.sumIn(next, committed, k, sum);
    else layout.copyIn(next, k, sum);
  }
  return contrib;
}

/**
 * Writes to every page of `arrays` (keeping their values) in slices of `sliceBytes`, one per
 * turn of the event loop, so that later passes over them take no page faults. `zero`: the
 * arrays are known to hold zeros (fresh), so a page is written without being read first: reading
 * a fresh page maps the shared zero page and the write then faults a second time (measured for a
 * box-128 set: 25 000 faults, 33 ms, against 12 500 and 17 ms, on an idle core). Writing zeros
 * is only right while nothing else writes the arrays: `stop` is asked before every slice, and
 * touching ends when it says so (e.g. a round has started to fill them).
 */
export async function touchPages(arrays: Float64Array[], o: { zero?: boolean; sliceBytes?: number; stop?: () => boolean } = {}): Promise<void> {
  const sliceBytes = o.sliceBytes ?? 1 << 20;
  for (const a of arrays) {
    const b = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    for (let start = 0; start < b.length; start += sliceBytes) {
      if (o.stop?.()) return;
      const end = Math.min(b.length, start + sliceBytes);
      if (o.zero) for (let i = start; i < end; i += 4096) b[i] = 0;
      else for (let i = start; i < end; i += 4096) b[i] = b[i];
      await new Promise((r) => setImmediate(r));
    }
  }
}
