#!/usr/bin/env node
// Makes a fresh clone runnable: npm deps, the Debian tools the TPM suites need, and local
// PostgreSQL/Redis. Plain Node with no dependencies, because it runs before `npm ci`.
// Every step says what it does; anything it cannot fix ends the run with a message naming the fix.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const say = (message) => process.stderr.write(`prepare-env: ${message}\n`);
const fail = (message) => {
  process.stderr.write(`prepare-env: ERROR: ${message}\n`);
  process.exit(1);
};
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const run = (cmd, args, options = {}) => {
  const result = spawnSync(cmd, args, { stdio: 'inherit', ...options });
  return result.status === 0;
};

function checkNode() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 19)) {
    fail(`Node ${process.versions.node} is too old: rackseal needs Node >= 20.19`);
  }
}

/**
 * Whether node_modules holds what package-lock.json locks: npm's record of the install
 * (node_modules/.package-lock.json) has every locked, non-optional package at its locked version.
 * Content, not mtimes: a fresh clone or `git worktree add` gives package-lock.json a new mtime
 * without changing a byte of it.
 */
function installMatchesLock(marker, lock) {
  let locked;
  let installed;
  try {
    locked = JSON.parse(readFileSync(lock, 'utf8')).packages ?? {};
    installed = JSON.parse(readFileSync(marker, 'utf8')).packages ?? {};
  } catch {
    return false;
  }
  return Object.entries(locked).every(([path, entry]) => path === '' || entry.optional === true || installed[path]?.version === entry.version);
}

function ensureNpmDeps() {
  const modules = join(root, 'node_modules');
  const marker = join(modules, '.package-lock.json');
  const lock = join(root, 'package-lock.json');
  if (existsSync(marker) && (statSync(marker).mtimeMs >= statSync(lock).mtimeMs || installMatchesLock(marker, lock))) {
    return;
  }
  if (lstatSync(modules, { throwIfNoEntry: false })?.isSymbolicLink() === true) {
    // npm ci first empties node_modules, through the link: every checkout sharing the target would
    // lose its dependencies (and this one too, if the install then fails).
    const target = existsSync(modules) ? realpathSync(modules) : '(a missing target)';
    fail(
      `node_modules is a link to ${target}, whose install does not match package-lock.json; ` +
        `npm ci here would empty ${target} through the link. Run npm ci in the checkout that owns it, ` +
        'or replace the link with a directory (rm node_modules) and run again.',
    );
  }
  say('installing npm dependencies (npm ci)');
  if (run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root })) {
    return;
  }
  // npm ci refuses a lock file that lacks other platforms' optional binaries (@swc/core-darwin-*,
  // ...), which a registry mirror serving only linux-x64 builds leaves out. `npm install --no-save`
  // installs the same locked versions and leaves the lock file as it is.
  say('npm ci refused the lock file; installing the locked versions with npm install --no-save');
  if (!run('npm', ['install', '--no-save', '--no-audit', '--no-fund'], { cwd: root })) {
    fail('npm install failed');
  }
}

// Debian package → a file it installs that the suites use.
const DEBIAN_PACKAGES = {
  swtpm: '/usr/bin/swtpm',
  'swtpm-tools': '/usr/bin/swtpm_setup',
  'tpm2-tools': '/usr/bin/tpm2_getekcertificate',
  'cryptsetup-bin': '/usr/sbin/cryptsetup',
  // The PKCS#11 master-key provider's tests run against SoftHSM2 (issue 13).
  softhsm2: '/usr/bin/softhsm2-util',
  'libtss2-tcti-swtpm0': null,
  // test/agent-unlock-startup.test.ts: which files an unlock from the startup snapshot opens.
  strace: '/usr/bin/strace',
  // The dashboard's browser tests (test/ui-*.test.ts) drive Debian's Chromium through playwright-core;
  // no browser is downloaded by npm.
  chromium: '/usr/bin/chromium',
};

function packageInstalled(name, probe) {
  if (probe !== null) {
    return existsSync(probe);
  }
  const result = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' });
  return result.status === 0 && result.stdout.includes('install ok installed');
}

function ensureDebianPackages() {
  const missing = Object.entries(DEBIAN_PACKAGES)
    .filter(([name, probe]) => !packageInstalled(name, probe))
    .map(([name]) => name);
  if (missing.length === 0) {
    return;
  }
  if (!has('apt-get')) {
    fail(`missing tools (${missing.join(', ')}) and no apt-get: install them with your package manager`);
  }
  if (!isRoot) {
    fail(`missing Debian packages; run as root: apt-get update && apt-get install -y ${missing.join(' ')}`);
  }
  say(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!run('apt-get', ['update', '-qq'], { env })) {
    fail('apt-get update failed');
  }
  if (!run('apt-get', ['install', '-y', '-qq', ...missing], { env })) {
    fail(`apt-get install ${missing.join(' ')} failed`);
  }
}

function reachable(host, port, timeoutMs = 1500) {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function endpoint(url, defaultPort) {
  const parsed = new URL(url);
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port || defaultPort) };
}

const isLocal = (host) => ['127.0.0.1', 'localhost', '::1'].includes(host);

async function waitFor(host, port, seconds) {
  for (let i = 0; i < seconds * 4; i += 1) {
    if (await reachable(host, port, 500)) {
      return true;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

function startLocalPostgres() {
  if (!has('pg_ctlcluster') || !existsSync('/etc/postgresql')) {
    return false;
  }
  for (const version of readdirSync('/etc/postgresql')) {
    for (const cluster of readdirSync(join('/etc/postgresql', version))) {
      say(`starting local PostgreSQL cluster ${version}/${cluster}`);
      run('pg_ctlcluster', ['--skip-systemctl-redirect', version, cluster, 'start'], { stdio: 'ignore' });
    }
  }
  return true;
}

function startLocalRedis(port) {
  if (!has('redis-server')) {
    return false;
  }
  say(`starting local Redis on port ${port}`);
  return run('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', String(port),
    '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
}

function dockerAvailable() {
  return has('docker') && spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 10000 }).status === 0;
}

async function ensureService(name, url, defaultPort, start) {
  const { host, port } = endpoint(url, defaultPort);
  if (await reachable(host, port)) {
    return 'running';
  }
  if (isLocal(host) && start(port) && (await waitFor(host, port, 20))) {
    return 'started';
  }
  if (dockerAvailable()) {
    say(`${name} is not reachable at ${host}:${port}; the test harness will start it with testcontainers (Docker)`);
    return 'docker';
  }
  fail(
    `${name} is not reachable at ${host}:${port}, could not be started locally, and no Docker engine is available. ` +
      `Install and start ${name}, or set ${name === 'PostgreSQL' ? 'DATABASE_URL' : 'REDIS_URL'} to a reachable server.`,
  );
}

async function main() {
  checkNode();
  ensureNpmDeps();
  ensureDebianPackages();
  const databaseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/rackseal';
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const pg = await ensureService('PostgreSQL', databaseUrl, 5432, startLocalPostgres);
  const redis = await ensureService('Redis', redisUrl, 6379, startLocalRedis);
  say(`ready (PostgreSQL ${pg}, Redis ${redis}, swtpm ${execFileSync('swtpm', ['--version'], { encoding: 'utf8' }).split(',')[0].replace('TPM emulator version ', '')})`);
}

await main();
