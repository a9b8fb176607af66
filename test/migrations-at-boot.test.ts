import { MIGRATIONS } from '../migrations';
import { runMigrationsUnderLock } from '@rackseal/persistence';
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

  it('migrates through a pool of one connection (the lock session runs the migrations)', async () => {
    const single = await createTestDatabase({ migrate: false });
    const ds = await openDataSource(single.url, 1);
    try {
      // Before the fix the migrations waited for a second connection the one-connection pool
      // could never give while the lock session held it: the race below then said 'deadlocked'.
      const outcome = await Promise.race([
        runMigrationsUnderLock(ds).then((run) => run.applied),
        new Promise<string>((resolve) => setTimeout(() => resolve('deadlocked'), 30_000).unref()),
      ]);
      expect(outcome).toEqual(MIGRATIONS.map((m) => m.name));
      const rows = (await ds.query('SELECT name FROM schema_migrations ORDER BY id')) as { name: string }[];
      expect(rows.map((r) => r.name)).toEqual(MIGRATIONS.map((m) => m.name));
      const [{ locks }] = (await ds.query(`SELECT count(*)::int AS locks FROM pg_locks WHERE locktype = 'advisory'`)) as [{ locks: number }];
      expect(locks).toBe(0);
      expect((await runMigrationsUnderLock(ds)).applied).toEqual([]);
    } finally {
      await ds.destroy();
      await single.drop();
    }
  });
});
