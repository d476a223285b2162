/**
 * Distributed runner: the coordinator killed with SIGKILL after at least one commit round and
 * restarted with the same command resumes from its checkpoint (the workers rejoin on their own)
 * and finishes with the maps of a clean run without redoing the committed chunks; and the root
 * of the reduction tree killed during a commit round: the round is aborted, the others keep
 * their sums, the lost worker's chunks are redone and the next round commits everything once;
 * and a coordinator restarted under the same run id on other inputs: the workers drop what they
 * cached for the first (tomogram tables, frames) and the maps are those of the new inputs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pearson } from '../src/analysis/fsc.js';
import { readMrc } from '../src/formats/mrc.js';
import { CONFORMANCE, runCli } from './helpers/paths.js';
import { CliProcess, sleep, natsTestBed } from './helpers/nats.js';
import { v1WithLargerDefocus, v1WithoutHalfSets } from './helpers/variants.js';

const V1 = path.join(CONFORMANCE, 'V1');
const ARGS = ['--i', 'optimisation_set.star', '--b', '64', '--crop', '48'];
const bed = natsTestBed('distributed-restart');
const { tmp, procs } = bed;


interface Report {
  epoch: string;
  totals: Record<string, number>;
  chunks: { id: number; attempts: { epoch: string; outcome: string }[]; committed: { epoch: string } | null; fromCheckpoint: boolean }[];
}

function report(out: string): Report | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(out, 'distributed_report.json'), 'utf8'));
  } catch {
    return null;
  }
}

describe('coordinator restart', () => {
  it('resumes from the checkpoint after SIGKILL and finishes with the same maps, redoing fewer than all chunks', async () => {
    const clean = path.join(tmp, 'clean');
    const res = runCli(['reconstruct', ...ARGS, '--o', clean], V1);
    expect(res.status, res.stderr).toBe(0);

    const out = path.join(tmp, 'restarted');
    const runId = `ckpt-${process.pid}`;
    const cmd = ['coordinator', '--nats', bed.nats.url, '--run-id', runId, '--chunk-size', '2', '--heartbeat-timeout', '3', '--commit-interval', '0.5', ...ARGS, '--o', out];
    const first = procs.cli(cmd, V1);
    const env = { TOMORECON_TEST_CHUNK_DELAY_MS: '250' };
    const workers = [0, 1, 2].map(() => procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId], tmp, env));

    // Kill as soon as a commit round is checkpointed.
    const t0 = Date.now();
    let committedBefore = 0;
    for (;;) {
      const r = report(out);
      committedBefore = r?.totals.committedChunks ?? 0;
      if (committedBefore > 0) break;
      expect(first.running, first.stderr).toBe(true);
      expect(Date.now() - t0).toBeLessThan(30_000);
      await sleep(10);
    }
    first.child.kill('SIGKILL');
    await first.exited;
    expect(first.child.signalCode).toBe('SIGKILL');
    expect(committedBefore).toBeLessThan(24);
    expect(fs.existsSync(path.join(out, 'merged.mrc'))).toBe(false);
    await sleep(300);

    const second = procs.cli(cmd, V1);
    const ended = await second.exit(60_000);
    expect(ended.code, second.stderr).toBe(0);
    for (const w of workers) expect((await w.exit(20_000)).code, w.stderr).toBe(0);
    expect(second.count('resuming from the checkpoint')).toBe(1);
    // The same plan: the workers kept their compute threads (and what they cached).
    for (const w of workers) expect(w.count('the coordinator runs another plan (inputs or options changed): compute threads start again')).toBe(0);

    for (const f of ['half1.mrc', 'half2.mrc', 'merged.mrc', 'merged_full.mrc', 'data_merged.mrc', 'weight_half1.mrc', 'weight_merged.mrc']) {
      const r = pearson(readMrc(path.join(out, f)).data, readMrc(path.join(clean, f)).data);
      expect(r, `${f}: r = ${r}`).toBeGreaterThanOrEqual(0.999999);
    }

    const rep = report(out)!;
    const resumed = rep.chunks.filter((c) => c.fromCheckpoint);
    expect(resumed.length).toBeGreaterThanOrEqual(committedBefore);
    expect(rep.totals.chunksFromCheckpoint).toBe(resumed.length);
    // Committed chunks were not redone by the second coordinator; the others were done once.
    for (const c of resumed) {
      expect(c.attempts.filter((a) => a.epoch === rep.epoch)).toEqual([]);
      expect(c.committed!.epoch).not.toBe(rep.epoch);
    }
    const redone = rep.chunks.filter((c) => c.attempts.some((a) => a.epoch === rep.epoch));
    expect(redone.length).toBe(24 - resumed.length);
    expect(redone.length).toBeLessThan(24);
    expect(rep.totals.chunksProcessedThisRun).toBe(redone.length);
    for (const c of redone) expect(c.attempts.filter((a) => a.outcome === 'committed').length).toBe(1);
    expect(rep.totals.committedParticles).toBe(48);
  });

  it('aborts a commit round whose tree root is killed, and commits everything once in the next round', async () => {
    const V1ARGS = ['--i', 'optimisation_set.star', '--b', '48'];
    const clean = path.join(tmp, 'clean48');
    const res = runCli(['reconstruct', ...V1ARGS, '--o', clean], V1);
    expect(res.status, res.stderr).toBe(0);

    const out = path.join(tmp, 'killed-in-round');
    const runId = `round-${process.pid}`;
    const coordinator = procs.cli(
      ['coordinator', '--nats', bed.nats.url, '--run-id', runId, '--chunk-size', '2', '--heartbeat-timeout', '2.5', '--segment-mb', '0.25', ...V1ARGS, '--o', out],
      V1,
    );
    // 11 segments of 0.25 MiB, 150 ms each: a round takes about 2 s.
    const env = { TOMORECON_TEST_SEGMENT_DELAY_MS: '150', TOMORECON_TEST_CHUNK_DELAY_MS: '50' };
    const workers = [0, 1, 2].map(() => procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId], tmp, env));
    await coordinator.waitFor((c) => c.count('commit round started') >= 1, 30_000, 'a commit round');
    const started = coordinator.lines().find((l) => l.msg === 'commit round started')!;
    const participants = started.fields!.participants as string[];
    expect(participants.length).toBe(3);
    const rootPid = coordinator.lines().find((l) => l.msg === 'worker joined' && l.fields!.worker === participants[0])!.fields!.pid;
    const root = workers.find((w) => w.pid === rootPid)!;
    await sleep(300);
    root.child.kill('SIGKILL');
    await root.exited;

    const ended = await coordinator.exit(60_000);
    expect(ended.code, coordinator.stderr).toBe(0);
    for (const w of workers.filter((x) => x !== root)) expect((await w.exit(20_000)).code, w.stderr).toBe(0);
    for (const f of ['half1.mrc', 'half2.mrc', 'merged.mrc', 'data_merged.mrc', 'weight_merged.mrc']) {
      const r = pearson(readMrc(path.join(out, f)).data, readMrc(path.join(clean, f)).data);
      expect(r, `${f}: r = ${r}`).toBeGreaterThanOrEqual(0.999999);
    }
    const rep = JSON.parse(fs.readFileSync(path.join(out, 'distributed_report.json'), 'utf8'));
    expect(rep.rounds[0].outcome).toBe('aborted');
    expect(rep.rounds[rep.rounds.length - 1].outcome).toBe('committed');
    const victimChunks = rep.chunks.filter((c: { attempts: { worker: string }[] }) => c.attempts.some((a) => a.worker === participants[0]));
    expect(victimChunks.length).toBeGreaterThan(0);
    for (const c of rep.chunks) {
      expect(c.attempts.filter((a: { outcome: string }) => a.outcome === 'committed').length).toBe(1);
      expect(c.committed.worker).not.toBe(participants[0]);
    }
    expect(rep.totals.committedParticles).toBe(48);
  });

  it.each([
    ['every defocus 0.5 µm larger', 'defocus', (dir: string) => v1WithLargerDefocus(dir, 5000), ['half1.mrc', 'half2.mrc', 'merged.mrc', 'data_merged.mrc', 'weight_merged.mrc']],
    ['no half sets', 'nohalves', v1WithoutHalfSets, ['merged.mrc', 'data_merged.mrc', 'weight_merged.mrc']],
  ] as const)('does not let workers reuse what they cached for a coordinator restarted under the same run id on other inputs (%s)', async (_, tag, make, files) => {
    // The same run shape (box, frames), so the workers keep their processes, but what they
    // cached for the first coordinator's plan does not hold for the second's.
    const mod = path.join(tmp, `V1-${tag}`);
    make(mod);
    const clean = path.join(tmp, `clean-${tag}`);
    const res = runCli(['reconstruct', ...ARGS, '--o', clean], mod);
    expect(res.status, res.stderr).toBe(0);

    const runId = `inputs-${tag}-${process.pid}`;
    const cmd = (dir: string): string[] => ['coordinator', '--nats', bed.nats.url, '--run-id', runId, '--chunk-size', '2', '--heartbeat-timeout', '3', ...ARGS, '--o', dir];
    const first = procs.cli(cmd(path.join(tmp, `inputs-V1-${tag}`)), V1);
    const env = { TOMORECON_TEST_CHUNK_DELAY_MS: '150' };
    const workers = [0, 1].map(() => procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId, '--threads', '1'], tmp, env));
    // Both workers have back-projected chunks of V1 (and hold its tomograms' tables) when the
    // coordinator dies.
    await first.waitFor((c) => c.count('chunk assigned') >= 8, 30_000, 'eight chunks assigned');
    await sleep(400);
    first.child.kill('SIGKILL');
    await first.exited;

    const out = path.join(tmp, `inputs-${tag}`);
    const second = procs.cli(cmd(out), mod);
    const ended = await second.exit(60_000);
    expect(ended.code, second.stderr).toBe(0);
    for (const w of workers) expect((await w.exit(20_000)).code, w.stderr).toBe(0);
    for (const w of workers) expect(w.count('the coordinator runs another plan (inputs or options changed): compute threads start again')).toBe(1);
    for (const f of files) {
      const r = pearson(readMrc(path.join(out, f)).data, readMrc(path.join(clean, f)).data);
      expect(r, `${f}: r = ${r}`).toBeGreaterThanOrEqual(0.999999);
    }
  });

  it('with --no_recon leaves the committed sums, from which a later coordinator makes the maps without workers', async () => {
    const args = ['--i', 'optimisation_set.star', '--b', '48'];
    const clean = path.join(tmp, 'clean-norecon');
    const res = runCli(['reconstruct', ...args, '--o', clean], V1);
    expect(res.status, res.stderr).toBe(0);

    const out = path.join(tmp, 'norecon');
    const runId = `norecon-${process.pid}`;
    const coordinator = procs.cli(['coordinator', '--nats', bed.nats.url, '--run-id', runId, '--chunk-size', '4', ...args, '--no_recon', '--o', out], V1);
    const worker = procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId], tmp);
    expect((await coordinator.exit(60_000)).code, coordinator.stderr).toBe(0);
    expect((await worker.exit(20_000)).code, worker.stderr).toBe(0);
    expect(fs.existsSync(path.join(out, 'temp', 'tomorecon_distributed.ckpt'))).toBe(true);
    expect(fs.existsSync(path.join(out, 'merged.mrc'))).toBe(false);

    // The maps from those sums: no chunk left, so no worker is needed.
    const maps = procs.cli(['coordinator', '--nats', bed.nats.url, '--run-id', `${runId}-maps`, '--chunk-size', '4', ...args, '--o', out], V1);
    expect((await maps.exit(60_000)).code, maps.stderr).toBe(0);
    expect(maps.count('every chunk is committed already; finalising')).toBe(1);
    for (const f of ['half1.mrc', 'half2.mrc', 'merged.mrc', 'data_merged.mrc', 'weight_merged.mrc']) {
      const r = pearson(readMrc(path.join(out, f)).data, readMrc(path.join(clean, f)).data);
      expect(r, `${f}: r = ${r}`).toBeGreaterThanOrEqual(0.999999);
    }
  });

  it('replaces a checkpoint of another box in its output directory instead of refusing it', async () => {
    const out = path.join(tmp, 'other-box');
    const run = async (runId: string, box: string, extra: string[]): Promise<CliProcess> => {
      const coordinator = procs.cli(['coordinator', '--nats', bed.nats.url, '--run-id', runId, '--i', 'optimisation_set.star', '--b', box, ...extra, '--o', out], V1);
      const worker = procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId], tmp);
      expect((await coordinator.exit(60_000)).code, coordinator.stderr).toBe(0);
      expect((await worker.exit(20_000)).code, worker.stderr).toBe(0);
      return coordinator;
    };
    await run(`box48-${process.pid}`, '48', ['--no_recon']);
    expect(fs.existsSync(path.join(out, 'temp', 'tomorecon_distributed.ckpt'))).toBe(true);
    const second = await run(`box32-${process.pid}`, '32', []);
    expect(second.count('the checkpoint in the output directory was made with other options or inputs; starting again')).toBe(1);
    expect(readMrc(path.join(out, 'merged.mrc')).header.nx).toBe(32);
  });

  it('reports a failure to write the maps as failed (every chunk committed, the workers done)', async () => {
    const out = path.join(tmp, 'maps-blocked');
    // A directory where merged.mrc goes: the maps cannot be written.
    fs.mkdirSync(path.join(out, 'merged.mrc', 'in-the-way'), { recursive: true });
    const runId = `maps-${process.pid}`;
    const coordinator = procs.cli(['coordinator', '--nats', bed.nats.url, '--run-id', runId, '--i', 'optimisation_set.star', '--b', '48', '--o', out], V1);
    const worker = procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId], tmp);
    const ended = await coordinator.exit(60_000);
    expect(ended.code, coordinator.stderr).toBe(1);
    const errors = coordinator.stderr.split('\n').filter((l) => l.startsWith('tomorecon: error:'));
    expect(errors.length, coordinator.stderr).toBe(1);
    expect(errors[0]).toContain('merged.mrc');
    expect((await worker.exit(20_000)).code, worker.stderr).toBe(0);
    const rep = JSON.parse(fs.readFileSync(path.join(out, 'distributed_report.json'), 'utf8'));
    expect(rep.status).toBe('failed');
    expect(rep.message).toContain('merged.mrc');
  });

  it("stops at the RELION pipeliner's abort, with status 2 and RELION_JOB_EXIT_ABORTED", async () => {
    const out = path.join(tmp, 'aborted');
    const runId = `abort-${process.pid}`;
    const coordinator = procs.cli(
      ['coordinator', '--nats', bed.nats.url, '--run-id', runId, '--chunk-size', '2', '--i', 'optimisation_set.star', '--b', '48', '--o', out, '--pipeline_control', `${out}/`],
      V1,
    );
    const worker = procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId], tmp, { TOMORECON_TEST_CHUNK_DELAY_MS: '200' });
    await coordinator.waitFor((c) => c.count('chunk assigned') >= 2, 30_000, 'chunks handed out');
    fs.writeFileSync(path.join(out, 'RELION_JOB_ABORT_NOW'), '');
    const ended = await coordinator.exit(30_000);
    expect(ended.code, coordinator.stderr).toBe(2);
    expect(coordinator.stderr).toMatch(/tomorecon: aborted: .*RELION_JOB_ABORT_NOW found: stopped with \d+ of 24 chunks committed/);
    expect(fs.existsSync(path.join(out, 'RELION_JOB_EXIT_ABORTED'))).toBe(true);
    expect(fs.existsSync(path.join(out, 'RELION_JOB_EXIT_FAILURE'))).toBe(false);
    expect((await worker.exit(20_000)).code).not.toBe(0);
  });

  it('fails with one clear message when a commit round cannot write its checkpoint', async () => {
    const out = path.join(tmp, 'checkpoint-blocked');
    const runId = `blocked-${process.pid}`;
    const coordinator = procs.cli(
      ['coordinator', '--nats', bed.nats.url, '--run-id', runId, '--chunk-size', '2', '--commit-interval', '0.5', '--i', 'optimisation_set.star', '--b', '48', '--o', out],
      V1,
    );
    // Once the coordinator has looked for a checkpoint: a directory where the round's goes.
    await coordinator.waitFor((c) => c.count('run planned') === 1, 30_000, 'the run planned');
    fs.mkdirSync(path.join(out, 'temp', 'tomorecon_distributed.ckpt', 'in-the-way'), { recursive: true });
    const worker = procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId], tmp, { TOMORECON_TEST_CHUNK_DELAY_MS: '200' });
    const ended = await coordinator.exit(60_000);
    expect(ended.code, coordinator.stderr).toBe(1);
    const errors = coordinator.stderr.split('\n').filter((l) => l.startsWith('tomorecon: error:'));
    expect(errors.length, coordinator.stderr).toBe(1);
    expect(errors[0]).toContain('tomorecon_distributed.ckpt');
    expect(coordinator.stderr).not.toMatch(/\n\s+at /);
    expect((await worker.exit(20_000)).code).not.toBe(0);
    expect(report(out)?.totals).toBeDefined();
    expect(JSON.parse(fs.readFileSync(path.join(out, 'distributed_report.json'), 'utf8')).status).toBe('failed');
  });
});
