/**
 * Serves a prom-client registry on GET /metrics over HTTP, bound to the address given
 * (default loopback: a metrics port is not meant to be open to the world).
 */
import http from 'node:http';
import type { Registry } from 'prom-client';
import { TomoError } from '../../src/errors.js';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export function serveMetrics(registry: Registry, port: number, host = '127.0.0.1'): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
      registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { 'Content-Type': registry.contentType });
          res.end(body);
        })
        .catch((e: Error) => {
          res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end(e.message);
        });
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('tomorecon: metrics are on /metrics\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new TomoError(`cannot serve metrics on ${host}:${port}: ${e.code ?? e.message}`)));
    server.listen(port, host, () => {
      const addr = server.address();
      resolve({
        port: typeof addr === 'object' && addr ? addr.port : port,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}
