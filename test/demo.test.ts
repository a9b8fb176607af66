/**
 * `npm run demo` end to end (after its prepare/build steps): the built demo/main.js against the
 * suites' PostgreSQL and Redis, as a user runs it. It must exit 0 with every step of its summary ✓,
 * show what each step claims in its output, and leave nothing behind: its database dropped, no key
 * under its queue prefix, its directory removed, every process it started gone. Ctrl-C mid-way
 * must clean up the same and exit 130.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { STEP_TITLES } from '../demo/fleet-demo';
import { DIST } from './support/processes';
import { withAdmin } from '../demo/support/scratch-database';
import { testServices } from './support/services';

jest.setTimeout(420_000);

interface Run {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

function startDemo(): { child: ChildProcessByStdio<null, Readable, Readable>; output: () => string; done: Promise<Run> } {
  const child = spawn(process.execPath, [join(DIST, 'demo/main.js')], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: testServices().adminDatabaseUrl, REDIS_URL: testServices().redisUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const done = new Promise<Run>((resolve) => child.once('close', (status, signal) => resolve({ status, signal, stdout, stderr })));
  return { child, output: () => stdout, done };
}

/** What the demo said it made, read from its own output. */
function leftovers(stdout: string): { database: string; prefix: string; dir: string; pids: number[] } {
  const where = /database (rackseal_demo_\d+_[0-9a-f]{8}) on \S+, queue prefix (rackseal-demo-\d+-[0-9a-f]{8}) on \S+, files in (\S+)/.exec(stdout);
  expect(where).not.toBeNull();
  const pids = [...stdout.matchAll(/\(pids? ([\d, ]+)\)|workers pids ([\d, ]+) ready/g)].flatMap((m) => (m[1] ?? m[2]!).split(',').map((p) => Number(p.trim())));
  return { database: where![1]!, prefix: where![2]!, dir: where![3]!, pids };
}

async function expectNothingLeft(stdout: string): Promise<void> {
  const { database, prefix, dir, pids } = leftovers(stdout);
  // Three swtpm, two control planes, two workers.
  expect(pids).toHaveLength(7);
  const databases = await withAdmin(testServices().adminDatabaseUrl, (c) => c.query('SELECT datname FROM pg_database WHERE datname = $1', [database]));
  expect(databases.rowCount).toBe(0);
  const redis = new IORedis(testServices().redisUrl, { maxRetriesPerRequest: 1 });
  try {
    expect(await redis.keys(`${prefix}:*`)).toEqual([]);
  } finally {
    redis.disconnect();
  }
  expect(existsSync(dir)).toBe(false);
  const alive = pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
  expect(alive).toEqual([]);
}

describe('npm run demo', () => {
  it('tells the whole story on real processes, every step checked ✓, exit 0, and leaves nothing behind', async () => {
    const run = await startDemo().done;
    expect(run.stderr).toBe('');
    expect([run.status, run.stdout.slice(-3000)]).toEqual([0, expect.stringMatching(/demo: all 13 steps ✓\n$/)]);
    const summary = run.stdout.slice(run.stdout.lastIndexOf('\nsummary\n') + '\nsummary\n'.length).split('\n').slice(0, STEP_TITLES.length);
    expect(summary).toEqual(STEP_TITLES.map((title, i) => `  ✓ ${String(i + 1).padStart(2)}. ${title}`));

    // What the steps claim, as the operator's commands and the agents printed it.
    expect(run.stdout).toMatch(/refused by the server: attestation\.no-policy/);
    expect(run.stdout).toMatch(/created the policy with set "fresh boot"/);
    expect(run.stdout.match(/3\/3 target\(s\) acked/g)).toHaveLength(3);
    expect(run.stdout).toMatch(/unlock: \S+disk\.img: no approval for the current PCR state \(group "workers", epoch 1, 1 approval\(s\) checked\)/);
    expect(run.stdout).toMatch(/SN-C {2}state: quarantined/);
    expect(run.stdout).toMatch(/deliveries unchanged \(\d+, none new\)/);
    expect(run.stdout).toMatch(/revoked machine SN-B .*, was attested/);
    expect(run.stdout).toMatch(/record \d+ is in the log of size \d+ \(root [0-9a-f]{64}\), checkpoint signed by key [0-9a-f]{8}/);
    expect(run.stdout).toMatch(/audit log intact: \d+ records \(0 pending\)/);
    // The last table: every machine's progress, SN-B revoked, SN-C back on the new kernel.
    expect(run.stdout).toMatch(/SN-A +replica 1 +attested +✓ +✓ +✓ rsa-2048 +✓ v2 +✓ v2 +✓ gen 2 +✓ gen 2\n/);
    expect(run.stdout).toMatch(/SN-B +replica 2 +revoked +✓ +✓ +✓ rsa-2048 +✓ v2 +✓ v2 +✓ gen 2 +✓ gen 2\n/);
    expect(run.stdout).toMatch(/SN-C +replica 1 +attested +✓ +✓ +✓ rsa-2048 +✓ v2 +✓ v2 +✓ gen 2 +✓ gen 2 \(new kernel\)\n/);
    // No secret on the screen: the operator token and the disk keys stay off it.
    expect(run.stdout).not.toMatch(/rks_[A-Za-z0-9]/);
    await expectNothingLeft(run.stdout);
  });

  it('Ctrl-C mid-way stops and removes everything it started, says so, and exits 130', async () => {
    const demo = startDemo();
    const deadline = Date.now() + 240_000;
    // Once the agents are starting, every kind of thing the demo makes exists.
    while (!demo.output().includes(`▶ ${STEP_TITLES[5]}`) && Date.now() < deadline && demo.child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 200));
    }
    demo.child.kill('SIGINT');
    const run = await demo.done;
    expect([run.status, run.stderr]).toEqual([130, '']);
    expect(run.stdout).toContain('SIGINT: stopping and cleaning up');
    expect(run.stdout).toContain(`  –  6. ${STEP_TITLES[5]} (interrupted)`);
    expect(run.stdout).toContain(`  –  7. ${STEP_TITLES[6]} (not run)`);
    expect(run.stdout).toContain(`  ✓ 13. ${STEP_TITLES[12]}`);
    expect(run.stdout).toMatch(/demo: interrupted\n$/);
    await expectNothingLeft(run.stdout);
  });
});
