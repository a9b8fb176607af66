import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

// A checkout whose node_modules is a link to a shared install (git worktrees sharing one): prepare-env
// compared mtimes, found package-lock.json (re-written by the checkout) newer and ran `npm ci`, which
// emptied the shared directory through the link and broke every checkout using it. It must compare
// what is installed with the lock file, and never run npm ci through a link.
describe('prepare-env with node_modules linked to a shared install', () => {
  let dir: string;
  const lock = { name: 'x', lockfileVersion: 3, packages: { '': { name: 'x' }, 'node_modules/left-pad': { version: '1.3.0' }, 'node_modules/fsevents': { version: '2.3.3', optional: true } } };

  /** Runs the checkout's prepare-env from a copy, with an `npm` on PATH that only records its arguments. */
  const prepare = (installed: Record<string, { version: string }>) => {
    dir = mkdtempSync(join(tmpdir(), 'rackseal-prepare-'));
    mkdirSync(join(dir, 'scripts'));
    copyFileSync(join(__dirname, '..', 'scripts', 'prepare-env.mjs'), join(dir, 'scripts', 'prepare-env.mjs'));
    writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lock));
    const store = join(dir, 'shared-node_modules');
    mkdirSync(store);
    writeFileSync(join(store, 'sentinel'), 'still here');
    writeFileSync(join(store, '.package-lock.json'), JSON.stringify({ name: 'x', lockfileVersion: 3, packages: installed }));
    // The shared install is older than the checkout's lock file, as after `git worktree add`.
    utimesSync(join(store, '.package-lock.json'), new Date('2020-01-01'), new Date('2020-01-01'));
    symlinkSync(store, join(dir, 'node_modules'));
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin', 'npm'), `#!/bin/sh\necho "$@" >> "${join(dir, 'npm-calls')}"\nexit 1\n`);
    chmodSync(join(dir, 'bin', 'npm'), 0o755);
    const run = spawnSync(process.execPath, [join(dir, 'scripts', 'prepare-env.mjs')], {
      env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}`, DATABASE_URL: 'postgres://postgres@127.0.0.2:1/rackseal' },
      encoding: 'utf8',
      timeout: 60000,
    });
    return { run, npmCalls: existsSync(join(dir, 'npm-calls')) ? readFileSync(join(dir, 'npm-calls'), 'utf8') : '', store };
  };

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('leaves an install that matches the lock file alone, whatever the mtimes', () => {
    const { run, npmCalls } = prepare({ 'node_modules/left-pad': { version: '1.3.0' } });
    expect(npmCalls).toBe('');
    expect(run.stderr).not.toMatch(/installing npm dependencies/);
  });

  it('refuses to run npm ci through the link when the install does not match, naming the target', () => {
    const { run, npmCalls, store } = prepare({ 'node_modules/left-pad': { version: '1.2.0' } });
    expect(npmCalls).toBe('');
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`prepare-env: ERROR: node_modules is a link to ${store}, whose install does not match package-lock.json; npm ci here would empty ${store} through the link.`);
    expect(readFileSync(join(store, 'sentinel'), 'utf8')).toBe('still here');
  });
});
