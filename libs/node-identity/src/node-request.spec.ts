import { createHash, createHmac } from 'node:crypto';
import type { SecretBytes } from '@rackseal/config/secret-bytes';
import {
  deriveNodeCredential,
  MemoryReplayGuard,
  type NodeCredential,
  NodeIdentityInputError,
  type NodeRequestHeaders,
  type NodeRequestRefusalReason,
  type NodeRequestVerdict,
  signNodeRequest,
  verifyNodeRequest,
} from './index';

const AK_NAME = Buffer.concat([Buffer.from([0x00, 0x0b]), Buffer.alloc(32, 0x42)]);
const MACHINE = deriveNodeCredential(Buffer.alloc(32, 0x11), { registrationId: 'reg-machine-a', ekPubHash: 'aa'.repeat(32), akName: AK_NAME });
const OTHER_MACHINE = deriveNodeCredential(Buffer.alloc(32, 0x22), { registrationId: 'reg-machine-b', ekPubHash: 'bb'.repeat(32), akName: AK_NAME });

const NOW = new Date('2026-12-02T12:00:00.000Z');
const NOW_S = NOW.getTime() / 1000;
const NONCE = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const PATH = '/node/v1/attestations/7b0e3c52/finish?attempt=2';
const BODY = Buffer.from('{"quote":"AAEC"}');

function signed(overrides: Partial<Parameters<typeof signNodeRequest>[0]> = {}): Record<string, string> {
  return signNodeRequest({ credential: MACHINE, method: 'POST', path: PATH, body: BODY, now: NOW, nonce: NONCE, ...overrides });
}

/** A server that knows `known` credentials, with a fresh replay guard unless one is given. */
function server(known: readonly NodeCredential[] = [MACHINE], replay = new MemoryReplayGuard(() => NOW)) {
  const keys = new Map<string, SecretBytes>(known.map((c) => [c.credentialId, c.key]));
  const lookups: string[] = [];
  return {
    replay,
    lookups,
    verify: (headers: NodeRequestHeaders, method = 'POST', path = PATH, body = BODY, now = NOW, maxSkewSeconds?: number): Promise<NodeRequestVerdict> =>
      verifyNodeRequest(headers, method, path, body, {
        now,
        maxSkewSeconds,
        lookup: async (id) => {
          lookups.push(id);
          return keys.get(id);
        },
        replay,
      }),
  };
}

async function refusal(verdict: Promise<NodeRequestVerdict>): Promise<{ reason: NodeRequestRefusalReason; message: string; credentialId?: string }> {
  const answer = await verdict;
  if (answer.ok) {
    throw new Error('expected the request to be refused');
  }
  expect(answer.refusal).toBeInstanceOf(Error);
  return { reason: answer.refusal.reason, message: answer.refusal.message, credentialId: answer.refusal.credentialId };
}

describe('signNodeRequest', () => {
  it('writes the Authorization and Content-Digest headers over the documented canonical lines', () => {
    const headers = signed();
    const digest = createHash('sha256').update(BODY).digest();
    const lines = ['rackseal node request v1', 'POST', PATH, MACHINE.credentialId, String(NOW_S), NONCE.toString('base64url'), digest.toString('hex')].join('\n');
    const signature = createHmac('sha256', MACHINE.key.reveal()).update(lines).digest('base64url');
    expect(headers).toEqual({
      authorization: `RackSeal-HMAC-SHA256 Credential=${MACHINE.credentialId}, Timestamp=${NOW_S}, Nonce=AAECAwQFBgcICQoLDA0ODw, Signature=${signature}`,
      'content-digest': `sha-256=:${digest.toString('base64')}:`,
    });
  });

  it('signs an empty body with the digest of no bytes (RFC 9530 §2)', () => {
    expect(signed({ method: 'GET', body: Buffer.alloc(0) })['content-digest']).toBe('sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:');
  });

  it('never puts key bytes in the headers', () => {
    const key = MACHINE.key.reveal();
    const text = JSON.stringify(signed());
    for (const encoding of ['hex', 'base64', 'base64url'] as const) {
      expect(text).not.toContain(key.toString(encoding));
    }
  });

  it.each([
    ['a lower-case method', { method: 'post' }, /method is 1 to 16 upper-case letters/],
    ['a path without the leading slash', { path: 'node/v1/x' }, /path starts with "\/"/],
    ['a path with a space', { path: '/node/v1/a b' }, /visible ASCII/],
    ['a path with a line feed', { path: '/node/v1/a\nb' }, /visible ASCII/],
    ['a path of 2049 characters', { path: '/' + 'a'.repeat(2048) }, /at most 2048/],
    ['a nonce of 15 bytes', { nonce: Buffer.alloc(15) }, /nonce is 16 bytes/],
    ['an invalid date', { now: new Date(Number.NaN) }, /valid Date/],
    ['a credential with a bad ID', { credential: { credentialId: 'X', key: MACHINE.key } }, /credential ID is 32 lower-case hex/],
  ])('refuses %s with a NodeIdentityInputError', (_name, overrides, message) => {
    const call = (): unknown => signed(overrides);
    expect(call).toThrow(NodeIdentityInputError);
    expect(call).toThrow(message);
  });
});

describe('verifyNodeRequest', () => {
  it('accepts a signed request and names its credential', async () => {
    const s = server();
    await expect(s.verify(signed())).resolves.toEqual({ ok: true, credentialId: MACHINE.credentialId });
    expect(s.replay.size).toBe(1);
  });

  it('accepts the headers as Node gives them in rawHeaders, in any case', async () => {
    const headers = signed();
    const raw = ['Host', 'cp.example', 'Authorization', headers.authorization!, 'Content-Digest', headers['content-digest']!];
    await expect(server().verify(raw)).resolves.toEqual({ ok: true, credentialId: MACHINE.credentialId });
  });

  it('accepts a timestamp exactly at either edge of the window', async () => {
    const s = server();
    await expect(s.verify(signed({ now: new Date(NOW.getTime() - 300_000) }))).resolves.toMatchObject({ ok: true });
    await expect(s.verify(signed({ now: new Date(NOW.getTime() + 300_000), nonce: Buffer.alloc(16, 1) }))).resolves.toMatchObject({ ok: true });
  });

  describe('refuses, with a stable reason', () => {
    it('a node call without credential: missing-credential', async () => {
      const s = server();
      const { 'content-digest': digest } = signed();
      expect(await refusal(s.verify({ 'content-digest': digest }))).toEqual({
        reason: 'missing-credential',
        message: 'the request carries no node credential (Authorization header)',
        credentialId: undefined,
      });
      expect(s.lookups).toEqual([]);
    });

    it('an operator bearer token on the node API: missing-credential, the token not echoed', async () => {
      const found = await refusal(server().verify({ ...signed(), authorization: 'Bearer rs_secret_token_value' }));
      expect(found.reason).toBe('missing-credential');
      expect(found.message).toBe('the Authorization header is not a RackSeal-HMAC-SHA256 node credential');
    });

    it('the node credential of another machine: unknown-credential when the server does not know it', async () => {
      const s = server([MACHINE]);
      const found = await refusal(s.verify(signed({ credential: OTHER_MACHINE })));
      expect(found).toEqual({
        reason: 'unknown-credential',
        message: `node credential ${OTHER_MACHINE.credentialId} is unknown, rotated or revoked`,
        credentialId: OTHER_MACHINE.credentialId,
      });
      expect(s.replay.size).toBe(0);
    });

    it('a machine signing with its own key under another machine\'s credential ID: bad-signature', async () => {
      const s = server([MACHINE, OTHER_MACHINE]);
      const forged = signed({ credential: { credentialId: OTHER_MACHINE.credentialId, key: MACHINE.key } });
      expect(await refusal(s.verify(forged))).toMatchObject({ reason: 'bad-signature', credentialId: OTHER_MACHINE.credentialId });
      expect(s.replay.size).toBe(0);
    });

    it('a revoked or rotated credential (the server deleted its row): unknown-credential', async () => {
      const s = server([]);
      expect((await refusal(s.verify(signed()))).reason).toBe('unknown-credential');
    });

    it('a replayed request (same nonce within the window): replayed, even from another replica sharing the guard', async () => {
      const shared = new MemoryReplayGuard(() => NOW);
      const headers = signed();
      await expect(server([MACHINE], shared).verify(headers)).resolves.toMatchObject({ ok: true });
      expect(await refusal(server([MACHINE], shared).verify(headers))).toEqual({
        reason: 'replayed',
        message: `the request's nonce was already used with node credential ${MACHINE.credentialId}`,
        credentialId: MACHINE.credentialId,
      });
    });

    it('the same nonce for another credential is not a replay', async () => {
      const s = server([MACHINE, OTHER_MACHINE]);
      await expect(s.verify(signed())).resolves.toMatchObject({ ok: true });
      await expect(s.verify(signed({ credential: OTHER_MACHINE }))).resolves.toMatchObject({ ok: true, credentialId: OTHER_MACHINE.credentialId });
    });

    it('a replay after the window is stale, and the guard has forgotten the nonce by then', async () => {
      let clock = NOW;
      const s = server([MACHINE], new MemoryReplayGuard(() => clock));
      const headers = signed();
      await expect(s.verify(headers)).resolves.toMatchObject({ ok: true });
      clock = new Date(NOW.getTime() + 301_000);
      expect((await refusal(s.verify(headers, 'POST', PATH, BODY, clock))).reason).toBe('stale');
      expect(await s.replay.remember(MACHINE.credentialId, NONCE, new Date(clock.getTime() + 300_000))).toBe(true);
    });

    it.each([
      ['301 s old', -301_000, '301 s behind'],
      ['301 s ahead', 301_000, '301 s ahead of'],
      ['3600 s ahead', 3_600_000, '3600 s ahead of'],
    ])('a timestamp %s: stale, saying how far the node\'s clock is ahead of or behind the server\'s', async (_name, offset, shown) => {
      const s = server();
      const found = await refusal(s.verify(signed({ now: new Date(NOW.getTime() + offset) })));
      expect(found).toEqual({
        reason: 'stale',
        message: `the node's clock is ${shown} the server's; at most 300 s of difference is accepted (correct the node's clock)`,
        credentialId: MACHINE.credentialId,
      });
      expect(s.lookups).toEqual([]);
    });

    it('a timestamp outside a narrower configured window: stale', async () => {
      const found = await refusal(server().verify(signed({ now: new Date(NOW.getTime() - 31_000) }), 'POST', PATH, BODY, NOW, 30));
      expect(found.reason).toBe('stale');
      expect(found.message).toMatch(/at most 30 s/);
    });

    it('a body changed after signing, with the header left: body-digest-mismatch', async () => {
      const s = server();
      const found = await refusal(s.verify(signed(), 'POST', PATH, Buffer.from('{"quote":"AAED"}')));
      expect(found).toEqual({ reason: 'body-digest-mismatch', message: 'the Content-Digest header does not match the body received', credentialId: MACHINE.credentialId });
      expect(s.lookups).toEqual([]);
    });

    it('a body changed after signing, with the Content-Digest recomputed: bad-signature', async () => {
      const body = Buffer.from('{"quote":"AAED"}');
      const headers = { ...signed(), 'content-digest': `sha-256=:${createHash('sha256').update(body).digest('base64')}:` };
      expect((await refusal(server().verify(headers, 'POST', PATH, body))).reason).toBe('bad-signature');
    });

    it.each([
      ['another path', 'POST', '/node/v1/attestations/other/finish?attempt=2'],
      ['another query', 'POST', '/node/v1/attestations/7b0e3c52/finish?attempt=3'],
      ['the query dropped', 'POST', '/node/v1/attestations/7b0e3c52/finish'],
      ['another method', 'PUT', PATH],
    ])('%s than was signed: bad-signature, and the nonce is not consumed', async (_name, method, path) => {
      const s = server();
      const found = await refusal(s.verify(signed(), method, path));
      expect(found).toEqual({
        reason: 'bad-signature',
        message: `the request's signature does not verify under node credential ${MACHINE.credentialId}`,
        credentialId: MACHINE.credentialId,
      });
      expect(s.replay.size).toBe(0);
      // The genuine request still goes through afterwards.
      await expect(s.verify(signed())).resolves.toMatchObject({ ok: true });
    });

    it('a signature with one bit flipped: bad-signature', async () => {
      const headers = signed();
      const signature = /Signature=([A-Za-z0-9_-]{43})$/.exec(headers.authorization!)![1]!;
      const bytes = Buffer.from(signature, 'base64url');
      bytes.writeUInt8(bytes.readUInt8(0) ^ 1, 0);
      const flipped = { ...headers, authorization: headers.authorization!.replace(signature, bytes.toString('base64url')) };
      expect((await refusal(server().verify(flipped))).reason).toBe('bad-signature');
    });

    it('a request target the signer could not have signed (a space): malformed', async () => {
      expect((await refusal(server().verify(signed(), 'POST', '/node/v1/a b'))).reason).toBe('malformed');
    });

    it('no Content-Digest header: malformed', async () => {
      const { authorization } = signed();
      expect(await refusal(server().verify({ authorization }))).toEqual({
        reason: 'malformed',
        message: 'the request has no Content-Digest header',
        credentialId: MACHINE.credentialId,
      });
    });

    it.each([
      ['Authorization twice in rawHeaders', (h: Record<string, string>) => ['authorization', h.authorization!, 'Authorization', h.authorization!, 'content-digest', h['content-digest']!], /authorization header is given more than once/],
      ['Authorization twice as an array', (h: Record<string, string>) => ({ ...h, authorization: [h.authorization!, h.authorization!] }), /^the authorization header is given more than once$/],
      ['Authorization not text', (h: Record<string, string>) => ({ ...h, authorization: 42 }), /^the authorization header is not text$/],
      ['Authorization under two spellings', (h: Record<string, string>) => ({ ...h, Authorization: h.authorization! }), /^the authorization header is given more than once$/],
      ['Content-Digest twice', (h: Record<string, string>) => ({ ...h, 'content-digest': [h['content-digest']!, h['content-digest']!] }), /content-digest header is given more than once/],
      ['Content-Digest joined by Node', (h: Record<string, string>) => ({ ...h, 'content-digest': `${h['content-digest']!}, ${h['content-digest']!}` }), /Content-Digest header is longer than 128|not sha-256=/],
      ['Content-Digest of another algorithm', (h: Record<string, string>) => ({ ...h, 'content-digest': h['content-digest']!.replace('sha-256', 'sha-512') }), /not sha-256=:<base64 SHA-256>: \(RFC 9530\)/],
      ['Content-Digest in hex', (h: Record<string, string>) => ({ ...h, 'content-digest': `sha-256=:${createHash('sha256').update(BODY).digest('hex')}:` }), /not sha-256=/],
    ])('%s: malformed', async (_name, edit, message) => {
      const found = await refusal(server().verify(edit(signed()) as NodeRequestHeaders));
      expect(found.reason).toBe('malformed');
      expect(found.message).toMatch(message);
    });
  });

  it('throws what lookup throws (the database is down): that is no verdict on the request', async () => {
    const failing = verifyNodeRequest(signed(), 'POST', PATH, BODY, {
      now: NOW,
      lookup: () => Promise.reject(new Error('connection refused')),
      replay: new MemoryReplayGuard(() => NOW),
    });
    await expect(failing).rejects.toThrow('connection refused');
  });

  it.each([0, 3601, 1.5])('refuses maxSkewSeconds %p as a caller mistake', async (skew) => {
    await expect(server().verify(signed(), 'POST', PATH, BODY, NOW, skew)).rejects.toThrow(NodeIdentityInputError);
  });
});
