import { MIGRATIONS } from '../migrations';
import { runMigrationsUnderLock } from '../libs/persistence/src';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { startControlPlane, type RunningProcess } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testEnv } from './support/test-config';

// Two control planes booting together against an empty database: the advisory lock lets exactly
// one of them migrate; the other waits, finds nothing pending, and both serve.
describe('migrations at boot', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  const procs: RunningProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    prefix = createTestQueuePrefix();
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await db.drop();
    await prefix.clear();
  });

  // The lock's session took the pool's only connection and runMigrations waited for a second one:
  // the control plane and worker hung at boot without a log line, the CLI said "timeout exceeded
  // when trying to connect".
  it('migrates a fresh database with DATABASE_POOL_SIZE=1 (one connection for lock and migrations)', async () => {
    const fresh = await createTestDatabase({ migrate: false });
    const ds = await openDataSource(fresh.url, 1);
    try {
      const run = await runMigrationsUnderLock(ds);
      expect(run.applied).toEqual(MIGRATIONS.map((m) => m.name));
      expect((await runMigrationsUnderLock(ds)).applied).toEqual([]);
    } finally {
      await ds.destroy();
      await fresh.drop();
    }
  }, 30_000);

  it('runs each migration exactly once when two control planes start at the same moment', async () => {
    const env = testEnv(db, prefix.prefix);
    const started = await Promise.all([startControlPlane(env), startControlPlane(env)]);
    procs.push(...started.map((s) => s.proc));

    const migrationLogs = started.map(
      ({ proc }) => proc.logs.find((l) => l.context === 'Persistence') as { msg: string; applied: string[] },
    );
    const appliedBy = migrationLogs.filter((l) => l.applied.length > 0);
    expect(appliedBy).toHaveLength(1);
    expect(appliedBy[0]!.applied).toEqual(MIGRATIONS.map((m) => m.name));
    expect(migrationLogs.map((l) => l.msg).sort()).toEqual([`applied ${MIGRATIONS.length} migration(s)`, 'schema up to date']);

    const ds = await openDataSource(db.url);
    try {
      const rows = (await ds.query('SELECT name FROM schema_migrations ORDER BY id')) as { name: string }[];
      expect(rows.map((r) => r.name)).toEqual(MIGRATIONS.map((m) => m.name));
    } finally {
      await ds.destroy();
    }

    for (const { baseUrl } of started) {
      const response = await fetch(`${baseUrl}/health/ready`);
      expect(response.status).toBe(200);
    }
  });
});
