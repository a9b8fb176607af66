#!/usr/bin/env node
// Single files of @rackseal/command-line rather than its index, which loads them all: the agent
// starts at boot (bench/README.md, agent-startup).
import type { ProgramSpec } from '@rackseal/command-line/command-tree';
import { runCommandLine } from '@rackseal/command-line/run-command-line';
import { packageVersion } from '@rackseal/command-line/version';
import { enrollCommand, runCommand, statusCommand, tpmCommand, unlockCommand } from './commands/tpm.command';

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
    version: packageVersion,
    subcommands: [enrollCommand, statusCommand, runCommand, unlockCommand, tpmCommand],
  };
}

void runCommandLine(agentProgram());
