import type { Command } from 'commander';
import { withDatabase } from '../database';

/**
 * `rackseal migrate`: applies pending migrations to DATABASE_URL under the advisory lock the control
 * plane and the worker take at boot, so it is safe while they start. What `npm run migrate` does in
 * a checkout, from an installed CLI; for MIGRATIONS_AT_BOOT=false deployments and fresh databases.
 */
export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('apply pending database migrations (uses DATABASE_URL; safe while processes boot)')
    .action(async () => {
      const { runMigrationsUnderLock } = await import('@rackseal/persistence');
      const run = await withDatabase({ schema: 'any' }, (dataSource) => runMigrationsUnderLock(dataSource));
      process.stdout.write(run.applied.length > 0 ? `migrations applied: ${run.applied.join(', ')}\n` : 'schema up to date: no migrations pending\n');
    });
}
