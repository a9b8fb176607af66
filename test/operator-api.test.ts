import type { INestApplication } from '@nestjs/common';
import { hashToken } from '@rackseal/api-tokens';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { runRacksealCli } from './support/cli-runner';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testConfig } from './support/test-config';

// The operator API's front door: bearer tokens (stored hashed), scopes, audit of token changes.
describe('operator API authentication', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let ds: DataSource;
  let adminToken: string;

  const bootstrap = (...args: string[]) => runRacksealCli(['token', 'create', ...args], { env: { DATABASE_URL: db.url } });

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    app = await createControlPlane(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }));
    await app.init();
    ds = await openDataSource(db.url);
    const run = bootstrap('--name', 'admin', '--scope', 'admin');
    expect(run.status).toBe(0);
    adminToken = run.stdout.trim();
  });

  afterAll(async () => {
    await app.close();
    await ds.destroy();
    await db.drop();
    await prefix.clear();
  });

  const http = () => request(app.getHttpServer());

  it('the bootstrap CLI prints a token once, stores only its hash and audits the issuance', async () => {
    expect(adminToken).toMatch(/^rks_[A-Za-z0-9_-]{43}$/);
    const rows = (await ds.query('SELECT name, scopes, token_hash FROM api_tokens')) as { name: string; scopes: string[]; token_hash: Buffer }[];
    expect(rows).toHaveLength(1);
    expect(rows[0]!.token_hash.equals(hashToken(adminToken))).toBe(true);
    const dump = JSON.stringify(await ds.query('SELECT * FROM api_tokens')) + JSON.stringify(await ds.query('SELECT * FROM audit_log'));
    expect(dump).not.toContain(adminToken.slice(4));
    const audit = (await ds.query(`SELECT action, outcome, details FROM audit_log WHERE action = 'token.issued'`)) as unknown[];
    expect(audit).toEqual([{ action: 'token.issued', outcome: 'success', details: { name: 'admin', scopes: ['admin'] } }]);
  });

  it('refuses requests without a valid token with 401 and the same message for every failure', async () => {
    for (const header of [undefined, 'Bearer', 'Basic abc', 'Bearer not-a-token', `Bearer rks_${'A'.repeat(43)}`, `Bearer ${adminToken}x`]) {
      const call = http().get('/v1/audit');
      const response = await (header === undefined ? call : call.set('Authorization', header));
      expect([header, response.status]).toEqual([header, 401]);
      expect(response.body.message).toBe('a valid operator token is required (Authorization: Bearer rks_…)');
      expect(response.headers['www-authenticate']).toBe('Bearer realm="rackseal"');
    }
  });

  it('health stays public', async () => {
    expect((await http().get('/health/live')).status).toBe(200);
  });

  it('issues scoped tokens through the API; a token without the scope gets 403 naming it', async () => {
    const created = await http().post('/v1/tokens').set('Authorization', `Bearer ${adminToken}`).send({ name: 'auditor', scopes: ['audit:read'] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'auditor', scopes: ['audit:read'] });
    const auditor = created.body.token as string;

    const audit = await http().get('/v1/audit?limit=10').set('Authorization', `Bearer ${auditor}`);
    expect(audit.status).toBe(200);
    // The earlier test's 401s are audited too (auth.refused, within the budget: 5 per address).
    const issuances = audit.body.filter((r: { action: string }) => r.action !== 'auth.refused');
    expect(audit.body.filter((r: { action: string }) => r.action === 'auth.refused')).toHaveLength(5);
    expect(issuances.map((r: { action: string }) => r.action)).toEqual(['token.issued', 'token.issued']);
    expect(issuances[1]).toMatchObject({ id: 7, seq: null, actor: expect.stringMatching(/^token:[0-9a-f-]{36}$/), details: { name: 'auditor', scopes: ['audit:read'] } });

    const forbidden = await http().post('/v1/tokens').set('Authorization', `Bearer ${auditor}`).send({ name: 'x', scopes: ['admin'] });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.message).toBe('this token lacks the "admin" scope');
    expect((await ds.query('SELECT count(*)::int AS n FROM api_tokens'))[0].n).toBe(2);

    // The 403 is audited (issue 15: operator auth refusals, budgeted), with the token's id and the missing scope.
    const [refusal] = (await ds.query(`SELECT actor, details FROM audit_log WHERE action = 'auth.refused' AND details->>'reason' = 'forbidden'`)) as { actor: string; details: Record<string, unknown> }[];
    expect(refusal).toMatchObject({ actor: `token:${created.body.id as string}`, details: { reason: 'forbidden', scope: 'admin', method: 'POST', path: '/v1/tokens' } });

    const verify = await http().get('/v1/audit/verify').set('Authorization', `Bearer ${auditor}`);
    // No worker runs here, so nothing is sequenced yet: the tree is empty and every record (2 issued, 6 refusals) is pending.
    expect(verify.body).toMatchObject({ ok: true, records: 0, pending: 8 });
  });

  it('validates token requests: unknown scopes, empty lists and extra fields are 400s and create nothing', async () => {
    const before = (await ds.query('SELECT count(*)::int AS n FROM api_tokens'))[0].n as number;
    for (const body of [{ name: 'x', scopes: ['root'] }, { name: 'x', scopes: [] }, { name: '', scopes: ['admin'] }, { name: 'x', scopes: ['admin'], extra: 1 }]) {
      const response = await http().post('/v1/tokens').set('Authorization', `Bearer ${adminToken}`).send(body);
      expect([body, response.status]).toEqual([body, 400]);
    }
    expect((await ds.query('SELECT count(*)::int AS n FROM api_tokens'))[0].n).toBe(before);
  });

  it('revokes a token: it stops working at once, and revoking twice is a 404', async () => {
    const created = await http().post('/v1/tokens').set('Authorization', `Bearer ${adminToken}`).send({ name: 'temp', scopes: ['audit:read'] });
    const { id, token } = created.body as { id: string; token: string };
    expect((await http().get('/v1/audit').set('Authorization', `Bearer ${token}`)).status).toBe(200);
    expect((await http().delete(`/v1/tokens/${id}`).set('Authorization', `Bearer ${adminToken}`)).status).toBe(204);
    expect((await http().get('/v1/audit').set('Authorization', `Bearer ${token}`)).status).toBe(401);
    const again = await http().delete(`/v1/tokens/${id}`).set('Authorization', `Bearer ${adminToken}`);
    expect(again.status).toBe(404);
    expect(again.body).toEqual({ statusCode: 404, error: 'Not Found', code: 'token.not-found', message: `no active token ${id}`, requestId: expect.any(String) });
    const notAUuid = await http().delete('/v1/tokens/not-a-uuid').set('Authorization', `Bearer ${adminToken}`);
    expect(notAUuid.status).toBe(400);
    expect(notAUuid.body.code).toBe('request.invalid');
    const list = await http().get('/v1/tokens').set('Authorization', `Bearer ${adminToken}`);
    expect(list.body.find((t: { id: string }) => t.id === id)).toMatchObject({ name: 'temp', revokedAt: expect.any(String) });
    expect(JSON.stringify(list.body)).not.toMatch(/token_?[hH]ash|rks_/);
  });

  it('the bootstrap CLI refuses unknown scopes with exit 2 and issues nothing', async () => {
    const before = (await ds.query('SELECT count(*)::int AS n FROM api_tokens'))[0].n as number;
    const run = bootstrap('--name', 'x', '--scope', 'everything');
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/^rackseal: unknown scope\(s\): everything \(known: admin, audit:read/);
    expect(run.stdout).toBe('');
    expect((await ds.query('SELECT count(*)::int AS n FROM api_tokens'))[0].n).toBe(before);
  });
  describe('issue 9: bad input is a 400 naming the field, never a 500', () => {
    const admin = () => ({ Authorization: `Bearer ${adminToken}` });
    const counts = async () =>
      (await ds.query(`SELECT (SELECT count(*)::int FROM api_tokens) AS tokens, (SELECT count(*)::int FROM audit_log) AS audit`))[0] as { tokens: number; audit: number };

    it('refuses a NUL byte in ?after= of /v1/machines (item 4)', async () => {
      const res = await http().get('/v1/machines?after=a%00b').set(admin());
      expect(res.status).toBe(400);
      expect(res.body.message).toEqual(['after must not contain NUL bytes']);
    });

    it('refuses control characters in ?after= of /v1/machines', async () => {
      const res = await http().get('/v1/machines?after=a%1B%5B2J').set(admin());
      expect(res.status).toBe(400);
      expect(res.body.message).toEqual(['after must not contain control characters (found U+001B)']);
    });

    it.each([
      ['a NUL byte', 'a\u0000b', 'name must not contain NUL bytes'],
      ['an ANSI escape', 'ci\u001b[2J\u001b[31mroot', 'name must not contain control characters (found U+001B)'],
      ['a newline', 'ci\nissued token for root', 'name must not contain control characters (found U+000A)'],
      ['a carriage return', 'ci\rroot', 'name must not contain control characters (found U+000D)'],
      ['a C1 CSI', 'ci\u009b2J', 'name must not contain control characters (found U+009B)'],
      ['a bidi override', 'ci\u202eexe.txt', 'name must not contain control characters (found U+202E)'],
      ['a zero-width space (adm\u200bin passing for admin)', 'adm\u200bin', 'name must not contain control characters (found U+200B)'],
      ['only blanks', '   ', 'name must not be blank'],
    ])('refuses a token name with %s (items 4 and 8): 400 naming it, nothing stored or audited', async (_label, name, message) => {
      const before = await counts();
      const res = await http().post('/v1/tokens').set(admin()).send({ name, scopes: ['audit:read'] });
      expect(res.status).toBe(400);
      expect(res.body.message).toEqual([message]);
      expect(await counts()).toEqual(before);
    });

    it('the bootstrap CLI refuses a control character in the name (libs/api-tokens), exit 2, nothing issued', async () => {
      const before = await counts();
      const run = bootstrap('--name', 'evil\u001b]0;pwned\u0007', '--scope', 'admin');
      expect(run.status).toBe(2);
      expect(run.stderr).toBe('rackseal: token name must not contain control characters (found U+001B)\n');
      expect(run.stdout).toBe('');
      expect(await counts()).toEqual(before);
    });

    it.each(['/v1/tokens', '/v1/vendor-cas'])('refuses JSON nested 100,000 deep on %s with a 400 (item 5)', async (path) => {
      const before = await counts();
      const res = await http()
        .post(path)
        .set(admin())
        .set('Content-Type', 'application/json')
        .send(`{"name":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
      expect(res.status).toBe(400);
      expect(res.body.message).toBe('request body nests too deep (at most 32 levels of arrays and objects)');
      expect(await counts()).toEqual(before);
      expect((await http().get('/health/ready')).status).toBe(200);
    });

    it.each([
      ['9223372036854775807', 'after'],
      ['1e20', 'after'],
      ['-1', 'after'],
      ['NaN', 'after'],
      ['0x10', 'after'],
      ['', 'after'],
      ['9007199254740992', 'after'],
    ])('refuses ?after=%s on /v1/audit with a 400 naming after (item 6)', async (value, field) => {
      const res = await http().get(`/v1/audit?after=${encodeURIComponent(value)}`).set(admin());
      expect(res.status).toBe(400);
      expect(res.body.message).toEqual([`${field} must be an integer from 0 to 9007199254740991`]);
    });

    it.each([
      ['/v1/audit?limit=1001', 'limit must be an integer from 1 to 1000'],
      ['/v1/audit?limit=0', 'limit must be an integer from 1 to 1000'],
      ['/v1/audit?limit=1e2', 'limit must be an integer from 1 to 1000'],
      ['/v1/machines?limit=9223372036854775807', 'limit must be an integer from 1 to 1000'],
      ['/v1/machines?limit=-1', 'limit must be an integer from 1 to 1000'],
    ])('bounds every numeric query parameter: %s', async (path, message) => {
      const res = await http().get(path).set(admin());
      expect(res.status).toBe(400);
      expect(res.body.message).toEqual([message]);
    });

    it('still pages with plain integers', async () => {
      const res = await http().get('/v1/audit?after=9007199254740991&limit=1000').set(admin());
      expect([res.status, res.body]).toEqual([200, []]);
      expect((await http().get('/v1/audit?after=0&limit=1').set(admin())).body).toHaveLength(1);
    });

    it.each([
      ['lowercase', (t: string) => `bearer ${t}`],
      ['uppercase', (t: string) => `BEARER ${t}`],
      ['several spaces', (t: string) => `Bearer    ${t}`],
      ['surrounding whitespace', (t: string) => ` \tBearer ${t}\t `],
    ])('accepts the Bearer scheme %s (RFC 9110 §11.1, item 9)', async (_label, header) => {
      const res = await http().get('/v1/audit?limit=1').set('Authorization', header(adminToken));
      expect(res.status).toBe(200);
    });

    it.each([
      ['no space', (t: string) => `Bearer${t}`],
      ['a tab instead of a space', (t: string) => `Bearer\t${t}`],
      ['another scheme', (t: string) => `Token ${t}`],
      ['two tokens', (t: string) => `Bearer ${t} ${t}`],
    ])('still refuses a malformed credential: %s', async (_label, header) => {
      const res = await http().get('/v1/audit?limit=1').set('Authorization', header(adminToken));
      expect(res.status).toBe(401);
    });

    it.each([
      ['POST', '/v1/tokens'],
      ['POST', '/v1/vendor-cas'],
      ['PATCH', `/v1/vendor-cas/${'ab'.repeat(32)}`],
    ])('answers 415 naming application/json to a text/plain body on %s %s', async (method, path) => {
      const before = await counts();
      const res = await http()[method === 'POST' ? 'post' : 'patch'](path).set(admin()).set('Content-Type', 'text/plain').send('name=x');
      expect(res.status).toBe(415);
      expect(res.body.message).toBe('send the request body as Content-Type: application/json');
      expect(await counts()).toEqual(before);
    });

    it('authentication comes before the 415: no token, 401', async () => {
      const res = await http().post('/v1/tokens').set('Content-Type', 'text/plain').send('x');
      expect(res.status).toBe(401);
    });

    it('answers 503 with Retry-After, not 500, when no pool connection frees up', async () => {
      // A control plane with a pool of one; a token request takes that connection and blocks on a
      // lock this test holds on audit_log, so the next request cannot get a connection.
      const small = await createControlPlane(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent', DATABASE_POOL_SIZE: '1', READINESS_TIMEOUT_MS: '1000', MIGRATIONS_AT_BOOT: 'false' }));
      await small.init();
      const locker = ds.createQueryRunner();
      await locker.connect();
      try {
        await locker.startTransaction();
        await locker.query('LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
        const blocked = request(small.getHttpServer()).post('/v1/tokens').set(admin()).send({ name: 'blocked', scopes: ['audit:read'] }).then((r) => r);
        const waitingOnLock = async () =>
          ((await ds.query(`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND relation = 'audit_log'::regclass`)) as { n: number }[])[0]!.n;
        while ((await waitingOnLock()) === 0) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const starved = await request(small.getHttpServer()).get('/v1/audit?limit=1').set(admin());
        expect(starved.status).toBe(503);
        expect(starved.headers['retry-after']).toBe('2');
        expect(starved.body).toEqual({
          statusCode: 503,
          error: 'Service Unavailable',
          code: 'database.unavailable',
          message: 'the database cannot take this request now; retry in 2 seconds',
          requestId: expect.any(String),
        });
        await locker.commitTransaction();
        expect((await blocked).status).toBe(201);
        expect((await request(small.getHttpServer()).get('/v1/audit?limit=1').set(admin())).status).toBe(200);
      } finally {
        if (locker.isTransactionActive) {
          await locker.rollbackTransaction();
        }
        await locker.release();
        await small.close();
      }
    });

    it('the CSV import keeps its own Content-Type check (text/csv)', async () => {
      const res = await http().post('/v1/inventory/imports').set(admin()).set('Content-Type', 'application/json').send('{}');
      expect(res.status).toBe(415);
      expect(res.body.message).toBe('send the inventory as Content-Type: text/csv');
    });
  });
});
