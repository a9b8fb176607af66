import { writeSync } from 'node:fs';
import { constants } from 'node:os';
import { EXIT } from './exit-codes';

/**
 * 141 = 128 + SIGPIPE: the status a shell reports for `git log | head -1`, `cat big | head` and any
 * other Unix tool whose reader went away. Node ignores SIGPIPE and reports EPIPE on the write
 * instead, so the CLI ends itself with the same status (see docs/decisions.md).
 */
export const EXIT_CLOSED_OUTPUT = 128 + constants.signals.SIGPIPE;

const STDOUT_FD = 1;

let installed = false;

/**
 * Installed once at the root of `rackseal` and `rackseal-agent`, before any command runs: when the
 * reader of stdout or stderr goes away (`rackseal ek inspect big.der | head -c 10`), the process ends
 * at once, as SIGPIPE would end a C tool, quietly (no stack trace) with EXIT_CLOSED_OUTPUT. Any other
 * failure to write stdout (a full disk behind `>`) is named on stderr and exits 2, never a stack trace.
 * Calling it again does nothing.
 *
 * Each listener goes on its stream when that stream is created (whenCreated), not by creating it:
 * a command that writes through neither — `rackseal-agent unlock` at boot writes the key with
 * write(2) and nothing else when it succeeds — never builds them (bench/README.md, "unlock: bytecode
 * in the blob"). Only a stream that exists can fail a write, so the guard covers the same writes.
 */
export function endQuietlyOnClosedOutput(programName: string): void {
  if (installed) {
    return;
  }
  installed = true;
  whenCreated('stdout', (stream) => stream.on('error', (error: NodeJS.ErrnoException) => process.exit(stdoutFailure(programName, error))));
  whenCreated('stderr', (stream) =>
    stream.on('error', (error: NodeJS.ErrnoException) => {
      // Nowhere left to report it.
      process.exit(error.code === 'EPIPE' ? EXIT_CLOSED_OUTPUT : EXIT.usage);
    }),
  );
}

/**
 * Runs `attach` on process[name] when Node creates it: Node defines process.stdout and
 * process.stderr as getters that build the stream on first use and keep it. The getter is wrapped
 * for that first use, then put back. Where the property is not such a getter (a stream already
 * swapped in, a test's mock), `attach` runs on it now.
 */
function whenCreated(name: 'stdout' | 'stderr', attach: (stream: NodeJS.WriteStream) => void): void {
  const descriptor = Object.getOwnPropertyDescriptor(process, name);
  const create = descriptor?.get;
  if (create === undefined || descriptor?.configurable !== true) {
    attach(process[name]);
    return;
  }
  Object.defineProperty(process, name, {
    configurable: true,
    enumerable: descriptor.enumerable ?? true,
    get(): NodeJS.WriteStream {
      Object.defineProperty(process, name, descriptor);
      const stream = create.call(process) as NodeJS.WriteStream;
      attach(stream);
      return stream;
    },
  });
}

/**
 * Writes `text` to standard output at once, without creating `process.stdout`: Node builds that
 * stream on first use (for a pipe, a socket and some twenty modules of its own), which costs more
 * than all the rest of `rackseal-agent --help` at boot (bench/README.md, agent-startup). A failure
 * ends as endQuietlyOnClosedOutput ends it: quietly with EXIT_CLOSED_OUTPUT when the reader is gone,
 * otherwise named on stderr with exit 2; the exit code is set, and the caller returns.
 */
export function printSync(programName: string, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  let written = 0;
  try {
    while (written < bytes.length) {
      written += writeSync(STDOUT_FD, bytes, written);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
      // A non-blocking pipe that is full: the stream waits for the reader, as a write() would.
      endQuietlyOnClosedOutput(programName);
      process.stdout.write(bytes.subarray(written));
      return;
    }
    process.exitCode = stdoutFailure(programName, error as NodeJS.ErrnoException);
  }
}

/** Reports a failed write to stdout (nothing for a reader that went away) and gives the exit code. */
function stdoutFailure(programName: string, error: NodeJS.ErrnoException): number {
  if (error.code === 'EPIPE') {
    return EXIT_CLOSED_OUTPUT;
  }
  endQuietlyOnClosedOutput(programName);
  process.stderr.write(`${programName}: cannot write to standard output: ${error.code ?? error.message}\n`);
  return EXIT.usage;
}
