import { type Command, CommanderError } from 'commander';
import { CliError } from './cli-error';
import { endQuietlyOnClosedOutput } from './closed-output';
import { EXIT } from './exit-codes';

/**
 * Runs `rackseal` or `rackseal-agent`: output closed by its reader ends the process quietly, and
 * whatever a command throws becomes one line `<program>: <message>` on stderr and an exit code,
 * never a stack trace. Commander's own exits (--help, --version: 0; a usage mistake) keep their
 * meaning. Sets process.exitCode rather than exiting, so pending output is flushed.
 */
export async function runCommandLine(program: Command, argv: readonly string[] = process.argv): Promise<void> {
  endQuietlyOnClosedOutput(program.name());
  try {
    await program.parseAsync(argv);
  } catch (error) {
    process.exitCode = reportFailure(program.name(), error);
  }
}

/** Prints why a command failed and gives the exit code it ends with. */
export function reportFailure(programName: string, error: unknown): number {
  if (error instanceof CommanderError) {
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
