/**
 * The metric definitions pass Prometheus' own linter (`promtool check metrics`, Debian package
 * prometheus), and the HTTP endpoint serves them. The scrape during a real distributed run is in
 * distributed-metrics.test.ts.
 */
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { CoordinatorMetrics, WorkerMetrics } from '../src/metrics/registry.js';
import { serveMetrics } from '../coordinator/net/metricsServer.js';
import { PROMTOOL, promtoolProblems } from './helpers/promtool.js';


function get(port: number, path: string): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
      })
      .on('error', reject);
  });
}

describe('metrics', () => {
  it.skipIf(!PROMTOOL)(`coordinator and worker metrics pass promtool check metrics${PROMTOOL ? '' : ' (skipped: promtool missing; apt-get install prometheus)'}`, async () => {
    const c = new CoordinatorMetrics('run-1');
    c.setChunkCounts({ pending: 3, assigned: 2, done: 1, committed: 4 });
    c.particlesBackprojected.inc(12);
    c.workerChunks.inc({ worker: 'w1' });
    c.workerHeartbeat.set({ worker: 'w1' }, Date.now() / 1000);
    c.reductionDuration.observe(0.3);
    c.phaseDuration.observe({ phase: 'finalisation' }, 1.2);
    expect(promtoolProblems(await c.registry.metrics())).toBe('');
    const w = new WorkerMetrics('run-1', 'w1');
    w.chunks.inc();
    expect(promtoolProblems(await w.registry.metrics())).toBe('');
  });

  it('serves /metrics over HTTP on the address given', async () => {
    const c = new CoordinatorMetrics('run-2');
    c.progressRatio.set(0.25);
    const server = await serveMetrics(c.registry, 0, '127.0.0.1');
    try {
      const res = await get(server.port, '/metrics');
      expect(res.status).toBe(200);
      expect(res.type).toMatch(/text\/plain/);
      expect(res.body).toMatch(/^tomorecon_progress_ratio\{run_id="run-2"\} 0\.25$/m);
      expect(res.body).toMatch(/^process_cpu_seconds_total/m);
      expect((await get(server.port, '/')).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
