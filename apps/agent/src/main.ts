#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { packageVersion } from '../../cli/src/version';

/**
 * `rackseal-agent`: the node-side agent. It enrolls the machine with its TPM, receives wrapped
 * secrets and unwraps them only inside that TPM. Commands arrive with the TPM client issues.
 */
export function buildProgram(): Command {
  return new Command('rackseal-agent')
    .description('rackseal node agent: proves this machine with its TPM and unwraps its secrets inside it')
    .version(packageVersion())
    .showHelpAfterError()
    .exitOverride();
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    process.stderr.write(`rackseal-agent: ${(error as Error).message}\n`);
    process.exitCode = 2;
  }
}

void main();
