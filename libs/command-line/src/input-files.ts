import { closeSync, mkdirSync, openSync, readdirSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliError } from './cli-error';

/**
 * What an input file may hold at most by default. Every input the CLI reads whole (certificates,
 * keys, quotes, PCR values, secrets, event logs) is far smaller; the bound keeps `/dev/zero`, `/dev/urandom`
 * or a wrong path into a disk image from being read into memory until the process dies.
 */
export const MAX_INPUT_BYTES = 64 * 1024 * 1024;

/**
 * Reads an input file, at most `maxBytes` of it; a missing or unreadable file, or a larger one, is a
 * usage error (exit 2) naming the flag. Reads in chunks rather than trusting the size stat reports,
 * which is 0 for devices, pipes and /proc files.
 */
export function readInput(path: string, what: string, maxBytes = MAX_INPUT_BYTES): Buffer {
  const fromStdin = path === '-' || path === STDIN_PATH;
  let fd: number;
  try {
    // Standard input is read through its own descriptor: opening /dev/stdin fails (ENXIO) when it is a
    // socket, which is what a parent process written in Node hands its child as a pipe.
    fd = fromStdin ? STDIN_FD : openSync(path, 'r');
  } catch (error) {
    throw unreadable(error, path, what);
  }
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1024 * 1024, maxBytes + 1 - total));
      let n: number;
      try {
        n = readSyncRetryingEagain(fd, chunk);
      } catch (error) {
        throw unreadable(error, path, what);
      }
      if (n === 0) {
        return Buffer.concat(chunks, total);
      }
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > maxBytes) {
        throw CliError.usage(`cannot read ${what} ${JSON.stringify(path)}: larger than ${maxBytes} bytes (the limit for it)`);
      }
    }
  } finally {
    if (!fromStdin) {
      closeSync(fd);
    }
  }
}

const STDIN_PATH = '/dev/stdin';
const STDIN_FD = 0;
const EAGAIN_PAUSE_MS = 5;

/**
 * readSync that waits out EAGAIN: a standard input left non-blocking by whoever made it (a socket or
 * pipe shared with a Node parent) has no data *yet*, which is not the end of the input.
 */
function readSyncRetryingEagain(fd: number, chunk: Buffer): number {
  for (;;) {
    try {
      return readSync(fd, chunk, 0, chunk.length, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') {
        throw error;
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, EAGAIN_PAUSE_MS);
    }
  }
}

function unreadable(error: unknown, path: string, what: string): CliError {
  const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
  return CliError.usage(`cannot read ${what} ${JSON.stringify(path)}: ${code}`);
}

/**
 * The files an input PATH stands for (`--ca PATH`, `vendor-ca add PATH...`): the file itself, or the
 * directory's regular files — not recursive, no dotfiles, sorted so every run reads them in the same
 * order. A missing path or an empty directory is a usage error (exit 2) naming `what`.
 */
export function filesAtPath(path: string, what: string): string[] {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch (error) {
    throw CliError.usage(`cannot read ${what} ${JSON.stringify(path)}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  if (!isDirectory) {
    return [path];
  }
  const files = readdirSync(path)
    .filter((name) => !name.startsWith('.'))
    .sort()
    .map((name) => join(path, name))
    .filter((p) => statSync(p, { throwIfNoEntry: false })?.isFile() === true);
  if (files.length === 0) {
    throw CliError.usage(`${what} ${JSON.stringify(path)} is an empty directory`);
  }
  return files;
}

/** Writes an output file (mode 0600: outputs may be credential or sealed blobs). */
export function writeOutput(path: string, data: Uint8Array, what: string): void {
  try {
    writeFileSync(path, data, { mode: 0o600 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unwritable';
    throw CliError.usage(`cannot write ${what} ${JSON.stringify(path)}: ${code}`);
  }
}

export function ensureDirectory(path: string, what: string): void {
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unwritable';
    throw CliError.usage(`cannot create ${what} ${JSON.stringify(path)}: ${code}`);
  }
}

/** Parses a hex option (`--nonce`, `--name`); an empty string is allowed where `allowEmpty`. */
export function parseHexOption(value: string, flag: string, allowEmpty = false): Buffer {
  const text = value.trim().replace(/^0x/i, '');
  if (text === '' && allowEmpty) {
    return Buffer.alloc(0);
  }
  if (text === '' || text.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(text)) {
    throw CliError.usage(`${flag} must be an even number of hex digits`);
  }
  return Buffer.from(text, 'hex');
}
