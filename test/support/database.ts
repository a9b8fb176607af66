import { randomBytes } from 'node:crypto';
import { loadConfig } from '@rackseal/config';
import { dataSourceOptions, runMigrationsUnderLock } from '@rackseal/persistence';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { testServices } from './services';

export const TEST_DATABASE_PREFIX = 'rackseal_test_';

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** Drops the database, disconnecting whoever still holds it. */
  drop(): Promise<void>;
}

async function withAdmin<T>(adminUrl: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * A database of its own for one test file: created empty, optionally migrated with the real
 * migrations, dropped afterwards. Its name carries the creation time so the global setup can sweep
 * databases left behind by a run that was killed.
 */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const { adminDatabaseUrl } = testServices();
  const name = `${TEST_DATABASE_PREFIX}${Date.now()}_${randomBytes(4).toString('hex')}`;
  await withAdmin(adminDatabaseUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminDatabaseUrl);
  url.pathname = `/${name}`;
  const database: TestDatabase = {
    name,
    url: url.toString(),
    drop: () => withAdmin(adminDatabaseUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
  if (options.migrate !== false) {
    const dataSource = await openDataSource(database.url);
    try {
      await runMigrationsUnderLock(dataSource);
    } finally {
      await dataSource.destroy();
    }
  }
  return database;
}

/** A plain TypeORM DataSource on a test database, configured exactly like the services'. */
export async function openDataSource(url: string, poolSize = 5): Promise<DataSource> {
  const config = loadConfig({ RACKSEAL_ENV: 'test', DATABASE_URL: url, DATABASE_POOL_SIZE: String(poolSize) });
  return new DataSource(dataSourceOptions(config, 'rackseal-test')).initialize();
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
