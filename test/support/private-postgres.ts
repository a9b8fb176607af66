import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onWorkerExit } from './exit-guard';
import { freePort, LOCALHOST } from './free-port';
import { postgresAnswers } from './services';

/** The newest PostgreSQL server binaries of the local install (initdb refuses to run as root: then as `postgres`). */
function serverBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) {
    throw new Error(`no PostgreSQL server under ${root}`);
  }
  return join(root, versions[0]!, 'bin');
}

/**
 * A private PostgreSQL server (trust authentication, no fsync) in a temporary directory, which a test
 * may really stop and start again on the same port, as an outage of the fleet's database: the shared
 * server (5432) runs the other suites and is never touched.
 */
export class PrivatePostgres {
  private child: ChildProcess | undefined;
  private readonly unregister: () => void;
  /** As root, the server runs as `postgres` (initdb and postgres refuse root). */
  private readonly user: { uid: number; gid: number } | undefined;

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {
    this.user = process.getuid?.() === 0 ? passwdOf('postgres') : undefined;
    this.unregister = onWorkerExit(() => this.child?.kill('SIGKILL'));
  }

  /** The maintenance database, as the harness's admin URL. */
  get adminUrl(): string {
    return `postgres://postgres@${LOCALHOST}:${this.port}/postgres`;
  }

  static async start(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'rackseal-pg-'));
    const server = new PrivatePostgres(await freePort(), dir);
    if (server.user !== undefined) {
      chownSync(dir, server.user.uid, server.user.gid);
    }
    const init = spawnSync(join(serverBin(), 'initdb'), ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], {
      encoding: 'utf8',
      cwd: dir,
      ...server.user,
    });
    if (init.status !== 0) {
      throw new Error(`initdb failed: ${init.stderr}`);
    }
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    this.child = spawn(join(serverBin(), 'postgres'), ['-D', join(this.dir, 'data'), '-p', String(this.port), '-h', LOCALHOST, '-k', this.dir, '-c', 'fsync=off', '-c', 'max_connections=200'], {
      stdio: 'ignore',
      cwd: this.dir,
      ...this.user,
    });
    for (let i = 0; i < 200; i += 1) {
      if (await postgresAnswers(this.adminUrl)) {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`private PostgreSQL on port ${this.port} did not answer`);
  }

  /** Stops the server at once (SIGQUIT: immediate shutdown, every connection cut, crash recovery at the next start). */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGQUIT');
      await exited;
    }
  }

  async dispose(): Promise<void> {
    await this.stop();
    this.unregister();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function passwdOf(user: string): { uid: number; gid: number } {
  const line = spawnSync('getent', ['passwd', user], { encoding: 'utf8' }).stdout.trim();
  const [, , uid, gid] = line.split(':');
  if (uid === undefined || gid === undefined) {
    throw new Error(`no user ${user}`);
  }
  return { uid: Number(uid), gid: Number(gid) };
}
