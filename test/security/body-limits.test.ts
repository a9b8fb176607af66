/**
 * The per-route body limits (issue 15 item 3, apps/control-plane/src/hardening/body-limits.ts): each
 * listed route takes a body just under its limit (then answers whatever the body deserves) and
 * refuses one byte more with 413 request.too-large, before authentication for the node API's
 * routes and after it for the deferred policy body; unlisted routes keep the 1 MiB default. The
 * table is the one docs/guide/hardening.md shows.
 */
import type { INestApplication } from '@nestjs/common';
import { ApiTokens } from '@rackseal/api-tokens';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { createControlPlane } from '../../apps/control-plane/src/create-control-plane';
import { DEFAULT_JSON_BODY_LIMIT_BYTES, ROUTE_BODY_LIMITS } from '../../apps/control-plane/src/hardening/body-limits';
import { JSON_BODY_LIMIT } from '../../apps/control-plane/src/http/configure-http-app';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { createTestQueuePrefix, type TestQueuePrefix } from '../support/redis';
import { testConfig } from '../support/test-config';

/** A JSON object of exactly `bytes` bytes: `{"pad":"xxx…"}`. */
function jsonOfSize(bytes: number): string {
  const overhead = '{"pad":""}'.length;
  return `{"pad":"${'x'.repeat(bytes - overhead)}"}`;
}

/** A concrete path for a route pattern. */
const concrete = (path: string): string => path.replace(':id', '6b0d3e4c-2f5e-4c1e-9a51-8d1f0c7a2b33').replace(':group', 'workers');

describe('body limits per route', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let admin: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    app = await createControlPlane(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }));
    await app.init();
    admin = (await app.get(ApiTokens).issue('admin', ['admin'], 'test')).token;
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
    await prefix?.clear();
  });

  const send = (method: 'POST' | 'PUT', path: string, body: string, token?: string) => {
    const call = request(app.getHttpServer())[method === 'POST' ? 'post' : 'put'](path).set('Content-Type', 'application/json');
    return (token === undefined ? call : call.set('Authorization', `Bearer ${token}`)).send(body);
  };

  it('the default is the general parser\'s 1 MiB', () => {
    expect([JSON_BODY_LIMIT, DEFAULT_JSON_BODY_LIMIT_BYTES]).toEqual(['1mb', 1024 * 1024]);
  });

  it.each(ROUTE_BODY_LIMITS.filter((r) => r.reading !== 'stream').map((r) => [`${r.method} ${r.path}`, r] as const))('%s: at its limit read, one byte over 413 request.too-large', async (_label, route) => {
    const path = concrete(route.path);
    // The policy body is read after the bearer guard: the operator's token goes with it.
    const token = route.reading === 'deferred' ? admin : undefined;
    const at = await send(route.method, path, jsonOfSize(route.limitBytes!), token);
    expect({ path, status: at.status, code: at.body.code }).not.toEqual({ path, status: 413, code: 'request.too-large' });
    expect(at.status).toBeLessThan(500);
    const over = await send(route.method, path, jsonOfSize(route.limitBytes! + 1), token);
    expect({ path, status: over.status, code: over.body.code }).toEqual({ path, status: 413, code: 'request.too-large' });
  });

  it('a route not in the table takes the default: 1 MiB read, one byte more 413', async () => {
    const at = await send('POST', '/v1/tokens', jsonOfSize(DEFAULT_JSON_BODY_LIMIT_BYTES), admin);
    expect([at.status, at.body.code]).toEqual([400, 'request.invalid']);
    const over = await send('POST', '/v1/tokens', jsonOfSize(DEFAULT_JSON_BODY_LIMIT_BYTES + 1), admin);
    expect([over.status, over.body.code]).toEqual([413, 'request.too-large']);
  });

  it('docs/guide/hardening.md lists every route of the table with its limit', () => {
    const guide = readFileSync(join(__dirname, '..', '..', 'docs', 'guide', 'hardening.md'), 'utf8');
    for (const route of ROUTE_BODY_LIMITS) {
      const limit = route.limitBytes === undefined ? 'INVENTORY_MAX_FILE_BYTES' : String(route.limitBytes);
      expect({ route: `${route.method} ${route.path}`, listed: guide.includes(`| \`${route.method} ${route.path}\` | ${limit} |`) }).toEqual({ route: `${route.method} ${route.path}`, listed: true });
    }
  });
});
