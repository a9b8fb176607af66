import { type Agent, request } from 'node:http';

/** An HTTP answer as the load generators read it: the status, the JSON body (or the text when it is not JSON), Retry-After. */
export interface HttpAnswer {
  readonly status: number;
  readonly body: unknown;
  /** Seconds, from Retry-After (2 when absent). */
  readonly retryAfter: number;
}

/**
 * A request that failed before any answer. `staleSocket`: a keep-alive socket the server closed as
 * idle (its keepAliveTimeout) while this request was being written on it — ECONNRESET on a reused
 * socket: the server never read the request, so sending it again on a fresh socket is safe, as an
 * HTTP client pool does.
 */
export class RequestFailedError extends Error {
  readonly code: string | undefined;
  readonly staleSocket: boolean;

  constructor(cause: NodeJS.ErrnoException, reusedSocket: boolean) {
    super(cause.message);
    this.name = 'RequestFailedError';
    this.code = cause.code;
    this.staleSocket = reusedSocket && cause.code === 'ECONNRESET';
  }
}

/**
 * One request on `agent` to `base` + `path` with `body` as its bytes (sent as they are: a signed
 * request's signature covers them), its answer read whole. Shared by the attestation and the
 * delivery load generators.
 */
export function sendJson(agent: Agent, base: URL, method: 'GET' | 'POST', path: string, headers: Record<string, string | number>, body: Buffer): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: base.hostname, port: base.port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const retryAfter = Number(res.headers['retry-after'] ?? 2);
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown, retryAfter });
        } catch {
          resolve({ status: res.statusCode ?? 0, body: text, retryAfter });
        }
      });
      res.on('error', reject);
    });
    req.on('error', (error: NodeJS.ErrnoException) => reject(new RequestFailedError(error, req.reusedSocket)));
    req.end(body);
  });
}

/** JSON bytes of `body` with their Content-Type and Content-Length headers (none for no body). */
export function jsonBody(body: unknown): { bytes: Buffer; headers: Record<string, string | number> } {
  if (body === undefined) {
    return { bytes: Buffer.alloc(0), headers: {} };
  }
  const bytes = Buffer.from(JSON.stringify(body));
  return { bytes, headers: { 'content-type': 'application/json', 'content-length': bytes.length } };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
