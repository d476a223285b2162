#!/usr/bin/env node
/**
 * The commit round's partial-volume transfer with the real data-plane protocol (DataPlane,
 * sendSubtree and receiveSubtree from dist/, as the worker and the coordinator call them: CRC-32
 * per segment, acknowledgements, window, chunk lists in the last segment's header), one process
 * per node on loopback. The default is the shape of the distributed bench run: workers A and B →
 * coordinator (adds both to its committed sums; with more workers, the binary tree under the
 * coordinator of binaryTree), one box-128 volume set (both halves: 48.75 MiB) per round, of which, as in a run, only the sphere
 * the back-projection writes travels (insertionRuns: 26 MiB; `--dense` sends all of it). Every
 * round's sums and chunk lists are checked exactly at the coordinator.
 *
 *   node bench/transfer.js [--rounds 9] [--box 128] [--workers 2] [--segment-mb 1] [--window 2] [--dense]
 *
 * Used by `npm run bench`. A node's time runs from the moment it is given the round to its last
 * acknowledgement (the coordinator's: to the round's sums being ready to commit); MB/s = bytes
 * moved / that time; cpu = CPU time of the process (all its threads) in that time.
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(ROOT, 'dist', p));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function pattern(n, a, scale) {
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = ((i + a) % 97) * scale;
  return x;
}

/** Child process: one node of the tree. */
async function child() {
  const { DataPlane, sendSubtree, receiveSubtree, touchPages } = await dist('coordinator/net/dataPlane.js');
  const { SetLayout, insertionRuns } = await dist('src/distributed/tree.js');
  const { Logger } = await dist('src/distributed/log.js');
  let init;
  let plane;
  let sources;
  let committed;
  let next;
  const send = (m) => process.send(m);
  process.on('message', async (m) => {
    try {
      if (m.cmd === 'init') {
        init = m;
        init.layout = new SetLayout(m.lengths, m.segmentDoubles, m.dense ? undefined : insertionRuns(m.box, m.lengths.length / 2));
        // The pattern where the layout moves data (as sums are zero outside the sphere in a run).
        const inside = (scale) => {
          const full = m.lengths.map((n, a) => pattern(n, a, scale));
          if (m.dense) return full;
          const out = m.lengths.map((n) => new Float64Array(n));
          for (let k = 0; k < init.layout.segments; k++) {
            const seg = new Float64Array(init.layout.segmentLength(k));
            init.layout.copyOut(full, k, seg);
            init.layout.copyIn(out, k, seg);
          }
          return out;
        };
        plane = new DataPlane(m.id, m.runId, new Logger(m.id));
        const endpoint = await plane.bind('tcp://127.0.0.1:*');
        if (m.role === 'worker') {
          // Small integers: every sum is exact, so the coordinator can check it bit for bit.
          sources = [inside(m.scale)];
        } else {
          // As the coordinator prepares them (every page written before the first round).
          committed = m.lengths.map((n) => new Float64Array(n));
          next = m.lengths.map((n) => new Float64Array(n));
          init.expected = inside(1);
          await touchPages([...committed, ...next]);
        }
        send({ ready: endpoint });
      } else if (m.cmd === 'round') {
        const layout = init.layout;
        const t0 = process.hrtime.bigint();
        const cpu0 = process.cpuUsage();
        const pf0 = process.resourceUsage().minorPageFault;
        const cpu = () => {
          const c = process.cpuUsage(cpu0);
          return (c.user + c.system) / 1e6;
        };
        const signal = new AbortController().signal;
        if (init.role === 'coordinator') {
          const receiver = plane.openRound(m.epoch, m.n, m.children, layout);
          send({ opened: true });
          const contrib = await receiveSubtree(receiver, m.children, committed, next, signal);
          const tReceived = process.hrtime.bigint();
          // As the coordinator commits a round: next (= committed + the round's sums) becomes committed.
          [committed, next] = [next, committed];
          const t1 = process.hrtime.bigint();
          const cpuT = cpu();
          plane.closeRound('committed');
          let bad = 0;
          for (let a = 0; a < committed.length; a++) {
            const s = committed[a];
            const e = init.expected[a];
            for (let i = 0; i < s.length; i++) if (s[i] !== e[i] * m.expectScale * m.n) bad++;
          }
          send({ seconds: Number(t1 - t0) / 1e9, receiveSeconds: Number(tReceived - t0) / 1e9, cpu: cpuT, faults: process.resourceUsage().minorPageFault - pf0, bytes: receiver.bytes, bad, contrib });
        } else {
          const receiver = m.children.length ? plane.openRound(m.epoch, m.n, m.children, layout) : null;
          const sender = plane.sender(m.parentEndpoint, m.epoch, m.n, layout.segments, init.window, init.segmentDoubles);
          const bytes = await sendSubtree({ layout, sources, children: m.children, receiver, sender, own: { [init.id]: [m.n] }, signal });
          if (receiver) plane.closeRound('round done');
          send({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpu: cpu(), faults: process.resourceUsage().minorPageFault - pf0, bytes });
        }
      } else if (m.cmd === 'exit') {
        plane?.close();
        process.exit(0);
      }
    } catch (e) {
      send({ error: String(e?.stack ?? e) });
    }
  });
}

/**
 * Runs one warm-up round and then `rounds` rounds with `workers` worker processes (a binary tree
 * as the coordinator builds it) and a coordinator process; returns per-node medians.
 */
export async function benchTransfer({ rounds = 9, box = 128, workers = 2, segmentMiB = 1, window = 2, dense = false } = {}) {
  const { accumulatorBytes } = await dist('src/recon/backproject.js');
  const { binaryTree, coordinatorChildren, SetLayout, insertionRuns } = await dist('src/distributed/tree.js');
  const sh = box / 2 + 1;
  const lengths = [0, 1].flatMap(() => [2 * sh * box * box, sh * box * box]);
  const total = lengths.reduce((a, b) => a + b, 0);
  if (accumulatorBytes(box) * 2 !== total * 8) throw new Error('volume-set layout does not match accumulatorBytes');
  const segmentDoubles = Math.max(1024, Math.round((segmentMiB * 2 ** 20) / 8));
  const moved = dense ? total : new SetLayout(lengths, segmentDoubles, insertionRuns(box, 2)).total;
  const ids = Array.from({ length: workers }, (_, i) => `worker-${String.fromCharCode(65 + i)}`);
  const tree = binaryTree(ids);
  const roleOf = (node) => (node.children.length ? 'inner' : 'leaf');
  const procs = new Map();
  const pending = new Map();
  let failed = null;
  const execArgv = process.env.TRANSFER_NODE_ARGS ? process.env.TRANSFER_NODE_ARGS.split(' ') : [];
  for (const id of ['coordinator', ...ids]) {
    const p = fork(fileURLToPath(import.meta.url), ['--child', id], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
    procs.set(id, p);
    p.on('message', (m) => {
      if (m.error) failed = new Error(`${id}: ${m.error}`);
      const q = pending.get(id);
      pending.delete(id);
      q?.(m);
    });
  }
  const ask = (id, msg) =>
    new Promise((resolve) => {
      pending.set(id, resolve);
      procs.get(id).send(msg);
    });
  const check = (m) => {
    if (failed) {
      for (const p of procs.values()) p.kill();
      throw failed;
    }
    return m;
  };
  const endpoints = {};
  // Worker i's sums are i + 1 times the pattern, so the coordinator expects workers·(workers+1)/2 times it.
  for (const [i, id] of ['coordinator', ...ids].entries()) {
    const r = check(await ask(id, { cmd: 'init', role: id === 'coordinator' ? 'coordinator' : 'worker', id, runId: 'bench', lengths, segmentDoubles, window, scale: i, box, dense }));
    endpoints[id] = r.ready;
  }
  const per = new Map(['coordinator', ...ids].map((id) => [id, { seconds: [], cpu: [], faults: [] }]));
  let first = null;
  for (let n = 1; n <= rounds + 1; n++) {
    check(await ask('coordinator', { cmd: 'round', n, epoch: 'e', children: coordinatorChildren(ids), expectScale: (workers * (workers + 1)) / 2 }));
    const coord = new Promise((resolve) => pending.set('coordinator', resolve));
    const results = await Promise.all(
      tree.map((node) => ask(node.worker, { cmd: 'round', n, epoch: 'e', parentEndpoint: endpoints[node.parent ?? 'coordinator'], children: node.children })),
    );
    const c = check(await coord);
    results.forEach(check);
    if (c.bad !== 0) throw new Error(`round ${n}: ${c.bad} wrong values at the coordinator`);
    const lists = Object.fromEntries(ids.map((id) => [id, [n]]));
    if (JSON.stringify(Object.keys(c.contrib).sort()) !== JSON.stringify(ids) || !ids.every((id) => c.contrib[id][0] === n)) {
      throw new Error(`round ${n}: wrong chunk lists ${JSON.stringify(c.contrib)}, expected ${JSON.stringify(lists)}`);
    }
    const all = [['coordinator', c], ...tree.map((node, i) => [node.worker, results[i]])];
    if (n === 1) {
      // The first round of the processes: sockets connect, code is compiled, pages are touched.
      first = Object.fromEntries(all.map(([id, r]) => [id, r.seconds]));
      continue;
    }
    for (const [id, r] of all) {
      per.get(id).seconds.push(r.seconds);
      per.get(id).cpu.push(r.cpu);
      per.get(id).faults.push(r.faults);
    }
  }
  for (const p of procs.values()) p.send({ cmd: 'exit' });
  const bytes = moved * 8;
  const nodes = [
    { id: 'coordinator', role: 'coordinator' },
    ...tree.map((node) => ({ id: node.worker, role: roleOf(node) })),
  ].map(({ id, role }) => {
    const x = per.get(id);
    const s = median(x.seconds);
    return { id, role, medianS: s, MBps: bytes / s / 1e6, volumeSetGBps: (total * 8) / s / 1e9, cpuMedianS: median(x.cpu), faultsMedian: median(x.faults), allS: x.seconds, firstRoundS: first[id] };
  });
  return { box, volumeSetBytes: total * 8, bytes, dense, workers, segmentBytes: segmentDoubles * 8, segments: Math.ceil(moved / segmentDoubles), window, rounds, nodes };
}

if (process.argv.includes('--child')) {
  await child();
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const flag = (name, fallback) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const r = await benchTransfer({
    rounds: flag('rounds', 9),
    box: flag('box', 128),
    workers: flag('workers', 2),
    segmentMiB: flag('segment-mb', 1),
    window: flag('window', 2),
    dense: args.includes('--dense'),
  });
  console.log(args.includes('--json') ? JSON.stringify(r) : report(r));
}

/** The result as lines of text. */
export function report(r) {
  const f = (s) => `${(s * 1000).toFixed(1)} ms`;
  const lines = [
    `real protocol, ${r.workers} worker${r.workers > 1 ? 's' : ''} → coordinator, box ${r.box} (volume set ${(r.volumeSetBytes / 2 ** 20).toFixed(2)} MiB, ${r.dense ? 'all of it' : 'the insertion sphere'} moved: ${(r.bytes / 2 ** 20).toFixed(2)} MiB, ${r.segments} × ${(r.segmentBytes / 2 ** 20).toFixed(2)} MiB segments, window ${r.window}); median of ${r.rounds} rounds:`,
  ];
  for (const n of r.nodes) {
    lines.push(
      `  ${`${n.role} ${n.id === 'coordinator' ? '' : n.id}`.padEnd(20)} ${f(n.medianS).padStart(9)} ${n.MBps.toFixed(0).padStart(6)} MB/s moved (volume set ${(r.volumeSetBytes / n.medianS / 1e9).toFixed(2)} GB/s)   cpu ${f(n.cpuMedianS).padStart(8)}  faults ${String(n.faultsMedian).padStart(6)}  first round ${f(n.firstRoundS)}`,
    );
  }
  return lines.join('\n');
}
