/**
 * The metrics endpoint (--metrics HOST:PORT): Prometheus's text format at GET /metrics, and
 * nothing else. Any other path is 404 and any other method 405, with no body read, so the
 * port offers a scanner nothing to write to. Bounded like everything a network peer can
 * reach: a few connections at once, and headers, requests and idle keep-alives with short
 * timeouts (a scrape takes milliseconds).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { child } from '../log.js';

const log = child('metrics');

/** Scrapers are few (a Prometheus or two, a person with curl). */
const MAX_CONNECTIONS = 16;
const TIMEOUT_MS = 10_000;

export interface MetricsEndpoint {
  readonly port: number;
  close(): Promise<void>;
}

export function listenMetrics(registry: Registry, host: string, port: number): Promise<MetricsEndpoint> {
  const server = http.createServer({ requestTimeout: TIMEOUT_MS, headersTimeout: TIMEOUT_MS, keepAliveTimeout: 5_000 }, (req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== '/metrics') return refuse(res, 404, 'not found: the metrics are at GET /metrics\n');
    if (req.method !== 'GET') {
      res.setHeader('Allow', 'GET');
      return refuse(res, 405, 'method not allowed: GET /metrics only\n');
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType });
        res.end(text);
      },
      (err: unknown) => {
        log.error(`collecting metrics failed: ${(err as Error).message}`);
        refuse(res, 500, 'collecting metrics failed\n');
      },
    );
  });
  server.maxConnections = MAX_CONNECTIONS;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      const bound = (server.address() as AddressInfo).port;
      log.info(`metrics at http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`);
      resolve({
        port: bound,
        close: () => new Promise((done) => {
          server.close(() => done());
          server.closeAllConnections();
        }),
      });
    });
  });
}

/** An error answer that closes the connection: nothing of the request is read. */
function refuse(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' });
  res.end(text);
}
