import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAX_RESPONSE_BYTES, NodeApiClient, NodeApiProtocolError, NodeApiRefusal, NodeApiUnreachableError } from './node-api-client';

/** A server answering each request with the next handler; counts requests. */
async function serve(handlers: ((req: IncomingMessage, res: ServerResponse) => void)[]): Promise<{ url: string; server: Server; seen: () => number }> {
  let count = 0;
  const server = createServer((req, res) => {
    const handler = handlers[Math.min(count, handlers.length - 1)]!;
    count += 1;
    req.resume();
    req.on('end', () => handler(req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, seen: () => count };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

describe('NodeApiClient', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => { s.closeAllConnections(); s.close(resolve); })));
  });
  const start = async (handlers: Parameters<typeof serve>[0]) => {
    const s = await serve(handlers);
    servers.push(s.server);
    return s;
  };

  it('503 is retried after its Retry-After, then the 2xx body is returned', async () => {
    const s = await start([json(503, { code: 'service.unavailable', message: 'busy' }, { 'retry-after': '1' }), json(201, { ok: true })]);
    const retries: number[] = [];
    const began = Date.now();
    const answer = await new NodeApiClient({ serverUrl: s.url, baseDelayMs: 10, onRetry: ({ delayMs }) => retries.push(delayMs) }).send('POST', '/node/v1/x', { a: 1 });
    expect(answer).toEqual({ status: 201, body: { ok: true } });
    expect(s.seen()).toBe(2);
    expect(retries).toEqual([1000]);
    expect(Date.now() - began).toBeGreaterThanOrEqual(990);
  });

  it('a 4xx is the server\'s refusal, never retried, with its code, message and further lines', async () => {
    const s = await start([json(409, { statusCode: 409, code: 'attestation.policy-mismatch', message: ['no allowed set', 'PCR 4 differs'] })]);
    const error = await new NodeApiClient({ serverUrl: s.url, baseDelayMs: 1 }).send('POST', '/node/v1/x', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NodeApiRefusal);
    expect(error).toMatchObject({ status: 409, code: 'attestation.policy-mismatch', serverMessage: 'no allowed set', lines: ['PCR 4 differs'] });
    expect(s.seen()).toBe(1);
  });

  it('a 500 or a body that is not JSON is a protocol error, not retried', async () => {
    const s = await start([json(500, { code: 'internal', message: 'internal error' })]);
    await expect(new NodeApiClient({ serverUrl: s.url, baseDelayMs: 1 }).send('GET', '/node/v1/x')).rejects.toThrow(`the server ${s.url} answered unexpectedly: HTTP 500: internal: internal error`);
    const html = await start([(_req, res) => res.end('<html>')]);
    await expect(new NodeApiClient({ serverUrl: html.url }).send('GET', '/node/v1/x')).rejects.toBeInstanceOf(NodeApiProtocolError);
    expect(s.seen() + html.seen()).toBe(2);
  });

  it('an answer larger than the bound is refused without reading it all', async () => {
    const s = await start([(_req, res) => res.end(Buffer.alloc(MAX_RESPONSE_BYTES + 1, 0x20))]);
    await expect(new NodeApiClient({ serverUrl: s.url }).send('GET', '/node/v1/x')).rejects.toThrow(`an answer larger than ${MAX_RESPONSE_BYTES} bytes`);
  });

  it('no answer in time: retried, then unreachable after every attempt', async () => {
    const s = await start([() => undefined]);
    const error = await new NodeApiClient({ serverUrl: s.url, timeoutMs: 100, attempts: 2, baseDelayMs: 1 }).send('GET', '/node/v1/x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NodeApiUnreachableError);
    expect((error as Error).message).toBe(`cannot reach the server ${s.url}: no answer in time (2 attempts)`);
    expect(s.seen()).toBe(2);
  });
});
