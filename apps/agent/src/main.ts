#!/usr/bin/env node
import { packageVersion, runCommandLine } from '@rackseal/command-line';
import { Command } from 'commander';
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

void runCommandLine(buildProgram());
