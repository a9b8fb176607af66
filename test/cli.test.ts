/**
 * The built command-line entry points (DESIGN §3, §4): help, version and usage errors with the
 * documented exit codes (0 ok, 1 invalid, 2 usage), run directly and through `npx` (package.json bin).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST } from './support/processes';

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

function run(command: string, args: readonly string[]): Run {
  const result = spawnSync(command, [...args], {
    cwd: REPO_ROOT,
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

const cli = (...args: string[]): Run => run(process.execPath, [join(DIST, 'apps/cli/src/main.js'), ...args]);
const agent = (...args: string[]): Run => run(process.execPath, [join(DIST, 'apps/agent/src/main.js'), ...args]);

describe('rackseal (operator CLI)', () => {
  it('--help exits 0 and lists the commands', () => {
    const result = cli('--help');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^Usage: rackseal \[options\] \[command\]/);
    expect(result.stdout).toMatch(/^\s+audit\s+audit log tools$/m);
    expect(result.stderr).toBe('');
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

  it('`npx rackseal --version` and `npx rackseal-agent --version` print the package version', () => {
    for (const bin of ['rackseal', 'rackseal-agent']) {
      const result = run('npx', ['--no-install', bin, '--version']);
      expect({ bin, status: result.status, stdout: result.stdout }).toEqual({ bin, status: 0, stdout: `${PACKAGE.version}\n` });
    }
  });
});
