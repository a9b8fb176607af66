/**
 * The dashboard's session (issue 16 item 2) on a real control plane and PostgreSQL, over HTTP
 * without a browser (test/ui-dashboard.test.ts drives the same through Chromium): an operator token
 * exchanged for an HttpOnly, SameSite=Strict cookie (Secure behind TLS); only the secret's SHA-256
 * stored; the cookie accepted by the operator API with the token's scopes and audit actor; state
 * changes refused without the CSRF token or a same-host Origin; the session ended by sign-out, by
 * its expiry and by its token's revocation.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { CSRF_HEADER, type OperatorSession, SESSION_COOKIE, SESSION_LIFETIME_SECONDS } from '@rackseal/api-contracts';
import { ApiTokens, MAX_SESSIONS_PER_TOKEN } from '@rackseal/api-tokens';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testConfig } from './support/test-config';

describe('dashboard session: cookie sign-in, CSRF, scopes, sign-out (issue 16 item 2)', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let ds: DataSource;
  const tokens: Record<'admin' | 'reader', { id: string; token: string }> = {} as never;
  const HOST = 'dashboard.test:8443';
  const ORIGIN = `https://${HOST}`;
  const http = () => request(app.getHttpServer());

  /** Signs in with `token` from a page of this host: the cookie's secret and the answer. */
  async function signIn(token: string, extra: Record<string, string> = {}): Promise<{ secret: string; session: OperatorSession; setCookie: string }> {
    const response = await http().post('/v1/session').set({ Host: HOST, Origin: ORIGIN, ...extra }).send({ token });
    expect(response.status).toBe(200);
    const setCookie = ([] as string[]).concat(response.headers['set-cookie'] ?? [])[0] ?? '';
    const secret = new RegExp(`^${SESSION_COOKIE}=([^;]*);`).exec(setCookie)?.[1] ?? '';
    return { secret, session: response.body as OperatorSession, setCookie };
  }

  const withSession = (secret: string, csrf?: string, origin = ORIGIN) => ({ Host: HOST, Origin: origin, Cookie: `${SESSION_COOKIE}=${secret}`, ...(csrf === undefined ? {} : { [CSRF_HEADER]: csrf }) });
  const audit = async (action: string) => (await ds.query('SELECT actor, subject, outcome, details FROM audit_log WHERE action = $1 ORDER BY id', [action])) as { actor: string; subject: string; details: Record<string, unknown> }[];
  const sessionRows = async () => (await ds.query('SELECT id, session_hash, token_id FROM operator_sessions ORDER BY created_at')) as { id: string; session_hash: Buffer; token_id: string }[];

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    app = await createControlPlane(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }));
    await app.init();
    ds = await openDataSource(db.url);
    tokens.admin = await app.get(ApiTokens).issue('dashboard-admin', ['admin'], 'test');
    tokens.reader = await app.get(ApiTokens).issue('dashboard-reader', ['inventory:read'], 'test');
    await ds.query(`INSERT INTO machines (id, serial, group_name, ek_pub_hash, state, imported_at, updated_at) VALUES ($1, 'SN-UI-1', 'racks', $2, 'imported', now(), now())`, [
      randomUUID(),
      'ab'.repeat(32),
    ]);
  });

  afterAll(async () => {
    await app?.close();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
  });

  it('sign-in sets an HttpOnly, SameSite=Strict cookie (Secure behind TLS) and stores only the secret\'s SHA-256, audited as the token', async () => {
    const plain = await signIn(tokens.reader.token);
    expect(plain.setCookie.split('; ').slice(1).sort()).toEqual(['HttpOnly', `Max-Age=${SESSION_LIFETIME_SECONDS}`, 'Path=/', 'SameSite=Strict']);
    expect(plain.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(plain.session).toMatchObject({ tokenId: tokens.reader.id, tokenName: 'dashboard-reader', scopes: ['inventory:read'] });
    expect(plain.session.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(plain.session.csrfToken).not.toBe(plain.secret);
    const tls = await signIn(tokens.reader.token, { 'X-Forwarded-Proto': 'https' });
    expect(tls.setCookie.split('; ')).toContain('Secure');

    const rows = await sessionRows();
    expect(rows.map((r) => r.token_id)).toEqual([tokens.reader.id, tokens.reader.id]);
    expect(rows[0]!.session_hash.equals(createHash('sha256').update(plain.secret).digest())).toBe(true);
    const dump = JSON.stringify(await ds.query('SELECT * FROM operator_sessions')) + JSON.stringify(await ds.query('SELECT details FROM audit_log'));
    expect(dump).not.toContain(plain.secret);
    expect(dump).not.toContain(tokens.reader.token);
    const created = await audit('session.created');
    expect(created.map((r) => [r.actor, r.subject])).toEqual(rows.map((r) => [`token:${tokens.reader.id}`, `session:${r.id}`]));
  });

  it('sign-in refuses a bad token (401) and a request from another site or none (403), making no session', async () => {
    const before = (await sessionRows()).length;
    const bad = await http().post('/v1/session').set({ Host: HOST, Origin: ORIGIN }).send({ token: `rks_${'A'.repeat(43)}` });
    expect([bad.status, bad.body.code, bad.headers['set-cookie']]).toEqual([401, 'auth.unauthenticated', undefined]);
    const crossSite = await http().post('/v1/session').set({ Host: HOST, Origin: 'https://evil.test' }).send({ token: tokens.admin.token });
    expect([crossSite.status, crossSite.body.code, crossSite.headers['set-cookie']]).toEqual([403, 'auth.forbidden', undefined]);
    const noOrigin = await http().post('/v1/session').set({ Host: HOST }).send({ token: tokens.admin.token });
    expect([noOrigin.status, noOrigin.headers['set-cookie']]).toEqual([403, undefined]);
    const malformed = await http().post('/v1/session').set({ Host: HOST, Origin: ORIGIN }).send({ token: 42 });
    expect([malformed.status, malformed.body.code]).toEqual([400, 'request.invalid']);
    expect((await sessionRows()).length).toBe(before);
  });

  it('a token guessed at sign-in is audited like one guessed at the bearer guard (auth.refused, no token in it)', async () => {
    const guessed = `rks_${'G'.repeat(43)}`;
    const before = (await audit('auth.refused')).length;
    const bad = await http().post('/v1/session').set({ Host: HOST, Origin: ORIGIN }).send({ token: guessed });
    expect([bad.status, bad.body.code]).toEqual([401, 'auth.unauthenticated']);
    const refused = await audit('auth.refused');
    expect(refused.length).toBe(before + 1);
    expect(refused[refused.length - 1]).toMatchObject({ actor: expect.stringMatching(/^address:/), outcome: 'refused', details: { reason: 'unauthenticated', method: 'POST', path: '/v1/session' } });
    expect(JSON.stringify(refused)).not.toContain(guessed);
  });

  it(`a token holds at most ${MAX_SESSIONS_PER_TOKEN} live sessions: signing in once more ends its oldest (audited), never the new one`, async () => {
    const looping = await app.get(ApiTokens).issue('looping-script', ['inventory:read'], 'test');
    const signedIn: string[] = [];
    for (let i = 0; i < MAX_SESSIONS_PER_TOKEN + 3; i++) {
      signedIn.push((await signIn(looping.token)).secret);
    }
    const rows = (await sessionRows()).filter((r) => r.token_id === looping.id);
    expect(rows.length).toBe(MAX_SESSIONS_PER_TOKEN);
    const live = async (secret: string) => (await http().get('/v1/session').set(withSession(secret))).status;
    expect(await Promise.all(signedIn.slice(0, 3).map(live))).toEqual([401, 401, 401]);
    expect(await live(signedIn[3]!)).toBe(200);
    expect(await live(signedIn[signedIn.length - 1]!)).toBe(200);
    const ended = (await audit('session.ended')).filter((r) => r.actor === `token:${looping.id}`);
    expect(ended.map((r) => r.details)).toEqual(Array.from({ length: 3 }, () => ({ reason: 'session-limit', limit: MAX_SESSIONS_PER_TOKEN })));
  });

  it('the cookie reads what the token may read; without it, or with a forged one, 401', async () => {
    const { secret, session } = await signIn(tokens.reader.token);
    const list = await http().get('/v1/machines').set(withSession(secret));
    expect([list.status, list.body.map((m: { serial: string }) => m.serial)]).toEqual([200, ['SN-UI-1']]);
    const again = await http().get('/v1/session').set(withSession(secret));
    expect([again.status, again.body.csrfToken, again.body.scopes]).toEqual([200, session.csrfToken, ['inventory:read']]);
    expect((await http().get('/v1/audit').set(withSession(secret))).status).toBe(403);
    expect((await http().get('/v1/machines').set({ Host: HOST })).status).toBe(401);
    expect((await http().get('/v1/machines').set(withSession('A'.repeat(43)))).status).toBe(401);
    expect((await http().get('/v1/audit')).status).toBe(401);
    // An Authorization header wins over the cookie: a bad bearer token is refused whatever the cookie.
    expect((await http().get('/v1/machines').set({ ...withSession(secret), Authorization: 'Bearer nope' })).status).toBe(401);
  });

  it('a state change needs the session\'s CSRF token and a same-host Origin (403 otherwise, nothing done); with both it acts as the token, audited so', async () => {
    const { secret, session } = await signIn(tokens.admin.token);
    const reattests = async () => (await audit('machine.reattest-requested')).length;
    const path = '/v1/machines/SN-UI-1/reattest';
    const noCsrf = await http().post(path).set(withSession(secret));
    expect([noCsrf.status, noCsrf.body.code]).toEqual([403, 'auth.forbidden']);
    expect(noCsrf.body.message).toContain(CSRF_HEADER);
    const forged = await http().post(path).set(withSession(secret, session.csrfToken.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))));
    expect([forged.status, forged.body.code]).toEqual([403, 'auth.forbidden']);
    const otherSession = await signIn(tokens.admin.token);
    expect((await http().post(path).set(withSession(secret, otherSession.session.csrfToken))).status).toBe(403);
    expect((await http().post(path).set(withSession(secret, session.csrfToken, 'https://evil.test'))).status).toBe(403);
    expect((await http().post(path).set({ ...withSession(secret, session.csrfToken), Origin: '' })).status).toBe(403);
    expect(await reattests()).toBe(0);

    const done = await http().post(path).set(withSession(secret, session.csrfToken));
    expect([done.status, done.body.serial]).toEqual([200, 'SN-UI-1']);
    expect((await audit('machine.reattest-requested')).map((r) => r.actor)).toEqual([`token:${tokens.admin.id}`]);
  });

  it('a session without the scope is refused like its token (403), CSRF proof or not', async () => {
    const { secret, session } = await signIn(tokens.reader.token);
    const refused = await http().post('/v1/machines/SN-UI-1/reattest').set(withSession(secret, session.csrfToken));
    expect([refused.status, refused.body.message]).toEqual([403, 'this token lacks the "inventory:write" scope']);
  });

  it('ends when it expires and when its token is revoked', async () => {
    const expiring = await signIn(tokens.reader.token);
    expect((await http().get('/v1/machines').set(withSession(expiring.secret))).status).toBe(200);
    await ds.query("UPDATE operator_sessions SET created_at = now() - interval '9 hours', expires_at = now() - interval '1 second' WHERE session_hash = $1", [
      createHash('sha256').update(expiring.secret).digest(),
    ]);
    expect((await http().get('/v1/machines').set(withSession(expiring.secret))).status).toBe(401);

    const doomed = await app.get(ApiTokens).issue('doomed', ['inventory:read'], 'test');
    const live = await signIn(doomed.token);
    expect((await http().get('/v1/machines').set(withSession(live.secret))).status).toBe(200);
    expect(await app.get(ApiTokens).revoke(doomed.id, 'test')).toBe(true);
    expect((await http().get('/v1/machines').set(withSession(live.secret))).status).toBe(401);
    expect((await http().get('/v1/session').set(withSession(live.secret))).status).toBe(401);
  });

  it('sign-out deletes the session (audited) and clears the cookie; the old cookie is refused after', async () => {
    const { secret, session } = await signIn(tokens.reader.token);
    const withoutCsrf = await http().delete('/v1/session').set(withSession(secret));
    expect(withoutCsrf.status).toBe(403);
    const out = await http().delete('/v1/session').set(withSession(secret, session.csrfToken));
    expect(out.status).toBe(204);
    const cleared = ([] as string[]).concat(out.headers['set-cookie'] ?? [])[0] ?? '';
    expect(cleared.split('; ')).toEqual(expect.arrayContaining([`${SESSION_COOKIE}=`, 'Max-Age=0', 'HttpOnly', 'SameSite=Strict', 'Path=/']));
    const hash = createHash('sha256').update(secret).digest();
    expect(await ds.query('SELECT id FROM operator_sessions WHERE session_hash = $1', [hash])).toEqual([]);
    const ended = await audit('session.ended');
    expect(ended[ended.length - 1]).toMatchObject({ actor: `token:${tokens.reader.id}` });
    expect((await http().get('/v1/machines').set(withSession(secret))).status).toBe(401);
    // The session routes are the cookie's only: a bearer token has no session to show or end.
    const bearerSignOut = await http().delete('/v1/session').set({ Authorization: `Bearer ${tokens.admin.token}` });
    expect([bearerSignOut.status, bearerSignOut.body.code]).toEqual([401, 'auth.unauthenticated']);
    expect((await http().get('/v1/session').set({ Authorization: `Bearer ${tokens.admin.token}` })).status).toBe(401);
  });
});
