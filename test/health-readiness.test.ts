import type { INestApplication } from '@nestjs/common';
import { AuditLog, integrateBatch } from '@rackseal/audit';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import { createTestDatabase, type TestDatabase } from './support/database';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { PrivateRedis } from './support/redis-server';
import { TcpProxy } from './support/tcp-proxy';
import { testConfig } from './support/test-config';
import { pollUntil } from './support/wait';

interface Readiness {
  status: string;
  postgres: { status: string; reason?: string };
  redis: { status: string; reason?: string };
  audit?: { status: string; pending: number; unsigned: number; lagMs: number };
}

// /health/ready against real dependencies that really go away: a private redis-server that is
// killed and restarted, and PostgreSQL behind a relay that is cut and restored.
describe('/health/ready follows PostgreSQL and Redis', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let redis: PrivateRedis;
  let pgProxy: TcpProxy;
  let app: INestApplication;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    redis = await PrivateRedis.start();
    const pg = new URL(db.url);
    pgProxy = await TcpProxy.start({ host: pg.hostname, port: Number(pg.port || 5432) });
    const config = testConfig({ url: pgProxy.via(db.url) }, prefix.prefix, {
      REDIS_URL: redis.url,
      READINESS_TIMEOUT_MS: '1000',
      LOG_LEVEL: 'silent',
    });
    app = await createControlPlane(config);
    await app.init();
  });

  afterAll(async () => {
    await app?.close();
    await redis?.dispose();
    await pgProxy?.cut();
    await db?.drop();
  });

  async function ready(): Promise<{ status: number; body: Readiness }> {
    const response = await request(app.getHttpServer()).get('/health/ready');
    return { status: response.status, body: response.body as Readiness };
  }

  /** Readiness once it reaches `expected` (dependencies take a moment to be noticed), else the last answer. */
  const readinessBecomes = (expected: number) => pollUntil(ready, (r) => r.status === expected, 20000, 200);

  it('is ready while both answer', async () => {
    const { status, body } = await ready();
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ready', postgres: { status: 'up' }, redis: { status: 'up' } });
  });

  it('turns unavailable when Redis stops and ready again when it is back', async () => {
    await redis.stop();
    const down = await readinessBecomes(503);
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ status: 'unavailable', postgres: { status: 'up' }, redis: { status: 'down' } });
    expect(down.body.redis.reason).toMatch(/refused|unreachable|timed out/);

    await redis.start();
    const back = await readinessBecomes(200);
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ status: 'ready', redis: { status: 'up' } });
  });

  it('turns unavailable when PostgreSQL is unreachable and ready again when it is back', async () => {
    await pgProxy.cut();
    const down = await readinessBecomes(503);
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ status: 'unavailable', postgres: { status: 'down' }, redis: { status: 'up' } });
    // Unauthenticated endpoint: no host names, users or SQL in the reason.
    expect(JSON.stringify(down.body)).not.toMatch(/127\.0\.0\.1|postgres:\/\/|SELECT/);

    await pgProxy.restore();
    const back = await readinessBecomes(200);
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ status: 'ready', postgres: { status: 'up' } });
  });

  it('reports degraded (still 200) with the lag when the audit sequencer falls behind, and /metrics shows it', async () => {
    // No worker runs here: a record appended 5 s ago is still pending, past AUDIT_MAX_MERGE_DELAY_MS (1 s).
    const audit = new AuditLog(app.get(DataSource), { now: () => new Date(Date.now() - 5000) });
    await audit.append({ actor: 'system:test', action: 'test.lagging', subject: '', outcome: 'success', details: {} });
    const { status, body } = await ready();
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'degraded', postgres: { status: 'up' }, redis: { status: 'up' }, audit: { status: 'degraded', pending: 1, maxMergeDelayMs: 1000 } });
    expect(body.audit!.lagMs).toBeGreaterThanOrEqual(5000);
    const metrics = await request(app.getHttpServer()).get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain;.*version=0\.0\.4/);
    expect(metrics.text).toMatch(/^rackseal_audit_pending_records 1$/m);
    expect(Number(/^rackseal_audit_sequencer_lag_seconds (\S+)$/m.exec(metrics.text)?.[1])).toBeGreaterThanOrEqual(5);
    expect(metrics.text).toMatch(/^rackseal_audit_tree_size 0$/m);
  });

  it('stays degraded while sequenced records wait for a signed checkpoint (a stuck signer), and says how many', async () => {
    // The record the previous test left pending is integrated 5 s ago by a sequencer that never signed.
    const session = app.get(DataSource).createQueryRunner();
    try {
      await session.connect();
      expect((await integrateBatch(session, { limit: 100, now: new Date(Date.now() - 5000) })).integrated).toBe(1);
    } finally {
      await session.release();
    }
    const { status, body } = await ready();
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'degraded', audit: { status: 'degraded', pending: 0, unsigned: 1 } });
    expect(body.audit!.lagMs).toBeGreaterThanOrEqual(5000);
    const metrics = await request(app.getHttpServer()).get('/metrics');
    expect(metrics.text).toMatch(/^rackseal_audit_unsigned_records 1$/m);
    expect(Number(/^rackseal_audit_sequencer_lag_seconds (\S+)$/m.exec(metrics.text)?.[1])).toBeGreaterThanOrEqual(5);
  });

  it('stays alive throughout: liveness does not depend on dependencies', async () => {
    await pgProxy.cut();
    await redis.stop();
    const live = await request(app.getHttpServer()).get('/health/live');
    expect(live.status).toBe(200);
    expect(live.body).toEqual({ status: 'alive' });
    await pgProxy.restore();
    await redis.start();
    expect((await readinessBecomes(200)).status).toBe(200);
  });
});
