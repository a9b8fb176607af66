/**
 * The agent's delivery loop (apps/agent/src/deliveries/delivery-loop.ts) against a server whose
 * mailbox answers are not mailbox answers (issue 14, intruder pass): a proxy's empty 200, a list
 * that is not one, `null` deliveries, deeply nested JSON, an id that would walk the ack's path. Each
 * is refused as a whole with a `mailbox-invalid` line: the loop ends its stretch as `unavailable`
 * instead of throwing out of `rackseal-agent run`, and nothing is unwrapped, installed or acked.
 */
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeliveryLoop } from '../apps/agent/src/deliveries/delivery-loop';
import { LOCALHOST } from './support/free-port';

const DELIVERY = { id: '0b7e4c1e-7f43-4c55-9a3b-2d1f5e6a7b8c', secret: 'web', kind: 'opaque', version: 1, binding: 'certified-key', envelope: 'AAAA' };

describe('the delivery loop against a hostile mailbox', () => {
  let stateDir: string;
  let server: Server;
  let answer = '';
  let routeMissing = false;
  const requests: string[] = [];

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'rackseal-loop-'));
    server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => {
        if (routeMissing && req.method === 'POST') {
          // As a control plane from before the POST poll answers an unknown route.
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ code: 'route.not-found', message: `Cannot POST ${req.url ?? ''}` }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(answer);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, LOCALHOST, resolve));
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(stateDir, { recursive: true, force: true });
  });

  it.each([
    ['an empty 200 (a proxy)', ''],
    ['a JSON array', '[]'],
    ['deliveries that are not a list', '{"deliveries":"all of them"}'],
    ['a null delivery', '{"deliveries":[null]}'],
    ['deeply nested JSON', `{"deliveries":${'['.repeat(100_000)}${']'.repeat(100_000)}}`],
    ['a delivery id that walks the ack path', JSON.stringify({ deliveries: [{ ...DELIVERY, id: '../../../v1/secrets' }] })],
    ['a version that is not a number', JSON.stringify({ deliveries: [{ ...DELIVERY, version: '1' }] })],
    ['an envelope that is not base64', JSON.stringify({ deliveries: [{ ...DELIVERY, envelope: { $gt: '' } }] })],
    ['more than 100 deliveries', JSON.stringify({ deliveries: Array.from({ length: 101 }, () => DELIVERY) })],
  ])('%s: refused as a whole, a mailbox-invalid line, the stretch ends unavailable, no ack', async (_, body) => {
    answer = body;
    requests.length = 0;
    const lines: Record<string, unknown>[] = [];
    const loop = new DeliveryLoop({
      serverUrl: `http://${LOCALHOST}:${(server.address() as AddressInfo).port}`,
      tpm: join(stateDir, 'no-tpm'),
      stateDir,
      config: { installs: new Map() },
      timeoutMs: 5000,
      ekPubHash: () => '00'.repeat(32),
      credential: () => Promise.resolve({ credentialId: 'ab'.repeat(16), key: new SecretBytes(randomBytes(32)) }),
      write: (line) => lines.push(line),
    });
    await expect(loop.runFor(1500, new AbortController().signal)).resolves.toBe('unavailable');
    expect(lines).toEqual([{ at: expect.any(String), outcome: 'mailbox-invalid', code: 'delivery.invalid-mailbox', message: expect.stringMatching(/^the mailbox answer /) }]);
    // The poll that carries acks (none to carry yet).
    expect(requests).toEqual(['POST /node/v1/deliveries/poll?wait=1']);
  });

  it('a poll answer without its list of ack answers is refused as a whole (mailbox-invalid)', async () => {
    answer = JSON.stringify({ deliveries: [] });
    requests.length = 0;
    const lines: Record<string, unknown>[] = [];
    await expect(loopWith(lines).runFor(1500, new AbortController().signal)).resolves.toBe('unavailable');
    expect(lines).toEqual([{ at: expect.any(String), outcome: 'mailbox-invalid', code: 'delivery.invalid-mailbox', message: 'the mailbox answer has no list of 0 ack answers' }]);
    expect(requests).toEqual(['POST /node/v1/deliveries/poll?wait=1']);
  });

  it('a control plane without the POST poll (404 route.not-found): the loop polls with GET from then on', async () => {
    answer = JSON.stringify({ deliveries: [] });
    routeMissing = true;
    requests.length = 0;
    const lines: Record<string, unknown>[] = [];
    await expect(loopWith(lines).runFor(2500, new AbortController().signal)).resolves.toBe('ok');
    expect(lines).toEqual([]);
    expect(requests[0]).toBe('POST /node/v1/deliveries/poll?wait=2');
    expect(requests.slice(1).length).toBeGreaterThan(0);
    expect(new Set(requests.slice(1).map((r) => r.replace(/\?wait=\d+$/, '')))).toEqual(new Set(['GET /node/v1/deliveries']));
  });

  function loopWith(lines: Record<string, unknown>[]): DeliveryLoop {
    return new DeliveryLoop({
      serverUrl: `http://${LOCALHOST}:${(server.address() as AddressInfo).port}`,
      tpm: join(stateDir, 'no-tpm'),
      stateDir,
      config: { installs: new Map() },
      timeoutMs: 5000,
      ekPubHash: () => '00'.repeat(32),
      credential: () => Promise.resolve({ credentialId: 'ab'.repeat(16), key: new SecretBytes(randomBytes(32)) }),
      write: (line) => lines.push(line),
    });
  }
});
