/**
 * The ZeroMQ data plane: every process binds one ROUTER socket (on the interface it was given)
 * and reaches its parent in the reduction tree through a DEALER socket whose routing id is its
 * worker id. Sums travel as two-frame messages [msgpack header, float64 bytes]; the header
 * carries a CRC-32 of the bytes, checked on receipt. The receiver acknowledges every segment
 * (ack) or asks for it again (nack, on a checksum or length mismatch); a sender keeps at most
 * `window` unacknowledged segments, re-sends nacked ones and ones unanswered for 5 s.
 */
import * as zmq from 'zeromq';
import { bytesOf, crc32 } from '../../src/distributed/checksum.js';
import { DataHeader, decode, encode } from '../../src/distributed/messages.js';
import { SetLayout } from '../../src/distributed/tree.js';
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

/** One send at a time per socket (a zeromq.js requirement). */
class SerialSender {
  private chain: Promise<unknown> = Promise.resolve();
  constructor(private readonly sock: zmq.Router | zmq.Dealer) {}
  send(frames: (Buffer | Uint8Array | string)[]): Promise<void> {
    const p = this.chain.then(() => this.sock.send(frames));
    this.chain = p.catch(() => {});
    return p;
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

/** Receives the segments of one round from the node's children. */
export class RoundReceiver {
  private readonly stored = new Map<string, Map<number, Segment>>();
  private readonly next = new Map<string, number>();
  private readonly waiters = new Waiters();
  private closedWith: Error | null = null;
  lastProgress = Date.now();
  bytes = 0;
  mismatches = 0;

  constructor(
    readonly epoch: string,
    readonly round: number,
    readonly children: string[],
    readonly layout: SetLayout,
    private readonly reply: (identity: Buffer, h: DataHeader) => void,
    private readonly log: Logger,
  ) {
    for (const c of children) {
      this.stored.set(c, new Map());
      this.next.set(c, 0);
    }
  }

  onSegment(identity: Buffer, h: Extract<DataHeader, { t: 'seg' }>, payload: Buffer | undefined): void {
    const box = this.stored.get(h.from);
    if (!box || identity.toString() !== h.from || this.closedWith) return;
    const { k } = h;
    const ack = { run: h.run, epoch: h.epoch, round: h.round, k };
    if (h.K !== this.layout.segments || !(k >= 0 && k < h.K)) {
      this.log.warn('segment outside the round layout ignored', { from: h.from, k, K: h.K });
      return;
    }
    const expected = this.layout.segmentLength(k) * 8;
    if (!payload || payload.length !== expected || crc32(payload) !== h.crc) {
      this.mismatches++;
      this.log.warn('checksum mismatch on a received segment; asking for it again', {
        from: h.from,
        round: h.round,
        segment: k,
        bytes: payload?.length ?? 0,
      });
      this.reply(identity, { t: 'nack', ...ack });
      return;
    }
    if (k >= this.next.get(h.from)! && !box.has(k)) {
      let data: Float64Array;
      if (payload.byteOffset % 8 === 0) data = new Float64Array(payload.buffer, payload.byteOffset, payload.length / 8);
      else {
        data = new Float64Array(payload.length / 8);
        bytesOf(data).set(payload);
      }
      box.set(k, { data, contrib: h.contrib });
      this.bytes += payload.length;
      this.lastProgress = Date.now();
      this.waiters.notify();
    }
    this.reply(identity, { t: 'ack', ...ack });
  }

  async take(child: string, k: number, signal?: AbortSignal): Promise<Segment> {
    const box = this.stored.get(child)!;
    for (;;) {
      if (this.closedWith) throw this.closedWith;
      const seg = box.get(k);
      if (seg) {
        box.delete(k);
        this.next.set(child, k + 1);
        return seg;
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
}

/** Sends one node's sums of one round to its parent, segment by segment. */
export class SegmentSender {
  private readonly unacked = new Map<number, Pending>();
  private readonly waiters = new Waiters();
  private failure: Error | null = null;
  bytes = 0;

  constructor(
    private readonly q: SerialSender,
    private readonly base: { run: string; epoch: string; round: number; from: string; K: number },
    private readonly window: number,
    private readonly log: Logger,
  ) {}

  async send(k: number, data: Float64Array, contrib: Record<string, number[]> | undefined, signal?: AbortSignal): Promise<void> {
    while (this.unacked.size >= this.window) {
      if (this.failure) throw this.failure;
      await this.waiters.wait(signal);
    }
    if (this.failure) throw this.failure;
    const payload = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const header = encode({ t: 'seg', ...this.base, k, crc: crc32(payload), contrib } satisfies DataHeader);
    this.unacked.set(k, { header, payload, sentAt: Date.now(), tries: 1 });
    let out = payload;
    if (corruptOnce(k)) {
      out = Buffer.from(payload);
      out[out.length >> 1] ^= 0x5a;
      this.log.warn('test hook: corrupting a segment on its first transmission', { round: this.base.round, segment: k });
    }
    this.bytes += payload.length;
    await this.q.send([Buffer.from(header), out]);
  }

  onReply(h: Extract<DataHeader, { t: 'ack' | 'nack' }>): void {
    const p = this.unacked.get(h.k);
    if (!p) return;
    if (h.t === 'ack') {
      this.unacked.delete(h.k);
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
    this.q.send([Buffer.from(p.header), p.payload]).catch((e) => this.log.warn('re-send failed', { segment: k, error: (e as Error).message }));
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

// TOMORECON_TEST_CORRUPT_SEGMENT=k: flip a byte of segment k the first time this process sends it.
let corruptPending = process.env.TOMORECON_TEST_CORRUPT_SEGMENT !== undefined;
function corruptOnce(k: number): boolean {
  if (!corruptPending || Number(process.env.TOMORECON_TEST_CORRUPT_SEGMENT) !== k) return false;
  corruptPending = false;
  return true;
}

export class DataPlane {
  private router: zmq.Router | null = null;
  private routerQ: SerialSender | null = null;
  private readonly dealers = new Map<string, { sock: zmq.Dealer; q: SerialSender; sender: SegmentSender | null }>();
  private receiver: RoundReceiver | null = null;
  /** Segments that arrived before this node opened their round (a child got its plan first). */
  private early: { identity: Buffer; h: Extract<DataHeader, { t: 'seg' }>; payload: Buffer | undefined }[] = [];
  private timer: NodeJS.Timeout | null = null;
  endpoint = '';

  constructor(
    private readonly id: string,
    private readonly runId: string,
    private readonly log: Logger,
  ) {}

  async bind(endpoint: string): Promise<string> {
    const router = new zmq.Router({ linger: 0 });
    try {
      await router.bind(endpoint);
    } catch (e) {
      router.close();
      throw new Error(`cannot bind the data-plane socket to ${endpoint}: ${(e as Error).message}`);
    }
    this.router = router;
    this.routerQ = new SerialSender(router);
    this.endpoint = router.lastEndpoint ?? endpoint;
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
    const r = new RoundReceiver(epoch, round, children, layout, (identity, h) => {
      this.routerQ!.send([identity, Buffer.from(encode(h))]).catch(() => {});
    }, this.log);
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

  /** A sender of this node's sums of `round` to the parent at `endpoint`. */
  sender(endpoint: string, epoch: string, round: number, K: number, window: number): SegmentSender {
    let d = this.dealers.get(endpoint);
    if (!d) {
      const sock = new zmq.Dealer({ routingId: this.id, linger: 0 });
      sock.connect(endpoint);
      d = { sock, q: new SerialSender(sock), sender: null };
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
    d.sender = new SegmentSender(d.q, { run: this.runId, epoch, round, from: this.id, K }, window, this.log);
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
