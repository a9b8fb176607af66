/**
 * Bad configuration stops the built processes at once: exit code 78 (EX_CONFIG), every bad variable
 * named on stderr, no secret echoed, and no connection attempted first (the services below do not
 * exist, so a process that tried to connect would hang in retries instead of exiting).
 */
import { randomBytes } from 'node:crypto';
import { type RacksealApp, startApp } from './support/processes';

const NOWHERE_DB = 'postgres://postgres@127.0.0.1:1/never';
const NOWHERE_REDIS = 'redis://127.0.0.1:1';

/** A bad master key nobody could mistake for anything else in the output. */
const BAD_KEY = 'zz'.repeat(32);
/** Hex of the right alphabet but one byte short: only "value not shown" may appear for it. */
const SHORT_KEY = 'deadbeefcafef00d'.repeat(3) + 'deadbeefcafe';
/** A good key (production refuses one that is not random, e.g. 'ab' x 32). */
const GOOD_KEY = randomBytes(32).toString('hex');

/** The hang guard: a process still running after this is killed (it must exit on its own, at once). */
const EXIT_WITHIN_MS = 30_000;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  elapsedMs: number;
}

async function runToExit(app: RacksealApp, entry: string, env: NodeJS.ProcessEnv): Promise<Exit> {
  const started = Date.now();
  const proc = startApp(app, { RACKSEAL_ENV: 'test', DATABASE_URL: NOWHERE_DB, REDIS_URL: NOWHERE_REDIS, ...env }, [], entry);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), EXIT_WITHIN_MS);
  try {
    const { code, signal } = await proc.exited;
    // 'exit' may come before the pipes are drained; give them a moment.
    await new Promise((resolve) => setTimeout(resolve, 50));
    return { code, signal, stdout: proc.stdout, stderr: proc.stderr, elapsedMs: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

/** The variables `npm run migrate` reads (issue 9: it needs the database, not the master key). */
const DATABASE_VARIABLES = ['RACKSEAL_ENV', 'DATABASE_URL', 'DATABASE_POOL_SIZE', 'MIGRATIONS_AT_BOOT', 'READINESS_TIMEOUT_MS'];

const PROCESSES: { label: string; app: RacksealApp; entry: string; prefix: string; reads: 'all' | readonly string[] }[] = [
  { label: 'control plane', app: 'control-plane', entry: 'main', prefix: 'rackseal control-plane: ', reads: 'all' },
  { label: 'worker', app: 'worker', entry: 'main', prefix: 'rackseal worker: ', reads: 'all' },
  { label: 'migrate', app: 'control-plane', entry: 'migrate', prefix: 'rackseal migrate: ', reads: DATABASE_VARIABLES },
];

const BAD_ONES: [string, NodeJS.ProcessEnv, string, string][] = [
  ['PORT=abc', { PORT: 'abc' }, 'PORT', 'must be an integer between 0 and 65535 (got "abc")'],
  ['PORT=70000', { PORT: '70000' }, 'PORT', 'must be an integer between 0 and 65535 (got "70000")'],
  ['REDIS_URL=http://nope', { REDIS_URL: 'http://nope' }, 'REDIS_URL', 'must be a URL starting with redis: or rediss:'],
  ['DATABASE_URL=mysql://x', { DATABASE_URL: 'mysql://x' }, 'DATABASE_URL', 'must be a URL starting with postgres:'],
  ['RACKSEAL_ENV=staging', { RACKSEAL_ENV: 'staging', RACKSEAL_MASTER_KEY: GOOD_KEY }, 'RACKSEAL_ENV', 'must be one of production, demo, test'],
  ['production without a master key', { RACKSEAL_ENV: 'production' }, 'RACKSEAL_MASTER_KEY', 'is required in production'],
];

describe('migrate reads only the database variables', () => {
  it('in production without a master key and with bad server-only variables it goes on to the database (unreachable here: exit 1, not 78)', async () => {
    const result = await runToExit('control-plane', 'migrate', { RACKSEAL_ENV: 'production', PORT: 'abc', REDIS_URL: 'http://nope', LOG_LEVEL: 'loud' });
    expect({ code: result.code, signal: result.signal }).toEqual({ code: 1, signal: null });
    expect(result.stderr).toMatch(/^rackseal migrate: /);
    expect(result.stderr).not.toMatch(/Invalid configuration|RACKSEAL_MASTER_KEY|PORT|REDIS_URL|LOG_LEVEL/);
  });
});

describe.each(PROCESSES)('$label with a bad configuration', ({ app, entry, prefix, reads }) => {
  it.each(BAD_ONES.filter(([, , variable]) => reads === 'all' || reads.includes(variable)))('%s: exits 78 naming the variable', async (_label, env, variable, reason) => {
    const result = await runToExit(app, entry, env);
    expect({ code: result.code, signal: result.signal }).toEqual({ code: 78, signal: null });
    expect(result.elapsedMs).toBeLessThan(EXIT_WITHIN_MS);
    expect(result.stderr.startsWith(`${prefix}Invalid configuration:\n`)).toBe(true);
    expect(result.stderr).toContain(`  - ${variable}: ${reason}`);
    // Only the named variable is wrong; nothing else is blamed.
    expect(result.stderr.match(/^ {2}- [A-Z_]+:/gm)).toEqual([`  - ${variable}:`]);
    // No log line, no stack: the process ended before the application was built.
    expect(result.stdout).toBe('');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it.each([
    ['an unparseable key', BAD_KEY, ['zzzz']],
    ['a key one byte short', SHORT_KEY, ['deadbeef', 'cafef00d', '3q2+7', 'DEADBEEF']],
  ])('never prints %s', async (_label, key, fragments) => {
    const result = await runToExit(app, entry, { RACKSEAL_ENV: 'production', RACKSEAL_MASTER_KEY: key });
    if (reads === 'all') {
      expect(result.code).toBe(78);
      expect(result.stderr).toContain('  - RACKSEAL_MASTER_KEY: must be exactly 32 bytes written as 64 hex characters or base64 (value not shown)');
    }
    for (const text of [result.stderr, result.stdout]) {
      expect(text).not.toContain(key);
      for (const fragment of fragments) {
        expect(text).not.toContain(fragment);
      }
    }
  });

  it('names every bad variable in one go and masks a URL password', async () => {
    const result = await runToExit(app, entry, {
      RACKSEAL_ENV: 'production',
      RACKSEAL_MASTER_KEY: BAD_KEY,
      PORT: 'abc',
      DATABASE_URL: 'mysql://rackseal:hunter2@db.internal/rackseal',
      LOG_LEVEL: 'loud',
    });
    expect(result.code).toBe(78);
    expect(result.stderr.match(/^ {2}- [A-Z_]+:/gm)).toEqual(
      ['  - DATABASE_URL:', '  - PORT:', '  - RACKSEAL_MASTER_KEY:', '  - LOG_LEVEL:'].filter((line) => reads === 'all' || reads.some((v) => line === `  - ${v}:`)),
    );
    expect(result.stderr).toContain('(got "mysql://rackseal:***@db.internal/rackseal")');
    expect(result.stderr).not.toContain('hunter2');
    expect(result.stderr).not.toContain('zzzz');
  });
});
