import type { IncomingMessage, ServerResponse } from 'node:http';
import { assignRequestId, REQUEST_ID_HEADER } from './request-id';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Runs assignRequestId on a request with these X-Request-Id header values; returns the id and the echoed header. */
function assign(incoming: string | string[] | undefined): { id: string; echoed: unknown } {
  const headers: Record<string, unknown> = {};
  const request = { headers: incoming === undefined ? {} : { [REQUEST_ID_HEADER]: incoming } } as unknown as IncomingMessage;
  const response = { setHeader: (name: string, value: unknown) => (headers[name.toLowerCase()] = value) } as unknown as ServerResponse;
  const id = assignRequestId(request, response);
  return { id, echoed: headers[REQUEST_ID_HEADER] };
}

describe('assignRequestId', () => {
  it.each(['lb-7f3a.91:req_0001', 'A'.repeat(128), 'a', '0f9e1c2d-0000-4000-8000-000000000001'])('keeps and echoes a well-formed incoming id %j', (incoming) => {
    expect(assign(incoming)).toEqual({ id: incoming, echoed: incoming });
  });

  it.each([
    ['none', undefined],
    ['empty', ''],
    ['129 characters', 'A'.repeat(129)],
    ['a space', 'abc def'],
    ['a tab', 'abc\tdef'],
    ['a newline (log injection)', 'abc\n{"level":60,"msg":"forged"}'],
    ['JSON', '"},{"level":60'],
    ['a slash', '../../etc/passwd'],
    ['non-ASCII', 'réquest'],
    ['a NUL', 'a\u0000b'],
    ['two joined by a proxy', 'abc, def'],
  ])('replaces an incoming id with %s by a fresh UUID, echoed', (_label, incoming) => {
    const { id, echoed } = assign(incoming);
    expect(id).toMatch(UUID);
    expect(echoed).toBe(id);
  });

  it('takes the first of repeated headers only when it is well-formed', () => {
    expect(assign(['first-id', 'second-id']).id).toBe('first-id');
    expect(assign(['bad id', 'second-id']).id).toMatch(UUID);
  });

  it('gives two requests without an id two different ids', () => {
    expect(assign(undefined).id).not.toBe(assign(undefined).id);
  });
});
