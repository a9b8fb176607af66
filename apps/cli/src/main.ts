#!/usr/bin/env node
import { Command } from 'commander';
import { registerAudit } from './commands/audit.command';
import { registerToken } from './commands/token.command';
import { registerMigrate } from './commands/migrate.command';
import { registerDeliveries } from './commands/deliveries.command';
import { registerMachines } from './commands/machines.command';
import { registerPolicy } from './commands/policy.command';
import { registerCredentialMake } from './commands/credential-make.command';
import { registerSeal } from './commands/seal.command';
import { registerQuoteVerify } from './commands/quote-verify.command';
import { registerEventlogReplay } from './commands/eventlog-replay.command';
import { registerEkInspect } from './commands/ek-inspect.command';
import { registerEkVerify } from './commands/ek-verify.command';
import { registerVendorCa } from './commands/vendor-ca.command';
import { registerInventory } from './commands/inventory.command';
import { registerMasterKey } from './commands/master-key.command';
import { registerSecrets } from './commands/secrets.command';
import { registerCa } from './commands/ca.command';
import { packageVersion, runCommandLine } from '@rackseal/command-line';

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
  registerPolicy(program);
  registerMasterKey(program);
  registerSecrets(program);
  registerDeliveries(program);
  registerCa(program);
  return program;
}

void runCommandLine(buildProgram());
