#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { CliError } from '../../cli/src/cli-error';
import { endQuietlyOnClosedOutput } from '../../cli/src/closed-output';
import { EXIT } from '../../cli/src/exit-codes';
import { packageVersion } from '../../cli/src/version';
import { registerTpm } from './commands/tpm.command';

/**
 * `rackseal-agent`: the node-side agent. It enrolls the machine with its TPM, receives wrapped
 * secrets and unwraps them only inside that TPM. It must run in an initramfs: it speaks TPM 2.0
 * itself (libs/tpm2) and loads no Nest, TypeORM or other server code.
 */
export function buildProgram(): Command {
  const program = new Command('rackseal-agent')
    .description('rackseal node agent: proves this machine with its TPM and unwraps its secrets inside it')
    .version(packageVersion())
    .showHelpAfterError()
    .exitOverride();
  registerTpm(program);
  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end through here with code 0; usage mistakes with EXIT.usage.
      process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    if (error instanceof CliError) {
      process.stderr.write(`rackseal-agent: ${error.message}\n`);
      process.exitCode = error.exitCode;
      return;
    }
    process.stderr.write(`rackseal-agent: ${(error as Error).message}\n`);
    process.exitCode = EXIT.usage;
  }
}

endQuietlyOnClosedOutput('rackseal-agent');
void main();
