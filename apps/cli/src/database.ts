import type { DataSource, DataSourceOptions } from 'typeorm';
import { CliError } from '@rackseal/command-line';

/**
 * What a database command needs of the schema:
 *   - `migrate`: apply pending migrations first, under the advisory lock the processes use (the
 *     bootstrap `token create` on a fresh database), unless MIGRATIONS_AT_BOOT=false says the
 *     operator migrates as a separate step — then refuse like `current`;
 *   - `current`: refuse a database with pending migrations (`audit verify` reads, never writes);
 *   - `any`: the command migrates itself (`rackseal migrate`).
 */
export type SchemaNeed = 'migrate' | 'current' | 'any';

/** What to run to migrate, in an installed CLI and in a checkout. */
export const MIGRATE_HINT = 'run `rackseal migrate` (or `npm run migrate` in a checkout) first';

/**
 * Opens PostgreSQL from DATABASE_URL for one CLI command, checks the schema as `schema` asks, runs
 * `use` and closes the connection. Only the database variables are validated (RACKSEAL_ENV,
 * DATABASE_URL, DATABASE_POOL_SIZE, MIGRATIONS_AT_BOOT, READINESS_TIMEOUT_MS): a command that never
 * touches secrets must not demand RACKSEAL_MASTER_KEY. Every problem is a CliError with exit 2.
 */
export async function withDatabase<T>(
  options: { schema: SchemaNeed; entities?: DataSourceOptions['entities'] },
  use: (dataSource: DataSource) => Promise<T>,
): Promise<T> {
  // Loaded here, not at the top: Nest, TypeORM and pg take ~0.4 s to load, which every offline TPM
  // command of this CLI would otherwise pay.
  await import('reflect-metadata');
  const [{ ConfigError, loadConfigSections }, { dataSourceOptions, pendingMigrations, runMigrationsUnderLock }, typeorm] = await Promise.all([
    import('@rackseal/config'),
    import('@rackseal/persistence'),
    import('typeorm'),
  ]);
  let config;
  try {
    config = loadConfigSections(process.env, ['database', 'readinessTimeoutMs']);
  } catch (error) {
    throw CliError.usage(error instanceof ConfigError ? error.message : String(error));
  }
  let dataSource: DataSource;
  try {
    dataSource = await new typeorm.DataSource({
      ...dataSourceOptions(config, 'rackseal-cli'),
      ...(options.entities === undefined ? {} : { entities: options.entities }),
    }).initialize();
  } catch (error) {
    throw CliError.usage(`cannot connect to PostgreSQL: ${(error as Error).message}`);
  }
  try {
    if (options.schema !== 'any') {
      const pending = await pendingMigrations(dataSource);
      if (pending.length > 0) {
        if (options.schema === 'migrate' && config.database.migrationsAtBoot) {
          const run = await runMigrationsUnderLock(dataSource);
          if (run.applied.length > 0) {
            process.stderr.write(`migrated the database first: applied ${run.applied.length} migration(s) (${run.applied.join(', ')})\n`);
          }
        } else {
          const why = options.schema === 'migrate' ? ' (MIGRATIONS_AT_BOOT=false: migrations are a separate step here)' : '';
          throw CliError.usage(`the database is not migrated: ${pending.length} migration(s) pending${why}; ${MIGRATE_HINT}`);
        }
      }
    }
    return await use(dataSource);
  } finally {
    await dataSource.destroy();
  }
}
