import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from './support/database';
import { DIST } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testServices } from './support/services';

// `npm run demo` end to end (after its prepare/build steps), on a database of its own.
describe('npm run demo', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;

  beforeAll(async () => {
    db = await createTestDatabase({ migrate: false });
    prefix = createTestQueuePrefix();
  });

  afterAll(async () => {
    await db.drop();
    await prefix.clear();
  });

  it('brings up control plane and worker on the real services and shows them healthy', () => {
    const run = spawnSync(process.execPath, [join(DIST, 'test/demo/main.js')], {
      env: { PATH: process.env.PATH, DATABASE_URL: db.url, REDIS_URL: testServices().redisUrl, QUEUE_PREFIX: prefix.prefix },
      encoding: 'utf8',
      timeout: 90000,
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/GET \/health\/ready -> 200 ready/);
    expect(run.stdout).toMatch(/postgres\s+up/);
    expect(run.stdout).toMatch(/redis\s+up/);
    expect(run.stdout).toMatch(/worker job audit\.verify-chain \S+: completed \{"ok":true,"records":0\}/);
    expect(run.stdout).toMatch(/rackseal audit verify: audit log intact: \d+ records \(\d+ pending\), root [0-9a-f]{64}, \d+ checkpoints checked \(exit 0\)/);
    expect(run.stdout).toMatch(/demo: foundation healthy\n$/);
  });
});
