import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { dockerAvailable, resolveServices } from './support/services';

const noDocker = () => false;

// No service, no tests: when PostgreSQL or Redis cannot be had, the run fails and says what to do.
describe('when a service cannot be had', () => {
  const unreachableDb = 'postgres://postgres@127.0.0.2:1/rackseal';
  const unreachableRedis = 'redis://127.0.0.2:1';

  it('the test harness refuses to run, naming the missing service', async () => {
    await expect(resolveServices({ DATABASE_URL: unreachableDb, REDIS_URL: process.env.RACKSEAL_TEST_REDIS_URL }, noDocker)).rejects.toThrow(
      /rackseal tests need real services: PostgreSQL \(127\.0\.0\.2:1\) did not answer and no Docker engine is available/,
    );
    await expect(resolveServices({ REDIS_URL: unreachableRedis }, noDocker)).rejects.toThrow(/Redis \(127\.0\.0\.2:1\) did not answer/);
  });

  it('npm test / npm run demo stop in prepare-env with exit 1 and the fix', () => {
    const run = spawnSync(process.execPath, [join(__dirname, '..', 'scripts', 'prepare-env.mjs')], {
      env: { ...process.env, DATABASE_URL: unreachableDb },
      encoding: 'utf8',
      timeout: 60000,
    });
    if (dockerAvailable()) {
      // With a Docker engine the harness takes over with testcontainers instead.
      expect(run.status).toBe(0);
      expect(run.stderr).toMatch(/PostgreSQL is not reachable at 127\.0\.0\.2:1; the test harness will start it with testcontainers/);
      return;
    }
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(
      /prepare-env: ERROR: PostgreSQL is not reachable at 127\.0\.0\.2:1, could not be started locally, and no Docker engine is available\. Install and start PostgreSQL, or set DATABASE_URL to a reachable server\./,
    );
  });
});
