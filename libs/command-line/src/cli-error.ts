import { EXIT } from './exit-codes';

/**
 * A command's refusal or usage problem, carrying its exit code. Commands throw it; runCommandLine
 * prints `<program>: <message>` on stderr and exits with the code. Anything else that escapes a
 * command is a bug and exits 2 with its message, never with a stack trace.
 */
export class CliError extends Error {
  constructor(
    readonly exitCode: (typeof EXIT)[keyof typeof EXIT],
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }

  /** Exit 1: the input was read and checked, and it is refused (invalid quote, broken chain, …). */
  static invalid(message: string): CliError {
    return new CliError(EXIT.invalid, message);
  }

  /** Exit 2: bad usage or unreadable/malformed input. */
  static usage(message: string): CliError {
    return new CliError(EXIT.usage, message);
  }
}
