/**
 * The data plane (coordinator/net/dataPlane.ts) in one process over loopback: a reduction tree of
 * real DataPlane instances sums exactly, carries the chunk lists, keeps every child within its
 * window (acknowledgement on take), leaves the nodes' own sums untouched, and reuses its buffers
 * from round to round; a receiver asks for a corrupted segment again and acknowledges a segment
 * once it is taken (again, if the acknowledgement was lost).
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as zmq from 'zeromq';
import { AbortedError, DataPlane, SegmentSender, advertised, receiveSubtree, sendSubtree, touchPages } from '../coordinator/net/dataPlane.js';
import { SetLayout, binaryTree, coordinatorChildren } from '../src/distributed/tree.js';
import { crc32 } from '../src/distributed/checksum.js';
import { DataHeader, decode, encode } from '../src/distributed/messages.js';
import { Logger } from '../src/distributed/log.js';

const quiet = new Logger('test', { write: () => true } as unknown as NodeJS.WritableStream, true);
const planes: DataPlane[] = [];
const sockets: zmq.Dealer[] = [];
afterEach(() => {
  for (const p of planes.splice(0)) p.close();
  for (const s of sockets.splice(0)) s.close();
});

async function plane(id: string): Promise<DataPlane> {
  const p = new DataPlane(id, 'run', quiet);
  await p.bind('tcp://127.0.0.1:*');
  planes.push(p);
  return p;
}

// Segments of 1024 doubles over arrays whose ends fall inside segments (15 segments, some spanning two arrays).
const lengths = [5000, 2500, 5000, 2500];
const pattern = (seed: number): Float64Array[] => lengths.map((n, a) => Float64Array.from({ length: n }, (_, i) => ((i * 7 + a * 3 + seed) % 101) - 50));

describe('data plane', () => {
  it('reduces a tree exactly with every child at most a window ahead, twice (first onto zero sums), without touching the sums', async () => {
    const layout = new SetLayout(lengths, 1024);
    const window = 2;
    const ids = ['A', 'B', 'C'];
    const tree = binaryTree(ids); // coordinator ← A, B; A ← C
    const coordinator = await plane('coordinator');
    const nodes = new Map<string, DataPlane>();
    for (const id of ids) nodes.set(id, await plane(id));
    // A sums two compute threads into its child's segments; B sends its accumulators themselves
    // (one thread); C fills pooled buffers (two threads); the coordinator adds A's and B's.
    const sources: Record<string, Float64Array[][]> = { A: [pattern(1), pattern(2)], B: [pattern(3)], C: [pattern(4), pattern(5)] };
    const copies = Object.fromEntries(ids.map((id) => [id, sources[id].map((l) => l.map((a) => a.slice()))]));
    // Round 1: nothing committed yet (null: zero, copied over whatever `next` holds); round 2 adds.
    const committed = lengths.map((n) => new Float64Array(n));
    const next = lengths.map((n) => new Float64Array(n).fill(Number.NaN));
    await touchPages([...committed, ...next]);
    for (const round of [1, 2]) {
      const signal = new AbortController().signal;
      const receiver = coordinator.openRound('e', round, coordinatorChildren(ids), layout);
      const receivers = new Map(tree.filter((n) => n.children.length).map((n) => [n.worker, nodes.get(n.worker)!.openRound('e', round, n.children, layout)]));
      const sent = tree.map((n) =>
        sendSubtree({
          layout,
          sources: sources[n.worker],
          children: n.children,
          receiver: receivers.get(n.worker) ?? null,
          sender: nodes.get(n.worker)!.sender(n.parent ? nodes.get(n.parent)!.endpoint : coordinator.endpoint, 'e', round, layout.segments, window, 1024),
          own: { [n.worker]: [round * 10 + ids.indexOf(n.worker)] },
          signal,
          // The coordinator's children are slow: C must wait for A instead of piling segments up there.
          segmentDelayMs: n.parent === null ? 5 : 0,
        }),
      );
      const contrib = await receiveSubtree(receiver, coordinatorChildren(ids), round === 1 ? null : committed, next, signal);
      const bytes = await Promise.all(sent);
      expect(bytes).toEqual(ids.map(() => layout.total * 8));
      expect(contrib).toEqual({ A: [round * 10], B: [round * 10 + 1], C: [round * 10 + 2] });
      for (let a = 0; a < lengths.length; a++) {
        const want = Float64Array.from(committed[a], (x, i) => x + ids.reduce((s, id) => s + sources[id].reduce((t, l) => t + l[a][i], 0), 0));
        expect(next[a]).toEqual(want);
      }
      expect(receiver.maxHeld).toBeLessThanOrEqual(window);
      expect(receivers.get('A')!.maxHeld).toBeLessThanOrEqual(window);
      for (const id of ids) expect(sources[id]).toEqual(copies[id]);
      coordinator.closeRound('committed');
      for (const id of receivers.keys()) nodes.get(id)!.closeRound('round done');
      committed.forEach((a, i) => a.set(next[i]));
    }
  });

  it('touches pages keeping values, writes zeros only when told the arrays are fresh, and stops when asked', async () => {
    const kept = [Float64Array.from({ length: 3000 }, (_, i) => i + 0.5)];
    await touchPages(kept, { sliceBytes: 4096 });
    expect(kept[0].every((v, i) => v === i + 0.5)).toBe(true);
    const fresh = [new Float64Array(3000), new Float64Array(700)];
    await touchPages(fresh, { zero: true, sliceBytes: 4096 });
    expect(fresh.every((a) => a.every((v) => v === 0))).toBe(true);
    // Stopped before its second slice: what a round wrote meanwhile is not overwritten.
    const written = [new Float64Array(4096)];
    let slices = 0;
    const touching = touchPages(written, { zero: true, sliceBytes: 4096, stop: () => ++slices > 1 });
    written[0].fill(7);
    await touching;
    expect(written[0].every((v) => v === 7)).toBe(true);
  });

  it('tells others a reachable address when bound to a wildcard (0.0.0.0 in a container), not the wildcard', async () => {
    const ifs = {
      lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }],
      eth0: [
        { address: 'fe80::1', family: 'IPv6', internal: false },
        { address: '172.18.0.5', family: 'IPv4', internal: false },
        { address: '2001:db8::5', family: 'IPv6', internal: false },
      ],
    } as unknown as ReturnType<typeof import('node:os').networkInterfaces>;
    expect(advertised('tcp://0.0.0.0:4711', ifs)).toBe('tcp://172.18.0.5:4711');
    expect(advertised('tcp://[::]:4711', ifs)).toBe('tcp://[2001:db8::5]:4711');
    expect(advertised('tcp://10.1.2.3:4711', ifs)).toBe('tcp://10.1.2.3:4711');
    expect(advertised('tcp://0.0.0.0:4711', { lo: ifs.lo } as typeof ifs)).toBe('tcp://127.0.0.1:4711');
    // (Not bound for real to every interface: tests listen on loopback only.)
  });

  it("takes a sender's acknowledgements of its own round only (not late ones of an earlier round's segment k)", async () => {
    const sent: number[] = [];
    const q = { send: async (frames: Uint8Array[]) => void sent.push(decode<{ k: number }>(frames[0]).k) };
    const sender = new SegmentSender(q as unknown as ConstructorParameters<typeof SegmentSender>[0], { run: 'run', epoch: 'e', round: 7, from: 'A', K: 2 }, 1, quiet);
    await sender.send(0, new Float64Array(4), undefined);
    const blocked = (): Promise<unknown> => sender.send(1, new Float64Array(4), undefined, AbortSignal.timeout(100)).catch((e) => e);
    for (const stale of [{ round: 6 }, { epoch: 'old' }, { run: 'other' }]) {
      sender.onReply({ t: 'ack', run: 'run', epoch: 'e', round: 7, k: 0, ...stale });
      expect(await blocked()).toBeInstanceOf(AbortedError); // the window (1) is still full
    }
    sender.onReply({ t: 'ack', run: 'run', epoch: 'e', round: 7, k: 0 });
    await sender.send(1, new Float64Array(4), undefined, AbortSignal.timeout(1000));
    expect(sent).toEqual([0, 1]);
  });

  it('asks for a corrupted segment again and acknowledges a segment when it is taken', async () => {
    const layout = new SetLayout([3000], 1024);
    const parent = await plane('parent');
    const receiver = parent.openRound('e', 7, ['X'], layout);
    const child = new zmq.Dealer({ routingId: 'X', linger: 0 });
    sockets.push(child);
    child.connect(parent.endpoint);
    const replies: DataHeader[] = [];
    void (async () => {
      try {
        for await (const [h] of child) replies.push(decode<DataHeader>(h));
      } catch {
        /* closed */
      }
    })();
    const wait = async (n: number): Promise<void> => {
      for (let t = 0; replies.length < n && t < 200; t++) await new Promise((r) => setTimeout(r, 10));
    };
    const data = Buffer.from(Float64Array.from({ length: 1024 }, (_, i) => i).buffer);
    const seg = (crc: number): [Uint8Array, Buffer] => [encode({ t: 'seg', run: 'run', epoch: 'e', round: 7, from: 'X', k: 0, K: 3, crc } satisfies DataHeader), data];
    await child.send(seg(crc32(data) ^ 1));
    await wait(1);
    expect(replies).toEqual([{ t: 'nack', run: 'run', epoch: 'e', round: 7, k: 0 }]);
    expect(receiver.mismatches).toBe(1);
    await child.send(seg(crc32(data)));
    await new Promise((r) => setTimeout(r, 100));
    expect(replies).toHaveLength(1); // held, not taken yet: no acknowledgement
    const got = await receiver.take('X', 0);
    expect([...got.data.subarray(0, 3)]).toEqual([0, 1, 2]);
    await wait(2);
    expect(replies[1]).toEqual({ t: 'ack', run: 'run', epoch: 'e', round: 7, k: 0 });
    // The acknowledgement was lost and the segment comes again: acknowledged again, not stored.
    await child.send(seg(crc32(data)));
    await wait(3);
    expect(replies[2]).toEqual({ t: 'ack', run: 'run', epoch: 'e', round: 7, k: 0 });
    expect(receiver.bytes).toBe(data.length);
  });
});
