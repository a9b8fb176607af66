import 'reflect-metadata';
import { migrateDatabase } from '@rackseal/persistence';
import { loadConfigSectionsOrExit } from '@rackseal/runtime';

/** `npm run migrate`: apply pending migrations (under the same advisory lock as boot) and exit. */
async function main(): Promise<void> {
  // Only the database: migrating needs no master key, Redis or HTTP settings (issue 9).
  const config = loadConfigSectionsOrExit('migrate', ['database', 'readinessTimeoutMs']);
  const run = await migrateDatabase(config, 'rackseal-migrate');
  const list = run.applied.length > 0 ? run.applied.join(', ') : 'none pending';
  process.stdout.write(`migrations applied: ${list}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`rackseal migrate: ${(error as Error).message}\n`);
  process.exit(1);
});
