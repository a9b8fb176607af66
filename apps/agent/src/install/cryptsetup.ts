import { spawn } from 'node:child_process';
import type { SecretBytes } from '@rackseal/config/secret-bytes';
import { InstallError } from './install-errors';

/** One cryptsetup call of an install may take this long (PBKDF2 with 1000 iterations takes milliseconds). */
export const CRYPTSETUP_TIMEOUT_MS = 120_000;

/** Exit code 2 of cryptsetup(8) ("RETURN CODES"): no key available with this passphrase. */
export const CRYPTSETUP_NO_KEY = 2;

/** Where cryptsetup is and which LUKS2 device (and detached header) the calls are about. */
export interface LuksDevice {
  readonly device: string;
  readonly header?: string;
  /** The cryptsetup program: by name through PATH unless given. */
  readonly cryptsetup?: string;
}

export interface CryptsetupResult {
  readonly exitCode: number;
  readonly stdout: Buffer;
  /** The last line cryptsetup printed on stderr, for messages (it never prints key material). */
  readonly lastError: string;
}

/**
 * Runs cryptsetup with `args`, `--header` if any, the device and `afterDevice`, feeding `keys` one after the other
 * on its stdin, then closing it. Keys never go into argv or a file: cryptsetup reads `--key-file=-`
 * and `--new-keyfile=-` from stdin, each bounded by its `--keyfile-size`/`--new-keyfile-size`, so
 * two keys share the one pipe (an extra descriptor as /dev/fd/3 cannot be used: Node gives a child
 * a socket, and open(2) of a socket through /proc fails with ENXIO). The argv is checked against
 * the keys before spawning, as a last guard.
 */
export function runCryptsetup(luks: LuksDevice, args: readonly string[], keys: readonly SecretBytes[] = [], afterDevice: readonly string[] = []): Promise<CryptsetupResult> {
  const argv = [...args, ...(luks.header === undefined ? [] : ['--header', luks.header]), luks.device, ...afterDevice];
  const input = Buffer.concat(keys.map((key) => key.reveal()));
  return new Promise<CryptsetupResult>((resolve, reject) => {
    try {
      assertNoKeyInArgv(argv, keys);
    } catch (error) {
      input.fill(0);
      reject(error);
      return;
    }
    const child = spawn(luks.cryptsetup ?? 'cryptsetup', argv, { stdio: ['pipe', 'pipe', 'pipe'], shell: false, env: { ...process.env, LC_ALL: 'C' } });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, CRYPTSETUP_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    // cryptsetup may exit before reading all of stdin (a bad device): EPIPE is not the failure to report.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input, () => input.fill(0));
    child.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      input.fill(0);
      reject(new InstallError('disk.cryptsetup', `cannot run ${luks.cryptsetup ?? 'cryptsetup'}: ${error.code ?? 'unknown error'}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      input.fill(0);
      const lines = Buffer.concat(stderr).toString('utf8').trim().split('\n');
      const lastError = oneLine(lines[lines.length - 1] ?? '');
      if (timedOut || code === null) {
        reject(new InstallError('disk.cryptsetup', `cryptsetup ${args[0] ?? ''} ${luks.device}: ${timedOut ? `did not finish within ${CRYPTSETUP_TIMEOUT_MS / 1000} s` : 'was killed'}`));
        return;
      }
      resolve({ exitCode: code, stdout: Buffer.concat(stdout), lastError });
    });
  });
}

/** As runCryptsetup, failing with disk.cryptsetup on any exit code but 0. */
export async function cryptsetupOk(luks: LuksDevice, args: readonly string[], keys: readonly SecretBytes[] = [], afterDevice: readonly string[] = []): Promise<Buffer> {
  const result = await runCryptsetup(luks, args, keys, afterDevice);
  if (result.exitCode !== 0) {
    throw new InstallError('disk.cryptsetup', `cryptsetup ${args[0] ?? ''} ${luks.device} failed (exit ${result.exitCode}): ${result.lastError}`);
  }
  return result.stdout;
}

/** What cryptsetup said, on one bounded line with control characters shown as escapes. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  const escaped = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
  return escaped.length > 300 ? `${escaped.slice(0, 300)}…` : escaped;
}

/**
 * Refuses an argv that holds a key in any of the spellings a mistake would put it in (raw, hex,
 * base64): the structural half of "key material never in argv" (the test also samples
 * /proc/PID/cmdline of the running cryptsetup).
 */
export function assertNoKeyInArgv(argv: readonly string[], keys: readonly SecretBytes[]): void {
  const joined = Buffer.from(argv.join('\0'), 'utf8');
  for (const key of keys) {
    const bytes = key.reveal();
    try {
      const spellings = [bytes, Buffer.from(bytes.toString('hex')), Buffer.from(bytes.toString('base64'))];
      if (bytes.length >= 8 && spellings.some((s) => joined.includes(s))) {
        throw new Error('refusing to run cryptsetup: a key would be in its argv');
      }
    } finally {
      bytes.fill(0);
    }
  }
}
