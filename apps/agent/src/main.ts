#!/usr/bin/env node
import { packageVersion, type ProgramSpec, runCommandLine } from '@rackseal/command-line';
import { tpmCommand } from './commands/tpm.command';

/**
 * `rackseal-agent`: the node-side agent. It enrolls the machine with its TPM, receives wrapped
 * secrets and unwraps them only inside that TPM. It must run in an initramfs: it speaks TPM 2.0
 * itself (libs/tpm2) and loads no Nest, TypeORM or other server code. It starts at boot, so its
 * commands are described without loading their code (see libs/command-line's command-tree.ts).
 */
export function agentProgram(): ProgramSpec {
  return {
    name: 'rackseal-agent',
    description: 'rackseal node agent: proves this machine with its TPM and unwraps its secrets inside it',
    version: packageVersion(),
    subcommands: [tpmCommand],
  };
}

void runCommandLine(agentProgram());
