import type { RacksealConfig } from '@rackseal/config';
import { DataSource, MigrationExecutor } from 'typeorm';
import { dataSourceOptions } from './data-source-options';

/**
 * Key of the session-level advisory lock that serializes migration runs. Two 32-bit halves, so it
 * cannot collide with single-bigint locks: 'rack' and 'migr' in ASCII.
 */
export const MIGRATION_LOCK_KEY = [0x7261636b, 0x6d696772] as const;

export interface MigrationRun {
  readonly applied: readonly string[];
  readonly waitedForLockMs: number;
}

/**
 * Runs pending migrations while holding a PostgreSQL advisory lock, so any number of replicas may
 * boot together: the first one migrates, the others wait on the lock and then find nothing pending.
 * Each migration runs in its own transaction; a failing one rolls back alone and stops the run.
 */
export async function runMigrationsUnderLock(
  dataSource: DataSource,
  now: () => number = Date.now,
): Promise<MigrationRun> {
  // The lock belongs to one database session; a dedicated query runner pins that session.
  const lockSession = dataSource.createQueryRunner();
  await lockSession.connect();
  const started = now();
  try {
    await lockSession.query('SELECT pg_advisory_lock($1, $2)', [...MIGRATION_LOCK_KEY]);
    const waitedForLockMs = now() - started;
    // The migrations run on the session that holds the lock, not on a second pooled connection:
    // with DATABASE_POOL_SIZE=1 a second connection would wait for the lock holder forever.
    const executor = new MigrationExecutor(dataSource, lockSession);
    executor.transaction = 'each';
    const migrations = await executor.executePendingMigrations();
    return { applied: migrations.map((m) => m.name), waitedForLockMs };
  } finally {
    try {
      await lockSession.query('SELECT pg_advisory_unlock($1, $2)', [...MIGRATION_LOCK_KEY]);
    } finally {
      await lockSession.release();
    }
  }
}

/**
 * The names of the migrations this build knows that the database has not applied yet, in order;
 * every one of them on a fresh database. Read-only: creates nothing, takes no lock.
 */
export async function pendingMigrations(dataSource: DataSource): Promise<string[]> {
  const pending = await new MigrationExecutor(dataSource).getPendingMigrations();
  return pending.map((m) => m.name);
}

/**
 * `npm run migrate` and any one-off process: opens its own connection, runs the pending migrations
 * under the advisory lock (like boot does) and closes it.
 */
export async function migrateDatabase(
  config: Pick<RacksealConfig, 'database' | 'readinessTimeoutMs'>,
  applicationName: string,
): Promise<MigrationRun> {
  const dataSource = await new DataSource(dataSourceOptions(config, applicationName)).initialize();
  try {
    return await runMigrationsUnderLock(dataSource);
  } finally {
    await dataSource.destroy();
  }
}
