// Container HEALTHCHECK of the control plane: GET /health/ready on the process's own PORT.
// Exit 0 when it answers 200 (PostgreSQL and Redis reachable), 1 otherwise (503, refused, timeout).
// Plain Node with no dependencies because the slim runtime image has no curl or wget.
import http from 'node:http';
import https from 'node:https';

const TIMEOUT_MS = 4000; // under the Dockerfile's HEALTHCHECK --timeout=5s, so we report, not docker

// The same variables, and defaults, the control plane listens with (libs/config). A wildcard
// listen address is reached over loopback.
const port = Number(process.env.PORT || 8080);
const listenHost = (process.env.HOST || '0.0.0.0').trim();
const host = ['0.0.0.0', '::', '[::]'].includes(listenHost) ? '127.0.0.1' : listenHost.replace(/^\[(.*)\]$/, '$1');

// With TLS_CERT_FILE the control plane serves HTTPS only. The probe asks its own process over
// loopback, sends nothing and reads only the status, so it does not check the certificate (whose
// name is the service's, not 127.0.0.1).
const tls = (process.env.TLS_CERT_FILE || '').trim() !== '';
const client = tls ? https : http;
const request = client.get({ host, port, path: '/health/ready', timeout: TIMEOUT_MS, ...(tls ? { rejectUnauthorized: false } : {}) }, (response) => {
  response.resume();
  const ok = response.statusCode === 200;
  if (!ok) {
    process.stderr.write(`healthcheck: /health/ready answered ${response.statusCode}\n`);
  }
  process.exit(ok ? 0 : 1);
});
request.on('timeout', () => request.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
request.on('error', (error) => {
  process.stderr.write(`healthcheck: ${tls ? 'https' : 'http'}://${host}:${port}/health/ready: ${error.message}\n`);
  process.exit(1);
});
