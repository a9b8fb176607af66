import type { Command } from 'commander';
import type { DataSource } from 'typeorm';
import { CliError } from '../cli-error';

/**
 * `rackseal token create --name NAME --scope SCOPE…`: issues an operator token straight in
 * PostgreSQL (DATABASE_URL). This is how the first admin token of a deployment is made, by someone
 * who can reach the database; later tokens are issued through POST /v1/tokens. The token is printed
 * once on stdout; only its hash is stored. The issuance is an audit record.
 */
export function registerTokenCreate(program: Command): void {
  const token = program.command('token').description('operator token bootstrap (talks to PostgreSQL directly)');
  token
    .command('create')
    .description('issue an operator token directly in the database (uses DATABASE_URL); prints it once')
    .requiredOption('--name <name>', 'what the token is for, e.g. "admin" or "inventory-importer"')
    .requiredOption('--scope <scope...>', 'scopes to grant, e.g. admin, inventory:write')
    .action(async (options: { name: string; scope: string[] }) => {
      // Loaded here: Nest, TypeORM and pg would slow every offline command of this CLI.
      await import('reflect-metadata');
      const [{ ConfigError, loadConfig }, { AuditLog }, { ApiTokens, ApiTokenEntity, InvalidScopeError, ALL_SCOPES }, { dataSourceOptions }, platform, typeorm] = await Promise.all([
        import('@rackseal/config'),
        import('@rackseal/audit'),
        import('@rackseal/api-tokens'),
        import('@rackseal/persistence'),
        import('@rackseal/platform'),
        import('typeorm'),
      ]);
      let config;
      try {
        config = loadConfig({ ...process.env, RACKSEAL_ENV: process.env.RACKSEAL_ENV ?? 'demo' });
      } catch (error) {
        throw CliError.usage(error instanceof ConfigError ? error.message : String(error));
      }
      let dataSource: DataSource;
      try {
        dataSource = await new typeorm.DataSource({ ...dataSourceOptions(config, 'rackseal-cli'), entities: [ApiTokenEntity] }).initialize();
      } catch (error) {
        throw CliError.usage(`cannot connect to PostgreSQL: ${(error as Error).message}`);
      }
      try {
        const clock = new platform.SystemClock();
        const tokens = new ApiTokens(dataSource, new AuditLog(dataSource, clock), clock, new platform.CryptoRandomSource());
        const issued = await tokens.issue(options.name, options.scope, `cli:${process.env.USER ?? 'unknown'}`).catch((error: unknown) => {
          if (error instanceof InvalidScopeError) {
            throw CliError.usage(`${error.message} (known: ${ALL_SCOPES.join(', ')})`);
          }
          throw error;
        });
        process.stdout.write(`${issued.token}\n`);
        process.stderr.write(`issued token ${issued.id} "${issued.name}" with scopes ${issued.scopes.join(', ')}; it is shown only once\n`);
      } finally {
        await dataSource.destroy();
      }
    });
}
