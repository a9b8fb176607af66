/**
 * Run external tools (tpm2-tools, openssl, swtpm_*) as child processes.
 *
 * Why not execFile: we want stdout as raw bytes (tpm2_nvread / openssl write DER), a hard timeout
 * that really kills a hung tool (a wedged swtpm makes tpm2-tools block forever), and one error type
 * that carries the full command line and stderr so a failing test says what went wrong.
 */
import { spawn } from 'node:child_process';

export interface RunOptions {
  /** Extra environment variables, merged over process.env. */
  env?: NodeJS.ProcessEnv;
  /** Bytes or text written to the tool's stdin (stdin is closed either way). */
  input?: Buffer | string;
  /** Kill the tool (SIGKILL) after this many milliseconds. Default 30 s. */
  timeoutMs?: number;
  cwd?: string;
}

export interface RunResult {
  stdout: Buffer;
  stderr: string;
}

/** A tool exited non-zero, was killed, timed out or could not be started. */
export class ToolFailed extends Error {
  override readonly name = 'ToolFailed';

  constructor(
    /** The command line, shell-quoted for copy-and-paste. */
    readonly commandLine: string,
    /** Exit code, or null when killed by a signal or never started. */
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stderr: string,
    readonly stdout: Buffer,
    readonly timedOut: boolean,
    cause?: unknown,
  ) {
    const how = timedOut
      ? 'timed out'
      : exitCode !== null
        ? `exited with code ${exitCode}`
        : signal !== null
          ? `was killed by ${signal}`
          : 'could not be started';
    const tail = stderr.trim() === '' ? '' : `\n${stderr.trim()}`;
    super(`${commandLine} ${how}${tail}`, cause === undefined ? undefined : { cause });
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;

export function quoteCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export function runTool(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const commandLine = quoteCommand(cmd, args);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(cmd, [...args], {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError: unknown;

    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    // A tool that exits before reading stdin makes the write fail with EPIPE; the exit code tells the story.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input);

    child.on('error', (e) => {
      spawnError = e;
    });
    // 'close' (not 'exit') so stdout/stderr are fully drained; it also follows a spawn 'error'.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out);
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0 && !timedOut && spawnError === undefined) {
        resolve({ stdout, stderr });
      } else {
        reject(new ToolFailed(commandLine, code, signal, stderr, stdout, timedOut, spawnError));
      }
    });
  });
}

/** Anything with a TCTI string, e.g. a SwtpmMachine. */
export interface TctiTarget {
  readonly tcti: string;
}

/**
 * Run one tpm2-tools command against a TPM: `tpm2(tpm, 'nvread', '0x01c00002', ...)`.
 * `tool` may be given with or without the `tpm2_` prefix.
 */
export function tpm2(tpm: TctiTarget, tool: string, ...args: string[]): Promise<RunResult> {
  const cmd = tool.startsWith('tpm2_') ? tool : `tpm2_${tool}`;
  return runTool(cmd, args, { env: { TPM2TOOLS_TCTI: tpm.tcti } });
}

/**
 * swtpm has no resource manager: after a tpm2-tools sequence, flush every transient object and
 * every loaded and saved session, or the next sequence fails with TPM_RC_OBJECT_MEMORY.
 */
export async function flushAllContexts(tpm: TctiTarget): Promise<void> {
  await tpm2(tpm, 'flushcontext', '-t');
  await tpm2(tpm, 'flushcontext', '-l');
  await tpm2(tpm, 'flushcontext', '-s');
}
