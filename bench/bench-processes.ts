import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { DIST } from '../test/support/processes';

/**
 * The processes of the multi-process benchmarks (attestation, delivery): built control planes and
 * workers started with their logs in a file, waited for, stopped (SIGTERM, then SIGKILL after 30 s),
 * all killed if the bench exits; and the PostgreSQL processes whose CPU a bench charges.
 */

/** The built main of an app (ATTEST_BENCH_DIST: another build's dist/, for before/after pairs). */
export function appMain(app: 'control-plane' | 'worker'): string {
  return join(process.env.ATTEST_BENCH_DIST ?? DIST, 'apps', app, 'src', 'main.js');
}

export interface Started {
  readonly child: ChildProcess;
  readonly name: string;
  stderr: string;
}

export const children = new Set<ChildProcess>();
process.once('exit', () => children.forEach((c) => c.kill('SIGKILL')));

export function startProcess(main: string, name: string, env: NodeJS.ProcessEnv, nodeArgs: readonly string[], logPath: string): Started {
  const log = openSync(logPath, 'a');
  const child = spawn(process.execPath, [...nodeArgs, main], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', log, 'pipe'],
  });
  closeSync(log);
  children.add(child);
  child.once('exit', () => children.delete(child));
  const started: Started = { child, name, stderr: '' };
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    started.stderr = (started.stderr + chunk).slice(-8000);
  });
  return started;
}

export async function waitLive(proc: Started, port: number, logPath: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}): ${proc.stderr}\n${readFileSync(logPath, 'utf8').slice(-4000)}`);
    }
    const status = await new Promise<number>((resolve) => {
      get({ host: '127.0.0.1', port, path: '/health/live', timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', () => resolve(0));
    });
    if (status === 200) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`${proc.name} did not answer /health/live within 60 s: ${proc.stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export async function stopProcess(proc: Started): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
    return;
  }
  const exited = new Promise((resolve) => proc.child.once('exit', resolve));
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

export async function postgresPids(ds: DataSource, database: string): Promise<{ backends: number[]; aux: number[] }> {
  const rows = (await ds.query(
    `SELECT pid, datname FROM pg_stat_activity
      WHERE (datname = $1 AND pid <> pg_backend_pid())
         OR backend_type IN ('walwriter', 'checkpointer', 'background writer', 'autovacuum launcher', 'walsummarizer', 'logical replication launcher')`,
    [database],
  )) as { pid: number; datname: string | null }[];
  return { backends: rows.filter((r) => r.datname === database).map((r) => r.pid), aux: rows.filter((r) => r.datname !== database).map((r) => r.pid) };
}

