import { spawn } from 'node:child_process';
import type { ReloadCommand } from './agent-config';

/** A reload that takes longer is killed: a hung `systemctl reload` must not hold up the next delivery. */
export const RELOAD_TIMEOUT_MS = 30_000;

/**
 * How a reload ended. Reported with the install, never undoing it: the files are the new secret
 * whatever the service does with them, and writing the old ones back would hand out a credential
 * the control plane has moved past. What the command printed is not kept (it may echo what it read).
 */
export type ReloadOutcome =
  | { readonly ok: true; readonly argv0: string }
  | { readonly ok: false; readonly argv0: string; readonly exitCode?: number; readonly signal?: string; readonly timedOut?: true; readonly error?: string };

/** Runs the reload argv directly (no shell), stdin closed and output discarded, within `timeoutMs`. */
export function runReload(argv: ReloadCommand, timeoutMs = RELOAD_TIMEOUT_MS): Promise<ReloadOutcome> {
  const argv0 = argv[0]!;
  return new Promise((resolve) => {
    let timedOut = false;
    const child = spawn(argv0, argv.slice(1), { stdio: 'ignore', shell: false });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ ok: false, argv0, error: error.code ?? 'cannot start' });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) {
        resolve({ ok: true, argv0 });
      } else if (timedOut) {
        resolve({ ok: false, argv0, timedOut: true, signal: 'SIGKILL' });
      } else {
        resolve({ ok: false, argv0, ...(code === null ? {} : { exitCode: code }), ...(signal === null ? {} : { signal }) });
      }
    });
  });
}
