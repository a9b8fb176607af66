import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CliError, EXIT } from '@rackseal/command-line';
import { ServerClient } from './server-client';

/** A local server that answers every request with one fixed reply. */
function replyingServer(status: number, headers: Record<string, string>, body: unknown): Promise<Server> {
  const server = createServer((_request, response) => {
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(JSON.stringify(body));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function failureOf(status: number, headers: Record<string, string>, body: unknown): Promise<CliError> {
  const server = await replyingServer(status, headers, body);
  try {
    const { port } = server.address() as AddressInfo;
    const client = new ServerClient(`http://127.0.0.1:${port}`, 'rks_test', 'inventory import');
    const error = await client.get('v1/machines').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CliError);
    return error as CliError;
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

/** A local server that answers every request with `status` and a plain-text body (a proxy, another listener). */
async function failureOfText(status: number, text: string): Promise<CliError> {
  const server = createServer((_request, response) => response.writeHead(status, { 'content-type': 'text/plain' }).end(text));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  try {
    const { port } = server.address() as AddressInfo;
    const error = await new ServerClient(`http://127.0.0.1:${port}`, 'rks_test', 'deliveries list').get('v1/deliveries').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CliError);
    return error as CliError;
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('ServerClient answers an operator can act on', () => {
  it('a 4xx that is not JSON (RACKSEAL_SERVER naming the metrics port, a proxy) says the server may not be the control plane', async () => {
    const error = await failureOfText(404, 'not found: this listener serves GET /metrics only\n');
    expect(error.exitCode).toBe(EXIT.usage);
    expect(error.message).toMatch(
      /^deliveries list: unexpected reply from http:\/\/127\.0\.0\.1:\d+\/v1\/deliveries \(HTTP 404, not JSON: "not found: this listener serves GET \/metrics only"\): is the server the rackseal control plane\?$/,
    );
  });

  it('a 503 says nothing changed and when to retry, from Retry-After', async () => {
    const error = await failureOf(503, { 'retry-after': '5' }, { statusCode: 503, message: 'at most 2 inventory imports run at once (INVENTORY_MAX_CONCURRENT_IMPORTS)' });
    expect(error.exitCode).toBe(EXIT.usage);
    expect(error.message).toBe(
      'inventory import: the control plane is busy or a dependency is down (503): at most 2 inventory imports run at once (INVENTORY_MAX_CONCURRENT_IMPORTS); nothing was changed, retry in 5 s',
    );
  });

  it.each([['soon'], ['0'], ['99999'], ['']])('a 503 with an unusable Retry-After %j says retry later', async (value) => {
    const error = await failureOf(503, value === '' ? {} : { 'retry-after': value }, { message: 'database unavailable' });
    expect(error.message).toBe('inventory import: the control plane is busy or a dependency is down (503): database unavailable; nothing was changed, retry later');
  });

  it('another 5xx names the status and the errorId only', async () => {
    const error = await failureOf(500, {}, { statusCode: 500, message: 'internal error; quote the errorId to your operator', errorId: 'e-123' });
    expect(error.message).toBe('inventory import: server error 500: internal error; quote the errorId to your operator (errorId e-123)');
  });

  it('server text is shown with control characters escaped', async () => {
    const error = await failureOf(503, { 'retry-after': '1' }, { message: 'busy\u001b[2J' });
    expect(error.message).not.toContain('\u001b');
  });
});
