import type { CommandSpec } from '@rackseal/command-line';
import { tpmInfoCommand } from './tpm-info.command';
import { tpmQuoteCommand } from './tpm-quote.command';

/** `rackseal-agent tpm …`: diagnostics that talk to the TPM only, no server (docs/architecture.md §6). */
export const tpmCommand: CommandSpec = {
  name: 'tpm',
  description: 'TPM diagnostics (no server needed)',
  subcommands: [tpmInfoCommand, tpmQuoteCommand],
};
