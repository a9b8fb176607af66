import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { onWorkerExit } from './exit-guard';
import { repoRoot } from './repo-root';

export const DIST = join(repoRoot(), 'dist');

export type RacksealApp = 'control-plane' | 'worker' | 'cli' | 'agent';

export interface LogLine {
  readonly level?: number;
  readonly msg?: string;
  readonly [key: string]: unknown;
}

/**
 * A built rackseal process (dist/apps/X/src/main.js) under test. Collects its stdout JSON log lines
 * and its stderr so tests can wait for, and assert on, what it said.
 */
export class RunningProcess {
  readonly logs: LogLine[] = [];
  stderr = '';
  stdout = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: (() => void)[] = [];

  constructor(readonly child: ChildProcess) {
    let buffered = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.logs.push({ msg: line });
        }
      }
      this.notify();
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      this.notify();
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.notify();
        resolve({ code, signal });
      });
    });
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((w) => w());
  }

  /** Resolves with the first log line matching `predicate`; rejects on timeout or process exit. */
  async waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = 30000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logs.find(predicate);
      if (found) {
        return found;
      }
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`process exited (${this.child.exitCode ?? this.child.signalCode}) before the expected log line.\nstderr: ${this.stderr}\nstdout: ${this.stdout.slice(-4000)}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for a log line.\nstderr: ${this.stderr}\nstdout: ${this.stdout.slice(-4000)}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends `signal` and waits for the exit; SIGKILLs after `timeoutMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill(signal);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
      const result = await this.exited;
      clearTimeout(timer);
      return result;
    }
    return this.exited;
  }
}

const running = new Set<RunningProcess>();
onWorkerExit(() => running.forEach((p) => p.child.kill('SIGKILL')));

/** Starts dist/apps/<app>/src/<entry>.js with exactly `env` (plus PATH/HOME), never the test's own environment. */
export function startApp(app: RacksealApp, env: NodeJS.ProcessEnv, args: string[] = [], entry = 'main'): RunningProcess {
  return startDistFile(join('apps', app, 'src', `${entry}.js`), env, args);
}

/** Starts a built file of dist/ (e.g. `test/support/delivery-worker-main.js`) with exactly `env` (plus PATH/HOME); killed if this process exits. */
export function startDistFile(path: string, env: NodeJS.ProcessEnv, args: string[] = []): RunningProcess {
  const child = spawn(process.execPath, [join(DIST, path), ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = new RunningProcess(child);
  running.add(proc);
  void proc.exited.then(() => running.delete(proc));
  return proc;
}

/** Starts a control plane and resolves once it listens, with its base URL. */
export async function startControlPlane(env: NodeJS.ProcessEnv): Promise<{ proc: RunningProcess; baseUrl: string }> {
  // Readiness is judged from info-level log lines, whatever level the caller asked for.
  const proc = startApp('control-plane', { ...env, LOG_LEVEL: 'info' });
  try {
    const line = await proc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('control plane listening'));
    // `scheme` is https with TLS_CERT_FILE/TLS_KEY_FILE (docs/guide/hardening.md).
    return { proc, baseUrl: `${line.scheme === 'https' ? 'https' : 'http'}://127.0.0.1:${String(line.port)}` };
  } catch (error) {
    await proc.stop('SIGKILL');
    throw error;
  }
}
