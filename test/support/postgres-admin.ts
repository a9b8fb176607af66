import { Client } from 'pg';

// Deliberately free of @rackseal/* imports: jest's globalSetup runs without the module name mapper.

export const TEST_DATABASE_PREFIX = 'rackseal_test_';

export async function withAdmin<T>(adminUrl: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

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
