/**
 * The built command-line entry points (docs/architecture.md §5, §6): help, version and usage errors with the
 * documented exit codes (0 ok, 1 invalid, 2 usage), run directly and through `npx` (package.json bin).
 */
import { spawnSync } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RACKSEAL_ENTRY, runAgentCli, runRacksealCli, runRacksealCliAsync } from './support/cli-runner';

const REPO_ROOT = join(__dirname, '..');
const PACKAGE = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  bin: Record<string, string>;
};

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** For what is not the built dist/ CLI: npm, npx, tar, the CLI of a packed tarball. */
function run(command: string, args: readonly string[], cwd = REPO_ROOT): Run {
  const result = spawnSync(command, [...args], {
    cwd,
    encoding: 'utf8',
    timeout: 60_000,
    // Only what a shell needs: no DATABASE_URL etc. leaking in from the test runner.
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
  });
  if (result.error !== undefined) {
    throw result.error;
  }
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const cli = (...args: string[]): Run => runRacksealCli(args);
const agent = (...args: string[]): Run => runAgentCli(args);

describe('rackseal (operator CLI)', () => {
  it('--help exits 0 and lists the commands', () => {
    const result = cli('--help');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^Usage: rackseal \[options\] \[command\]/);
    expect(result.stdout).toMatch(/^\s+audit\s+audit transparency log tools$/m);
    for (const command of ['token', 'migrate', 'vendor-ca', 'inventory', 'machines', 'policy']) {
      expect(result.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
    }
    expect(result.stderr).toBe('');
  });

  it('every server command takes --server and --token with their environment defaults', () => {
    const commands = [['token', 'list'], ['token', 'revoke'], ['audit', 'list'], ['machines', 'list'], ['machines', 'show'], ['machines', 'revoke'], ['inventory', 'import'], ['inventory', 'show'], ['vendor-ca', 'add'], ['vendor-ca', 'list'], ['vendor-ca', 'disable'], ['vendor-ca', 'enable'], ['vendor-ca', 'anchor'], ['vendor-ca', 'unanchor'], ['policy', 'set'], ['policy', 'show'], ['policy', 'promote']];
    for (const command of commands) {
      const help = cli(...command, '--help');
      expect([command, help.status]).toEqual([command, 0]);
      expect([command, /--server <url>[\s\S]*\$RACKSEAL_SERVER/.test(help.stdout), /--token <token>[\s\S]*\$RACKSEAL_TOKEN/.test(help.stdout)]).toEqual([command, true, true]);
    }
  });

  it('--version prints the package.json version', () => {
    const result = cli('--version');
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(`${PACKAGE.version}\n`);
  });

  it('-V is --version', () => {
    expect(cli('-V').stdout).toBe(`${PACKAGE.version}\n`);
  });

  it('help for a subcommand names its subcommands', () => {
    const result = cli('audit', '--help');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^Usage: rackseal audit/);
    expect(result.stdout).toMatch(/^\s+verify \[options\]/m);
  });

  it('an unknown command exits 2 with "unknown command" on stderr', () => {
    const result = cli('frobnicate');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("error: unknown command 'frobnicate'");
    expect(result.stdout).toBe('');
  });

  it('an unknown option exits 2', () => {
    const result = cli('--frobnicate');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("error: unknown option '--frobnicate'");
  });
});

describe('rackseal input files', () => {
  // `rackseal vendor-ca add /dev/zero` grew past 2 GB in seconds: the size was checked after readFileSync
  // had read the whole "file", and a device, pipe or /proc file reports size 0 anyway.
  it('a device that never ends is refused at the limit, not read into memory', () => {
    const started = Date.now();
    const inspect = cli('ek', 'inspect', '/dev/zero');
    expect([inspect.status, inspect.stdout, inspect.stderr]).toEqual([2, '', 'rackseal: cannot read certificate "/dev/zero": larger than 67108864 bytes (the limit for it)\n']);
    const add = runRacksealCli(['vendor-ca', 'add', '/dev/urandom'], { env: { RACKSEAL_SERVER: 'http://127.0.0.1:1', RACKSEAL_TOKEN: 'rks_unused' } });
    expect([add.status, add.stdout, add.stderr]).toEqual([2, '', 'rackseal: cannot read certificate file "/dev/urandom": larger than 49152 bytes (the limit for it)\n']);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('a small input from a pipe is still read whole', () => {
    // Through a shell: a real pipe (spawn's own stdin is a socket, which /dev/stdin cannot open).
    const result = spawnSync('sh', ['-c', `printf 'not a certificate' | "${process.execPath}" "${RACKSEAL_ENTRY}" ek inspect /dev/stdin`], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^rackseal: /);
    expect(result.stderr).not.toMatch(/cannot read/);
  });
});

describe('rackseal and a control plane that drops the connection', () => {
  // A control plane killed mid-import: the CLI said "cannot reach", as if nothing had been sent.
  it('says the connection was lost and that a change may have been made, not "cannot reach"', async () => {
    const server = createServer((socket) => socket.once('data', () => socket.destroy()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Async: the dropping server runs in this process.
    const cliAsync = (...args: string[]) => runRacksealCliAsync(args, { env: { RACKSEAL_SERVER: origin, RACKSEAL_TOKEN: 'rks_unused' } });
    try {
      const read = await cliAsync('machines', 'list');
      expect([read.status, read.stderr]).toEqual([2, `rackseal: machines list: the connection to ${origin} was lost before an answer (UND_ERR_SOCKET): try again\n`]);
      const change = await cliAsync('vendor-ca', 'disable', '0123456789abcdef');
      expect([change.status, change.stderr]).toEqual([
        2,
        `rackseal: vendor-ca disable: the connection to ${origin} was lost before an answer (UND_ERR_SOCKET): the change may or may not have been made; check (e.g. rackseal audit list) before trying again\n`,
      ]);
    } finally {
      server.close();
    }
  });
});

describe('rackseal-agent', () => {
  it('--help exits 0 and describes the agent', () => {
    const result = agent('--help');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^Usage: rackseal-agent \[options\]/);
    expect(result.stdout).toContain('TPM');
  });

  it('--version prints the package.json version', () => {
    const result = agent('--version');
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(`${PACKAGE.version}\n`);
  });

  it('an unknown option exits 2', () => {
    const result = agent('--frobnicate');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("unknown option '--frobnicate'");
  });
});

describe('package.json bin', () => {
  it('points at built, executable entry points with a node shebang', () => {
    expect(Object.keys(PACKAGE.bin).sort()).toEqual(['rackseal', 'rackseal-agent']);
    for (const target of Object.values(PACKAGE.bin)) {
      const path = join(REPO_ROOT, target);
      expect(() => accessSync(path, constants.X_OK)).not.toThrow();
      expect(readFileSync(path, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    }
  });

  // --no-install: resolve the project's own bin, never fetch a package of that name from a registry.
  it('`npx rackseal --help` works from the repository root', () => {
    const result = run('npx', ['--no-install', 'rackseal', '--help']);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^Usage: rackseal \[options\] \[command\]/);
    expect(result.stdout).toContain('audit');
  });

  // The README's install: a tarball from `npm pack`, installed outside the checkout. Its files must
  // be enough to run the CLI (dependencies come from the install; here the checkout's are linked).
  it('`npm pack` makes a tarball whose rackseal runs outside the checkout', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rackseal-pack-'));
    try {
      const pack = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir]);
      expect(pack.status).toBe(0);
      const [{ filename, files }] = JSON.parse(pack.stdout) as [{ filename: string; files: { path: string }[] }];
      const paths = files.map((f) => f.path);
      expect(paths).toEqual(expect.arrayContaining(['package.json', 'README.md', PACKAGE.bin.rackseal!, PACKAGE.bin['rackseal-agent']!, 'dist/migrations/index.js']));
      expect(paths.filter((p) => !p.startsWith('dist/') && !['package.json', 'README.md'].includes(p))).toEqual([]);
      expect(paths.filter((p) => p.startsWith('dist/test/'))).toEqual([]);
      expect(run('tar', ['-xzf', join(dir, filename), '-C', dir]).status).toBe(0);
      symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'package', 'node_modules'));
      const installed = run(process.execPath, [join(dir, 'package', PACKAGE.bin.rackseal!), '--version'], dir);
      expect([installed.status, installed.stdout]).toEqual([0, `${PACKAGE.version}\n`]);
      const migrateHelp = run(process.execPath, [join(dir, 'package', PACKAGE.bin.rackseal!), 'migrate', '--help'], dir);
      expect(migrateHelp.stdout).toMatch(/^Usage: rackseal migrate/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('`npx rackseal --version` and `npx rackseal-agent --version` print the package version', () => {
    for (const bin of ['rackseal', 'rackseal-agent']) {
      const result = run('npx', ['--no-install', bin, '--version']);
      expect({ bin, status: result.status, stdout: result.stdout }).toEqual({ bin, status: 0, stdout: `${PACKAGE.version}\n` });
    }
  });
});
