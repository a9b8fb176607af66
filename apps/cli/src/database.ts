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
 * touches secrets must not demand RACKSEAL_MASTER_KEY.
 *
 * The one way database commands (`token create`, `audit verify`, `migrate`) fail: every problem —
 * settings, connecting, migrations, a query — is a CliError with exit 2 saying `PostgreSQL
 * <user@host:port/database>: <problem>` (the settings: `database settings: <VARIABLE>: <problem>`),
 * never a stack trace and never the password. A CliError thrown by `use` (a refused token name) is the
 * command's own answer and passes as it is.
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
    if (error instanceof ConfigError) {
      throw CliError.usage(`database settings: ${error.problems.map((p) => `${p.variable}: ${p.reason}`).join('; ')}`);
    }
    throw error;
  }
  const problem = databaseProblem(config.database.url);
  let dataSource: DataSource;
  try {
    dataSource = await new typeorm.DataSource({
      ...dataSourceOptions(config, 'rackseal-cli'),
      ...(options.entities === undefined ? {} : { entities: options.entities }),
    }).initialize();
  } catch (error) {
    throw problem('cannot connect', error);
  }
  try {
    if (options.schema !== 'any') {
      const pending = await pendingMigrations(dataSource).catch((error: unknown) => {
        throw problem('cannot read the applied migrations', error);
      });
      if (pending.length > 0) {
        if (options.schema === 'migrate' && config.database.migrationsAtBoot) {
          const run = await runMigrationsUnderLock(dataSource).catch((error: unknown) => {
            throw problem('migrating failed', error);
          });
          if (run.applied.length > 0) {
            process.stderr.write(`migrated the database first: applied ${run.applied.length} migration(s) (${run.applied.join(', ')})\n`);
          }
        } else {
          const why = options.schema === 'migrate' ? ' (MIGRATIONS_AT_BOOT=false: migrations are a separate step here)' : '';
          throw problem(`the database is not migrated: ${pending.length} migration(s) pending${why}; ${MIGRATE_HINT}`);
        }
      }
    }
    return await use(dataSource).catch((error: unknown) => {
      throw error instanceof CliError ? error : problem('the command failed', error);
    });
  } finally {
    // A failure to close (the server went away) must not hide why the command ended.
    await dataSource.destroy().catch(() => undefined);
  }
}

/**
 * Builds the CliErrors of one database: `PostgreSQL ops@db1:5432/rackseal: <what>[: <cause>]`. The
 * target is rebuilt from the URL's parts — user, host, port, database — so neither the password nor
 * query parameters (which may carry one) are shown; the password is also masked should a driver
 * message ever quote it.
 */
export function databaseProblem(databaseUrl: string): (what: string, cause?: unknown) => CliError {
  const url = new URL(databaseUrl);
  const password = decodeURIComponent(url.password);
  const user = url.username === '' ? '' : `${decodeURIComponent(url.username)}@`;
  const target = `${user}${url.hostname === '' ? 'localhost' : url.hostname}:${url.port === '' ? '5432' : url.port}${url.pathname}`;
  const masked = (text: string): string => (password === '' ? text : text.split(password).join('***'));
  return (what, cause) => {
    const because = cause === undefined ? '' : `: ${cause instanceof Error ? cause.message : String(cause)}`;
    return CliError.usage(masked(`PostgreSQL ${target}: ${what}${because}`));
  };
}
