/**
 * Request ids through the logs (issue 15 item 2): a control-plane process (the product's module and
 * HTTP set-up plus test routes that log from inside a request: test/support/control-plane-probe-main.ts)
 * tags every log line of a request — lines logged before and after an await, the exception filter's
 * error line, pino-http's completion line — with the request's id: the caller's well-formed
 * X-Request-Id, else a fresh one, the one echoed in the response header and in error bodies.
 */
import { createTestDatabase, type TestDatabase } from './support/database';
import { type LogLine, type RunningProcess, startDistFile } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testEnv } from './support/test-config';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request ids in every log line of a request', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let proc: RunningProcess;
  let baseUrl: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    proc = startDistFile('test/support/control-plane-probe-main.js', testEnv(db, prefix.prefix, { LOG_LEVEL: 'info' }));
    const line = await proc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('control plane listening'));
    baseUrl = `http://127.0.0.1:${String(line.port)}`;
  });

  afterAll(async () => {
    await proc?.stop();
    await db?.drop();
    await prefix?.clear();
  });

  const requestIdOf = (line: LogLine): unknown => (line.req as { id?: unknown } | undefined)?.id;

  /** The lines logged while serving a request: waits for its completion line, which pino-http writes last. */
  async function linesOf(id: string, message: (l: LogLine) => boolean): Promise<LogLine[]> {
    await proc.waitForLog((l) => requestIdOf(l) === id && l.res !== undefined);
    return proc.logs.filter(message);
  }

  it('keeps a well-formed incoming id: header, the lines before and after an await, and the completion line', async () => {
    const response = await fetch(`${baseUrl}/test/log`, { headers: { 'X-Request-Id': 'lb-42.req:0001' } });
    expect([response.status, response.headers.get('x-request-id')]).toEqual([200, 'lb-42.req:0001']);
    const lines = await linesOf('lb-42.req:0001', (l) => requestIdOf(l) === 'lb-42.req:0001');
    expect(lines.map((l) => l.msg)).toEqual(['probe: before the await', 'probe: after the await', 'request completed']);
  });

  it('replaces a malformed id by a fresh one, used in the header and every line', async () => {
    const response = await fetch(`${baseUrl}/test/log`, { headers: { 'X-Request-Id': '"},{"level":60' } });
    const id = response.headers.get('x-request-id')!;
    expect(id).toMatch(UUID);
    const lines = await linesOf(id, (l) => requestIdOf(l) === id);
    expect(lines.map((l) => l.msg)).toEqual(['probe: before the await', 'probe: after the await', 'request completed']);
    expect(proc.stdout).not.toContain('"},{"level":60');
  });

  it('puts the id in an error body and in the exception filter\'s error line', async () => {
    const response = await fetch(`${baseUrl}/test/boom`, { headers: { 'X-Request-Id': 'boom-0001' } });
    const body = (await response.json()) as { code: string; requestId: string };
    expect([response.status, body.code, body.requestId, response.headers.get('x-request-id')]).toEqual([500, 'internal', 'boom-0001', 'boom-0001']);
    const lines = await linesOf('boom-0001', (l) => requestIdOf(l) === 'boom-0001');
    // The filter's error line (level 50, with the errorId the body does not carry) and pino-http's completion line.
    expect(lines.map((l) => [l.level, l.res === undefined ? 'error' : 'completed'])).toEqual([
      [50, 'error'],
      [30, 'completed'],
    ]);
    // No line of this request lacks the id: the filter's error line is tagged like the completion line.
    expect(proc.logs.filter((l) => JSON.stringify(l).includes('probe failure')).every((l) => requestIdOf(l) === 'boom-0001')).toBe(true);
  });
});
