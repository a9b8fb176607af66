import type { INestApplication } from '@nestjs/common';
import { hashToken } from '@rackseal/api-tokens';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { DIST } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testConfig } from './support/test-config';

// The operator API's front door: bearer tokens (stored hashed), scopes, audit of token changes.
describe('operator API authentication', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let ds: DataSource;
  let adminToken: string;

  const bootstrap = (...args: string[]) =>
    spawnSync(process.execPath, [join(DIST, 'apps/cli/src/main.js'), 'token', 'create', ...args], {
      env: { PATH: process.env.PATH, DATABASE_URL: db.url },
      encoding: 'utf8',
    });

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
    expect(audit.body.map((r: { action: string }) => r.action)).toEqual(['token.issued', 'token.issued']);
    expect(audit.body[1]).toMatchObject({ seq: 2, actor: expect.stringMatching(/^token:[0-9a-f-]{36}$/), details: { name: 'auditor', scopes: ['audit:read'] } });

    const forbidden = await http().post('/v1/tokens').set('Authorization', `Bearer ${auditor}`).send({ name: 'x', scopes: ['admin'] });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.message).toBe('this token lacks the "admin" scope');
    expect((await ds.query('SELECT count(*)::int AS n FROM api_tokens'))[0].n).toBe(2);

    const verify = await http().get('/v1/audit/verify').set('Authorization', `Bearer ${auditor}`);
    expect(verify.body).toMatchObject({ ok: true, records: 2 });
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
    expect((await http().delete(`/v1/tokens/${id}`).set('Authorization', `Bearer ${adminToken}`)).status).toBe(404);
    expect((await http().delete('/v1/tokens/not-a-uuid').set('Authorization', `Bearer ${adminToken}`)).status).toBe(400);
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
});
