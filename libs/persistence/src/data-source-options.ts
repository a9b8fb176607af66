import type { RacksealConfig } from '@rackseal/config';
import type { DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from '../../../migrations';

export const MIGRATIONS_TABLE = 'schema_migrations';

/**
 * The one place TypeORM options are decided, from the validated config only. Migrations are listed
 * explicitly (no glob over dist/ or src/), and `synchronize` is never on: the schema changes only
 * through reviewed migrations.
 */
export function dataSourceOptions(
  config: Pick<RacksealConfig, 'database' | 'readinessTimeoutMs'>,
  applicationName: string,
): DataSourceOptions {
  return {
    type: 'postgres',
    url: config.database.url,
    synchronize: false,
    migrationsRun: false,
    migrations: MIGRATIONS,
    migrationsTableName: MIGRATIONS_TABLE,
    migrationsTransactionMode: 'each',
    logging: false,
    applicationName,
    extra: {
      max: config.database.poolSize,
      // Without a bound, a query issued while PostgreSQL is unreachable waits forever for a connection.
      connectionTimeoutMillis: Math.max(config.readinessTimeoutMs, 1000),
    },
  };
}
