import type { Command } from 'commander';
import { CliError } from './cli-error';
import { endQuietlyOnClosedOutput, printSync } from './closed-output';
import { type ProgramSpec, resolveInvocation } from './command-tree';
import { EXIT } from './exit-codes';

/**
 * Runs `rackseal` (a commander program) or `rackseal-agent` (a ProgramSpec, see command-tree.ts):
 * output closed by its reader ends the process quietly, and whatever a command throws becomes one
 * line `<program>: <message>` on stderr and an exit code, never a stack trace. Commander's own exits
 * (--help, --version: 0; a usage mistake) keep their meaning. Sets process.exitCode rather than
 * exiting, so pending output is flushed.
 */
export async function runCommandLine(program: Command | ProgramSpec, argv: readonly string[] = process.argv): Promise<void> {
  const name = typeof program.name === 'string' ? program.name : program.name();
  try {
    if (typeof program.name === 'string') {
      const invocation = resolveInvocation(program as ProgramSpec, argv.slice(2));
      if ('print' in invocation) {
        // `rackseal-agent --help` and `--version` run at boot: printed without creating Node's
        // stdout and stderr streams, which would cost more than the rest of the start (see printSync).
        printSync(name, invocation.print);
        return;
      }
      endQuietlyOnClosedOutput(name);
      await invocation.run();
    } else {
      endQuietlyOnClosedOutput(name);
      await (program as Command).parseAsync(argv);
    }
  } catch (error) {
    // A usage mistake found by resolveInvocation comes before the guard above is installed.
    endQuietlyOnClosedOutput(name);
    process.exitCode = reportFailure(name, error);
  }
}

/** A CommanderError, told by its code so that this library does not load commander itself. */
function isCommanderError(error: unknown): error is Error & { code: string; exitCode: number } {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('commander.');
}

/** Prints why a command failed and gives the exit code it ends with. */
export function reportFailure(programName: string, error: unknown): number {
  if (isCommanderError(error)) {
    // Commander already printed its message (and the help after a usage error).
    return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (error instanceof CliError) {
    process.stderr.write(`${programName}: ${error.message}\n`);
    return error.exitCode;
  }
  process.stderr.write(`${programName}: ${error instanceof Error ? error.message : String(error)}\n`);
  return EXIT.usage;
}
