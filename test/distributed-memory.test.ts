/**
 * Distributed runner, memory cap: a worker whose --mem is far below the size of one tilt-series
 * stack reads the frames it needs one at a time, finishes every chunk with the local engine's
 * maps, and its peak RSS (VmHWM from /proc, sampled by the test) stays within the cap plus the
 * documented fixed overhead of a worker process (docs/distributed.md). A --mem too small for one
 * accumulator set is refused with a message naming the minimum.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { pearson } from '../src/analysis/fsc.js';
import { readMrc } from '../src/formats/mrc.js';
import { simulateDataset } from '../src/simulate/dataset.js';
import { SIM_DEFAULTS } from '../src/simulate/params.js';
import { runCli } from './helpers/paths.js';
import { sleep, natsTestBed } from './helpers/nats.js';

const MiB = 1024 ** 2;
/** Fixed overhead of a worker process with one compute thread (docs/distributed.md: measured ≈ 75 MiB). */
const WORKER_OVERHEAD = 96 * MiB;
const CAP_GB = 0.05;
const bed = natsTestBed('distributed-memory');
const { tmp, procs } = bed;
const data = path.join(tmp, 'data');
const ARGS = ['--i', 'optimisation_set.star', '--b', '64'];

beforeAll(async () => {
  // One tilt series of 61 images of 1024² pixels: a 244 MiB stack.
  simulateDataset({ ...SIM_DEFAULTS, seed: 5, tomos: 1, particles: 8, tiltStep: 2, image: [1024, 1024], tomoSize: [1024, 1024, 256] }, data);
}, 120_000);

function vmHWM(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

describe('worker memory cap', () => {
  it('finishes its chunks with a --mem far below one tilt-series stack, within the cap plus the fixed overhead', async () => {
    const stack = fs.statSync(path.join(data, 'tilt_series', 'TS_01.mrcs')).size;
    const cap = CAP_GB * 1024 ** 3;
    expect(cap + WORKER_OVERHEAD, 'the whole stack must not fit in the bound').toBeLessThan(stack);

    const local = path.join(tmp, 'local');
    const res = runCli(['reconstruct', ...ARGS, '--o', local], data);
    expect(res.status, res.stderr).toBe(0);

    const out = path.join(tmp, 'dist');
    const runId = `mem-${process.pid}`;
    const coordinator = procs.cli(['coordinator', '--nats', bed.nats.url, '--run-id', runId, '--chunk-size', '2', ...ARGS, '--o', out], data);

    // Too small for one accumulator set (6.2 MiB at --b 64) plus a 4 MiB image: refused, clearly.
    const tiny = procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId, '--mem', '0.005'], tmp);
    expect((await tiny.exit(20_000)).code).not.toBe(0);
    expect(tiny.stderr).toMatch(/tomorecon: error: --mem 0\.005 GB cannot hold one accumulator set for --b 64 .*at least 0\.0\d+ GB is needed/);

    const worker = procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId, '--mem', String(CAP_GB)], tmp);
    let peak = 0;
    while (worker.running) {
      peak = Math.max(peak, vmHWM(worker.pid));
      await sleep(10);
    }
    expect((await worker.exit(1000)).code, worker.stderr).toBe(0);
    expect((await coordinator.exit(30_000)).code, coordinator.stderr).toBe(0);

    const joined = worker.lines().find((l) => l.msg === 'joined the run')!;
    expect(joined.fields!.cacheFramesPerThread as number).toBeLessThan(61);
    const selfReported = worker.lines().find((l) => l.msg === 'run finished; exiting')!.fields!.peakRssBytes as number;
    peak = Math.max(peak, selfReported);
    expect(peak, `peak RSS ${(peak / MiB).toFixed(1)} MiB, cap ${(cap / MiB).toFixed(1)} MiB, stack ${(stack / MiB).toFixed(0)} MiB`).toBeLessThanOrEqual(
      cap + WORKER_OVERHEAD,
    );

    const report = JSON.parse(fs.readFileSync(path.join(out, 'distributed_report.json'), 'utf8'));
    expect(report.workers.find((w: { pid: number }) => w.pid === worker.pid).chunksCommitted).toBe(report.totals.chunks);
    for (const f of ['half1.mrc', 'half2.mrc', 'merged.mrc', 'data_merged.mrc', 'weight_merged.mrc']) {
      const r = pearson(readMrc(path.join(out, f)).data, readMrc(path.join(local, f)).data);
      expect(r, `${f}: r = ${r}`).toBeGreaterThanOrEqual(0.999999);
    }
  });
});
