import type { Command } from 'commander';
import { registerTpmInfo } from './tpm-info.command';
import { registerTpmQuote } from './tpm-quote.command';

/** `rackseal-agent tpm …`: diagnostics that talk to the TPM only, no server (docs/architecture.md §6). */
export function registerTpm(program: Command): void {
  const tpm = program.command('tpm').description('TPM diagnostics (no server needed)');
  registerTpmInfo(tpm);
  registerTpmQuote(tpm);
}
