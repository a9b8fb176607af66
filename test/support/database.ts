import { loadConfig } from '@rackseal/config';
import { dataSourceOptions, runMigrationsUnderLock } from '@rackseal/persistence';
import { DataSource } from 'typeorm';
import { testServices } from './services';
import { createScratchDatabase } from '../../demo/support/scratch-database';
import { TEST_DATABASE_PREFIX } from './postgres-admin';

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** Drops the database, disconnecting whoever still holds it. */
  drop(): Promise<void>;
}

/**
 * A database of its own for one test file: created empty, optionally migrated with the real
 * migrations, dropped afterwards; on the shared server unless `adminUrl` names another (a private
 * server a test stops). Its name carries the creation time so the global setup can sweep
 * databases left behind by a run that was killed.
 */
export async function createTestDatabase(options: { migrate?: boolean; adminUrl?: string } = {}): Promise<TestDatabase> {
  const database = await createScratchDatabase(options.adminUrl ?? testServices().adminDatabaseUrl, TEST_DATABASE_PREFIX);
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

/**
 * Runs SQL as a database superuser who switched the append-only triggers off (replica mode): the
 * tampering the audit chain must detect, and the reset between tests that only such a user can do.
 */
export async function asSuperuser(ds: DataSource, sql: string, params: unknown[] = []): Promise<void> {
  await ds.transaction(async (m) => {
    await m.query('SET LOCAL session_replication_role = replica');
    await m.query(sql, params);
  });
}

/**
 * Empties the audit log between tests of one file: records, tree nodes and checkpoints go, the tree
 * head goes back to the empty tree (size 0, root SHA-256 of the empty string, RFC 9162 §2.1.1);
 * signing keys stay, as a deployment's do.
 */
export async function resetAuditLog(ds: DataSource): Promise<void> {
  await asSuperuser(ds, 'DELETE FROM audit_log');
  await asSuperuser(ds, 'DELETE FROM audit_tree_nodes');
  await asSuperuser(ds, 'DELETE FROM audit_checkpoints');
  await asSuperuser(ds, `UPDATE audit_tree_head SET size = 0, root = sha256(''::bytea), updated_at = now() WHERE id = 1`);
  await asSuperuser(ds, `UPDATE audit_chain_head SET seq = 0, hash = decode(repeat('00', 32), 'hex')`);
}
