import { withAdmin } from '../../demo/support/scratch-database';

// Deliberately free of @rackseal/* imports (demo/support/scratch-database.ts too): jest's globalSetup
// runs without the module name mapper.

export const TEST_DATABASE_PREFIX = 'rackseal_test_';

/** Drops test databases older than an hour: leftovers of runs that were killed mid-way. */
export async function sweepStaleTestDatabases(adminUrl: string, now = Date.now()): Promise<string[]> {
  return withAdmin(adminUrl, async (client) => {
    const result = await client.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE '${TEST_DATABASE_PREFIX}%'`,
    );
    const stale = result.rows
      .map((r) => r.datname)
      .filter((n) => {
        const created = Number(n.slice(TEST_DATABASE_PREFIX.length).split('_')[0]);
        return Number.isFinite(created) && now - created > 3600_000;
      });
    for (const name of stale) {
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
    return stale;
  });
}
