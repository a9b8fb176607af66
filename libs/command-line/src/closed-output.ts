import { constants } from 'node:os';
import { EXIT } from './exit-codes';

/**
 * 141 = 128 + SIGPIPE: the status a shell reports for `git log | head -1`, `cat big | head` and any
 * other Unix tool whose reader went away. Node ignores SIGPIPE and reports EPIPE on the write
 * instead, so the CLI ends itself with the same status (see docs/decisions.md).
 */
export const EXIT_CLOSED_OUTPUT = 128 + constants.signals.SIGPIPE;

/**
 * Installed once at the root of `rackseal` and `rackseal-agent`, before any command runs: when the
 * reader of stdout or stderr goes away (`rackseal ek inspect big.der | head -c 10`), the process ends
 * at once, as SIGPIPE would end a C tool, quietly (no stack trace) with EXIT_CLOSED_OUTPUT. Any other
 * failure to write stdout (a full disk behind `>`) is named on stderr and exits 2, never a stack trace.
 */
export function endQuietlyOnClosedOutput(programName: string): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') {
      process.exit(EXIT_CLOSED_OUTPUT);
    }
    process.stderr.write(`${programName}: cannot write to standard output: ${error.code ?? error.message}\n`);
    process.exit(EXIT.usage);
  });
  process.stderr.on('error', (error: NodeJS.ErrnoException) => {
    // Nowhere left to report it.
    process.exit(error.code === 'EPIPE' ? EXIT_CLOSED_OUTPUT : EXIT.usage);
  });
}
