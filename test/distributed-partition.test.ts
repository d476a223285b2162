/**
 * Distributed runner under a network partition (real network namespace; needs root and `ip`).
 *
 * The test makes its own network: a namespace `tr-<pid>` and a veth pair carrying a /30 chosen at
 * random in 10.231.0.0/16 (root side .1, namespace side .2); nats-server listens on the root-side
 * address only. The coordinator and two workers run in the root namespace, a third worker inside
 * the namespace (`ip netns exec`), every data-plane socket bound to its side's veth address. Once
 * the namespaced worker has finished a chunk, the root side of the link is taken down. The
 * coordinator must declare that worker lost within its heartbeat timeout (measured from the cut
 * with the coordinator's log timestamps), the others redo its uncommitted chunks, the maps equal a
 * clean local run's, every chunk is committed exactly once, and the cut-off worker gives up on its
 * own (--coordinator-timeout) with a non-zero exit. Namespace and veth are removed afterwards, also
 * when the test fails. No traffic goes anywhere but loopback and the test's own veth pair.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pearson } from '../src/analysis/fsc.js';
import { readMrc } from '../src/formats/mrc.js';
import { CONFORMANCE, runCli } from './helpers/paths.js';
import { CliProcess, LogLine, NatsServer, Processes, startNats } from './helpers/nats.js';

const V1 = path.join(CONFORMANCE, 'V1');
const ARGS = ['--i', 'optimisation_set.star', '--b', '48'];
const FILES = ['half1.mrc', 'half2.mrc', 'merged.mrc', 'data_half1.mrc', 'data_half2.mrc', 'weight_half1.mrc', 'weight_merged.mrc'];
const HEARTBEAT_TIMEOUT_S = 2;
/** Loss detection: the coordinator checks every 200 ms; its timers and log writes add a few ms. */
const DETECTION_MARGIN_MS = 600;

function ipPath(): string | null {
  for (const p of ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip']) if (fs.existsSync(p)) return p;
  const r = spawnSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

const IP = ipPath();
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const skipReason = !isRoot ? 'needs root (creates a network namespace and a veth pair)' : !IP ? 'the `ip` command (iproute2) is missing' : '';
if (skipReason) console.warn(`distributed-partition: skipped: ${skipReason}`);

const NS = `tr-${process.pid}`;
const VETH_ROOT = `trv${process.pid}a`.slice(0, 15);
const VETH_NS = `trv${process.pid}b`.slice(0, 15);

function ip(...args: string[]): string {
  return execFileSync(IP!, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A random /30 in 10.231.0.0/16 that no interface or route of this host uses yet. */
function pickSubnet(): { rootAddr: string; nsAddr: string } {
  const taken = ip('-4', 'addr') + ip('-4', 'route', 'show', 'table', 'all');
  for (let i = 0; i < 100; i++) {
    const third = Math.floor(Math.random() * 256);
    const base = 4 * Math.floor(Math.random() * 64);
    if (taken.includes(`10.231.${third}.`)) continue;
    return { rootAddr: `10.231.${third}.${base + 1}`, nsAddr: `10.231.${third}.${base + 2}` };
  }
  throw new Error('no free /30 in 10.231.0.0/16');
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tomorecon-distributed-partition-'));
const clean = path.join(tmp, 'clean');
const procs = new Processes();
let nats: NatsServer | null = null;
let net: { rootAddr: string; nsAddr: string } | null = null;

function cleanupNetwork(): void {
  if (!IP) return;
  // Deleting one end of a veth pair deletes both; then the namespace. Both may already be gone.
  spawnSync(IP, ['link', 'del', VETH_ROOT], { stdio: 'ignore' });
  spawnSync(IP, ['netns', 'del', NS], { stdio: 'ignore' });
}

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Report {
  status: string;
  totals: Record<string, number>;
  workers: { id: string; pid: number; state: string; chunksCommitted: number }[];
  chunks: { id: number; count: number; state: string; attempts: { worker: string; outcome: string }[]; committed: { worker: string } | null }[];
}

describe.skipIf(Boolean(skipReason))(`network partition${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  beforeAll(async () => {
    const res = runCli(['reconstruct', ...ARGS, '--o', clean], V1);
    expect(res.status, res.stderr).toBe(0);
    cleanupNetwork(); // leftovers of an earlier run with the same pid
    net = pickSubnet();
    ip('netns', 'add', NS);
    ip('link', 'add', VETH_ROOT, 'type', 'veth', 'peer', 'name', VETH_NS, 'netns', NS);
    ip('addr', 'add', `${net.rootAddr}/30`, 'dev', VETH_ROOT);
    ip('link', 'set', VETH_ROOT, 'up');
    ip('-n', NS, 'addr', 'add', `${net.nsAddr}/30`, 'dev', VETH_NS);
    ip('-n', NS, 'link', 'set', VETH_NS, 'up');
    ip('-n', NS, 'link', 'set', 'lo', 'up');
    nats = await startNats(undefined, net.rootAddr);
  });

  afterAll(async () => {
    try {
      await procs.killAll();
      await nats?.stop();
    } finally {
      cleanupNetwork();
    }
    // Nothing of ours is left behind.
    expect(ip('netns', 'list')).not.toMatch(new RegExp(`^${NS}\\b`, 'm'));
    expect(spawnSync(IP!, ['link', 'show', VETH_ROOT], { stdio: 'ignore' }).status).not.toBe(0);
  });

  it('declares the cut-off worker lost within the heartbeat timeout, redoes its chunks elsewhere, and finishes with the same maps', async () => {
    const { rootAddr, nsAddr } = net!;
    const url = nats!.url;
    const out = path.join(tmp, 'partition');
    const runId = `part-${process.pid}`;
    const coordinator = procs.cli(
      [
        'coordinator',
        '--nats', url,
        '--run-id', runId,
        '--zmq-bind', rootAddr,
        '--chunk-size', '2',
        '--heartbeat-timeout', String(HEARTBEAT_TIMEOUT_S),
        '--commit-interval', '120',
        ...ARGS,
        '--o', out,
      ],
      V1,
    );
    const env = { TOMORECON_TEST_CHUNK_DELAY_MS: '300' };
    const common = ['worker', '--nats', url, '--run-id', runId, '--coordinator-timeout', '3'];
    // The namespaced worker first, so that it surely gets chunks before the cut.
    const cutOff = procs.cli([...common, '--zmq-bind', nsAddr], tmp, env, [IP!, 'netns', 'exec', NS]);
    const inside = (c: CliProcess): string | undefined =>
      c.lines().find((l) => l.msg === 'worker joined' && String(l.fields?.endpoint).includes(`//${nsAddr}:`))?.fields?.worker as string | undefined;
    await coordinator.waitFor((c) => inside(c) !== undefined, 20_000, 'the namespaced worker to join');
    const roots = [0, 1].map(() => procs.cli([...common, '--zmq-bind', rootAddr], tmp, env));
    const cutId = inside(coordinator)!;
    const assigned = (c: CliProcess): number => c.lines().filter((l) => l.msg === 'chunk assigned' && l.fields?.worker === cutId).length;
    // Its second chunk handed out: the first is done (only in its memory), the second in flight.
    await coordinator.waitFor((c) => assigned(c) >= 2, 30_000, 'two chunks assigned to the namespaced worker');

    const before = Date.now();
    ip('link', 'set', VETH_ROOT, 'down');
    const cutAt = (before + Date.now()) / 2;
    let exitedAt = 0;
    void cutOff.exited.then(() => (exitedAt = Date.now()));

    const lostLine = (c: CliProcess): LogLine | undefined =>
      c.lines().find((l) => l.msg === 'worker lost; fenced, its uncommitted chunks will be redone' && l.fields?.worker === cutId);
    await coordinator.waitFor((c) => lostLine(c) !== undefined, 20_000, 'the namespaced worker declared lost');
    const latencyMs = Date.parse(lostLine(coordinator)!.ts!) - cutAt;
    console.log(
      `partition: worker ${cutId} declared lost ${(latencyMs / 1000).toFixed(2)} s after the cut (heartbeat timeout ${HEARTBEAT_TIMEOUT_S} s); ` +
        `requeued ${JSON.stringify(lostLine(coordinator)!.fields?.requeued)}`,
    );
    expect(latencyMs).toBeGreaterThan(0);
    expect(latencyMs).toBeLessThanOrEqual(HEARTBEAT_TIMEOUT_S * 1000 + DETECTION_MARGIN_MS);

    const ended = await coordinator.exit(60_000);
    expect(ended.code, coordinator.stderr).toBe(0);
    for (const w of roots) expect((await w.exit(20_000)).code, w.stderr).toBe(0);
    // The cut-off worker gives up by itself: no coordinator answer for --coordinator-timeout.
    const gone = await cutOff.exit(30_000);
    expect(gone.code, cutOff.stderr).not.toBe(0);
    expect(gone.code).not.toBeNull();
    expect(cutOff.stderr).toMatch(/tomorecon: error: no coordinator of run .* answered for \d+ s \(--coordinator-timeout\); giving up/);
    console.log(`partition: the cut-off worker exited with code ${gone.code} ${((exitedAt - cutAt) / 1000).toFixed(2)} s after the cut`);

    for (const f of FILES) {
      const r = pearson(readMrc(path.join(out, f)).data, readMrc(path.join(clean, f)).data);
      expect(r, `${f}: r = ${r}`).toBeGreaterThanOrEqual(0.999999);
    }
    const report: Report = JSON.parse(fs.readFileSync(path.join(out, 'distributed_report.json'), 'utf8'));
    expect(report.status).toBe('finished');
    const lost = report.workers.find((w) => w.id === cutId)!;
    expect(lost.state).toBe('lost');
    expect(lost.chunksCommitted).toBe(0);
    expect(report.workers.filter((w) => w.state === 'live')).toHaveLength(2);
    const touched = report.chunks.filter((c) => c.attempts.some((a) => a.worker === cutId));
    expect(touched.length).toBeGreaterThanOrEqual(2);
    for (const c of touched) {
      // Its attempts were lost (or, for a copy another worker had finished first, dropped); the chunk was redone and committed by another worker.
      for (const a of c.attempts.filter((x) => x.worker === cutId)) expect(['lost', 'dropped']).toContain(a.outcome);
      expect(c.committed!.worker).not.toBe(cutId);
    }
    expect(report.totals.chunksRedoneAfterLoss).toBeGreaterThanOrEqual(1);
    for (const c of report.chunks) {
      expect(c.state, `chunk ${c.id}`).toBe('committed');
      expect(c.attempts.filter((a) => a.outcome === 'committed'), `chunk ${c.id}`).toHaveLength(1);
    }
    expect(report.totals.committedParticles).toBe(48);
    expect(report.chunks.reduce((n, c) => n + c.count, 0)).toBe(48);
    expect(coordinator.count('worker lost; fenced, its uncommitted chunks will be redone')).toBe(1);
  }, 90_000);
});
