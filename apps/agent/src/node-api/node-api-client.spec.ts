import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { MAX_RESPONSE_BYTES, NodeApiClient, NodeApiNotHttpError, NodeApiProtocolError, NodeApiRefusal, NodeApiUnreachableError } from './node-api-client';
import { MAX_SERVER_LINE } from './server-text';

/**
 * A TCP server below HTTP: `onRequest` gets each connection once its first bytes arrived. Counts
 * connections and the ones closed, so a test sees that the client let go of them.
 */
async function tcpServe(onRequest: (socket: Socket) => void): Promise<{ url: string; server: TcpServer; requests: () => number; connections: () => number; closed: () => number }> {
  let connections = 0;
  let requests = 0;
  let closed = 0;
  const server = createTcpServer((socket) => {
    connections += 1;
    socket.on('error', () => undefined);
    socket.on('close', () => (closed += 1));
    socket.once('data', () => {
      requests += 1;
      onRequest(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, requests: () => requests, connections: () => connections, closed: () => closed };
}

/** Headers, then a body that trickles one byte a second and never ends (its Content-Length is never reached). */
function trickle(socket: Socket): void {
  socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n{');
  const timer = setInterval(() => socket.write(' '), 1000);
  socket.on('close', () => clearInterval(timer));
}

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
  const tcpServers: { server: TcpServer; sockets: Set<Socket> }[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => { s.closeAllConnections(); s.close(resolve); })));
    await Promise.all(tcpServers.splice(0).map(({ server, sockets }) => new Promise((resolve) => { sockets.forEach((socket) => socket.destroy()); server.close(resolve); })));
  });
  const startTcp = async (onRequest: (socket: Socket) => void) => {
    const sockets = new Set<Socket>();
    const s = await tcpServe((socket) => {
      sockets.add(socket);
      onRequest(socket);
    });
    tcpServers.push({ server: s.server, sockets });
    return s;
  };
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
    expect((error as Error).message).toBe(`cannot reach the server ${s.url}: no complete answer within 0.1 s (the agent's timeout) (2 attempts)`);
    expect(s.seen()).toBe(2);
  });

  it('headers then a body that trickles a byte a second: the timeout covers the body, each attempt\'s connection is closed, then unreachable naming the timeout', async () => {
    const s = await startTcp(trickle);
    const retries: string[] = [];
    const error = await new NodeApiClient({ serverUrl: s.url, timeoutMs: 300, attempts: 2, baseDelayMs: 1, onRetry: ({ reason }) => retries.push(reason) }).send('POST', '/node/v1/x', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NodeApiUnreachableError);
    expect((error as Error).message).toBe(`cannot reach the server ${s.url}: no complete answer within 0.3 s (the agent's timeout) (2 attempts)`);
    expect(retries).toEqual(["no complete answer within 0.3 s (the agent's timeout)"]);
    expect(s.requests()).toBe(2);
    // The client cancelled each body: the server sees every connection closed (waited for, not timed).
    while (s.closed() < s.connections()) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(s.closed()).toBe(s.connections());
  });

  it('a hostile server\'s code and message: ANSI escapes, CR, NUL, C1 and bidi controls are shown escaped, the length bounded', async () => {
    const message = `\u001b[2J\u001b[1;1Hall good\r\u0000\u009b31m\u202eevil\u2066${'A'.repeat(5000)}`;
    const s = await start([json(403, { code: 'x\u001b]0;owned\u0007', message: [message, '\u001b[31mline two'] })]);
    const error = (await new NodeApiClient({ serverUrl: s.url }).send('GET', '/node/v1/x').catch((e: unknown) => e)) as NodeApiRefusal;
    expect(error).toBeInstanceOf(NodeApiRefusal);
    expect(error.code).toBe('x\\u{1B}]0;owned\\u{7}');
    expect(error.serverMessage.startsWith('\\u{1B}[2J\\u{1B}[1;1Hall good\\u{D}\\u{0}\\u{9B}31m\\u{202E}evil\\u{2066}AAA')).toBe(true);
    expect(error.serverMessage).toMatch(/… \(\d+ more characters\)$/);
    expect(error.serverMessage.length).toBeLessThanOrEqual(MAX_SERVER_LINE + 30);
    expect(error.lines).toEqual(['\\u{1B}[31mline two']);
    for (const text of [error.code, error.serverMessage, error.message, ...error.lines]) {
      expect(text).not.toMatch(/[\p{Cc}\p{Cf}]/u); // C0, DEL, C1; bidi and other format characters
    }
  });

  it('a peer that does not speak HTTP: "<server> did not answer HTTP", not retried', async () => {
    const s = await startTcp((socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n'));
    const error = await new NodeApiClient({ serverUrl: s.url, baseDelayMs: 1 }).send('GET', '/node/v1/x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NodeApiNotHttpError);
    expect((error as Error).message).toBe(`${s.url} did not answer HTTP (is the URL the control plane's?)`);
    expect(s.requests()).toBe(1);
  });

  it('429, 502 and 504 are retried like 503 (Retry-After honoured); a 413 or 503 that is not JSON is said in one line', async () => {
    const s = await start([json(429, { code: 'rate', message: 'slow down' }, { 'retry-after': '0' }), (_req, res) => { res.writeHead(502, { 'content-type': 'text/html' }); res.end('<html>bad gateway</html>'); }, json(201, { ok: true })]);
    const reasons: string[] = [];
    expect(await new NodeApiClient({ serverUrl: s.url, baseDelayMs: 1, onRetry: ({ reason }) => reasons.push(reason) }).send('POST', '/node/v1/x', {})).toEqual({ status: 201, body: { ok: true } });
    expect(reasons).toEqual(['the server asks the agent to slow down (HTTP 429)', 'a proxy in front of the server cannot reach it (HTTP 502)']);

    const tooLarge = await start([(_req, res) => { res.writeHead(413, { 'content-type': 'text/html' }); res.end('<html><h1>413 Request Entity Too Large</h1></html>'); }]);
    await expect(new NodeApiClient({ serverUrl: tooLarge.url }).send('POST', '/node/v1/x', {})).rejects.toThrow(
      new NodeApiProtocolError(tooLarge.url, `HTTP 413 Payload Too Large with a body that is not JSON (is ${tooLarge.url} a rackseal control plane, or a proxy in front of it?)`),
    );
    const down = await start([(_req, res) => { res.writeHead(503, { 'content-type': 'text/plain' }); res.end('maintenance\n'); }]);
    await expect(new NodeApiClient({ serverUrl: down.url, attempts: 2, baseDelayMs: 1 }).send('GET', '/node/v1/x')).rejects.toThrow(`cannot reach the server ${down.url}: the server is unavailable (503) (2 attempts)`);
    expect(down.seen()).toBe(2);
  });
});
