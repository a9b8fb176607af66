import { TPM_DEVICE_OPTION } from '@rackseal/command-line';
import type { Command } from 'commander';

export interface TpmInfoOptions {
  tpm: string;
  json?: boolean;
}

/**
 * `rackseal-agent tpm info`: answers "is this TPM usable by rackseal?" on a node, with no server
 * (DESIGN §4). Exit 0 when at least one EK certificate is present and the TPM's EK is its key;
 * exit 1 (the report is still printed) when none is, as enrollment would then be refused.
 * The TPM and certificate code is loaded when the command runs, not for `--help` (the agent runs at boot).
 */
export function registerTpmInfo(tpm: Command): void {
  tpm
    .command('info')
    .description('manufacturer, firmware, PCR banks and EK certificates of a TPM, and whether its EK matches them')
    .option(TPM_DEVICE_OPTION.flags, TPM_DEVICE_OPTION.description, TPM_DEVICE_OPTION.defaultValue)
    .option('--json', 'machine-readable output on stdout')
    .action(async (options: TpmInfoOptions) => (await import('./tpm-info.action')).runTpmInfo(options));
}
