#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerAudit } from './commands/audit.command';
import { registerToken } from './commands/token.command';
import { registerMigrate } from './commands/migrate.command';
import { registerMachines } from './commands/machines.command';
import { registerCredentialMake } from './commands/credential-make.command';
import { registerSeal } from './commands/seal.command';
import { registerQuoteVerify } from './commands/quote-verify.command';
import { registerEventlogReplay } from './commands/eventlog-replay.command';
import { registerEkInspect } from './commands/ek-inspect.command';
import { registerEkVerify } from './commands/ek-verify.command';
import { registerVendorCa } from './commands/vendor-ca.command';
import { registerInventory } from './commands/inventory.command';
import { CliError } from './cli-error';
import { endQuietlyOnClosedOutput } from './closed-output';
import { EXIT } from './exit-codes';
import { packageVersion } from './version';

/** `rackseal`: the operator CLI (server commands) and offline TPM tools. */
export function buildProgram(): Command {
  const program = new Command('rackseal')
    .description('rackseal operator CLI: cluster secrets released only to genuine, attested TPMs')
    .version(packageVersion())
    .showHelpAfterError()
    .exitOverride();
  registerAudit(program);
  registerToken(program);
  registerMigrate(program);
  registerCredentialMake(program);
  registerSeal(program);
  registerQuoteVerify(program);
  registerEventlogReplay(program);
  registerEkInspect(program);
  registerEkVerify(program);
  registerVendorCa(program);
  registerInventory(program);
  registerMachines(program);
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
      process.stderr.write(`rackseal: ${error.message}\n`);
      process.exitCode = error.exitCode;
      return;
    }
    process.stderr.write(`rackseal: ${(error as Error).message}\n`);
    process.exitCode = EXIT.usage;
  }
}

endQuietlyOnClosedOutput('rackseal');
void main();
