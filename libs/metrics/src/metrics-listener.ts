import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetricsRegistry } from './metrics-registry';

/**
 * A plain node:http server answering `GET /metrics` (and HEAD) from the registry, 404 for any other
 * path, 405 for other methods. Deliberately not Nest: the worker has no HTTP stack, and the control
 * plane's copy must not inherit the API's routes, guards or body parsers. No token: reaching the
 * bind address is the authorisation (docs/decisions.md, "Observability").
 */
export async function startMetricsListener(metrics: MetricsRegistry, host: string, port: number): Promise<Server> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: this listener serves GET /metrics only\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    metrics.render().then(
      (text) => response.writeHead(200, { 'content-type': metrics.contentType }).end(request.method === 'HEAD' ? undefined : text),
      () => response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics could not be rendered\n'),
    );
  });
  // A scraper that opens a connection and sends nothing must not hold it forever.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** The port a started listener is bound to (the configured one, or the one picked for port 0 in tests). */
export function listenerPort(server: Server): number {
  return (server.address() as AddressInfo).port;
}
