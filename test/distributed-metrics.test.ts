/**
 * Metrics during a real distributed run: /metrics of the coordinator and a worker pass
 * `promtool check metrics`, the progress moves from 0 to done, a worker killed with -9 makes the
 * requeue and lost-worker counters rise, and every metric the Grafana dashboard queries exists
 * in these scrapes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFORMANCE, REPO } from './helpers/paths.js';
import { CliProcess, sleep, natsTestBed } from './helpers/nats.js';
import { PROMTOOL, promtoolProblems } from './helpers/promtool.js';

const V1 = path.join(CONFORMANCE, 'V1');
const bed = natsTestBed('dmetrics');
const { tmp, procs } = bed;


async function metricsUrl(p: CliProcess): Promise<string> {
  await p.waitFor((x) => x.count('metrics served') === 1, 20_000, 'the metrics endpoint');
  return p.lines().find((l) => l.msg === 'metrics served')!.fields!.url as string;
}

async function scrape(url: string): Promise<string | null> {
  try {
    return await (await fetch(url)).text();
  } catch {
    return null; // the process has ended
  }
}

function value(body: string, name: string, labels = ''): number {
  const re = new RegExp(`^${name}\\{[^}]*${labels}[^}]*\\} ([-0-9.e+]+|NaN)$`, 'm');
  const m = re.exec(body);
  return m ? Number(m[1]) : NaN;
}

/** Metric names used in the dashboard's PromQL, with histogram series suffixes removed. */
function dashboardMetrics(): string[] {
  const dash = JSON.parse(fs.readFileSync(path.join(REPO, 'deploy/grafana/dashboards/tomorecon.json'), 'utf8'));
  const exprs: string[] = [];
  for (const p of dash.panels) for (const t of p.targets ?? []) exprs.push(t.expr);
  for (const v of dash.templating?.list ?? []) if (v.query?.query) exprs.push(v.query.query);
  const names = new Set<string>();
  for (const e of exprs) for (const m of e.matchAll(/\b((?:tomorecon|process|nodejs)_[a-z0-9_]+)/g)) names.add(m[1].replace(/_(bucket|sum|count)$/, ''));
  return [...names];
}

describe('metrics of a distributed run', () => {
  it('move from 0 to done, count a lost worker, pass promtool, and cover the dashboard', async () => {
    const out = path.join(tmp, 'out');
    const runId = `metrics-${process.pid}`;
    const metrics = ['--metrics-port', '0'];
    const coordinator = procs.cli(
      ['coordinator', '--nats', bed.nats.url, '--run-id', runId, '--chunk-size', '2', '--heartbeat-timeout', '2.5', ...metrics, '--i', 'optimisation_set.star', '--b', '32', '--bin', '2', '--o', out],
      V1,
    );
    const url = await metricsUrl(coordinator);
    const first = (await scrape(url))!;
    expect(value(first, 'tomorecon_progress_ratio')).toBe(0);
    const env = { TOMORECON_TEST_CHUNK_DELAY_MS: '150' };
    const workers = [0, 1, 2].map(() => procs.cli(['worker', '--nats', bed.nats.url, '--run-id', runId, ...metrics], tmp, env));
    const workerBody = (await scrape(await metricsUrl(workers[0])))!;

    // Kill one worker once it has done some work; then watch the counters.
    await sleep(1200);
    workers[2].child.kill('SIGKILL');
    let last = first;
    let maxProgress = 0;
    while (coordinator.running) {
      const body = await scrape(url);
      if (body) {
        last = body;
        maxProgress = Math.max(maxProgress, value(body, 'tomorecon_progress_ratio'));
      }
      await sleep(100);
    }
    expect((await coordinator.exit(60_000)).code, coordinator.stderr).toBe(0);
    expect(maxProgress).toBe(1);
    expect(value(last, 'tomorecon_workers_lost_total')).toBeGreaterThanOrEqual(1);
    expect(value(last, 'tomorecon_chunk_requeues_total')).toBeGreaterThanOrEqual(1);
    expect(value(last, 'tomorecon_particles_backprojected_total')).toBeGreaterThanOrEqual(48);

    if (PROMTOOL) {
      expect(promtoolProblems(last)).toBe('');
      expect(promtoolProblems(workerBody)).toBe('');
    } else {
      console.warn('promtool missing (apt-get install prometheus): scrapes not linted');
    }
    const scraped = `${last}\n${workerBody}`;
    const missing = dashboardMetrics().filter((n) => !new RegExp(`^${n}(_bucket|_sum|_count)?[{ ]`, 'm').test(scraped));
    expect(missing).toEqual([]);
  }, 120_000);
});
