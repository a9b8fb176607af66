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

describe('ServerClient answers an operator can act on', () => {
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
