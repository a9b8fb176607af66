import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { sweepStaleTestDatabases } from './postgres-admin';
import { createSoftHsmDirectory } from './softhsm-directory';
import { resolveServices, TEST_ADMIN_DATABASE_URL, TEST_REDIS_URL } from './services';

/**
 * Runs once before all suites: finds (or starts) PostgreSQL and Redis and fails the whole run, loudly,
 * when neither local services nor Docker are there. Test workers are forked afterwards and inherit
 * the resolved URLs through the environment.
 */
export default async function globalSetup(): Promise<void> {
  if (!existsSync(join(__dirname, '../../dist/apps/control-plane/src/main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` (npm test does) before jest; process tests start the built apps');
  }
  const services = await resolveServices();
  process.env[TEST_ADMIN_DATABASE_URL] = services.adminDatabaseUrl;
  process.env[TEST_REDIS_URL] = services.redisUrl;
  (globalThis as { __racksealServices?: typeof services }).__racksealServices = services;
  await sweepStaleTestDatabases(services.adminDatabaseUrl);
  // SoftHSM2 reads SOFTHSM2_CONF from the C environment at C_Initialize, which a test file cannot set
  // (jest gives each file a copy of process.env): the run gets its own token directory here, and the
  // workers inherit its SOFTHSM2_CONF — never the system's /etc/softhsm.
  const softhsm = await createSoftHsmDirectory();
  process.env.SOFTHSM2_CONF = softhsm.conf;
  (globalThis as { __racksealSoftHsm?: typeof softhsm }).__racksealSoftHsm = softhsm;
  process.stderr.write(
    `\nrackseal tests: PostgreSQL ${new URL(services.adminDatabaseUrl).host}, Redis ${new URL(services.redisUrl).host}\n`,
  );
}
