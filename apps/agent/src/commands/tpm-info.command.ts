import { type CommandSpec, TPM_DEVICE_OPTION } from '@rackseal/command-line';

export interface TpmInfoOptions {
  tpm: string;
  json?: boolean;
}

/**
 * `rackseal-agent tpm info`: answers "is this TPM usable by rackseal?" on a node, with no server
 * (docs/architecture.md §6). Exit 0 when at least one EK certificate is present and the TPM's EK is its key;
 * exit 1 (the report is still printed) when none is, as enrollment would then be refused.
 * The TPM and certificate code is loaded when the command runs, not for `--help` (the agent runs at boot).
 */
export const tpmInfoCommand: CommandSpec = {
  name: 'info',
  description: 'manufacturer, firmware, PCR banks and EK certificates of a TPM, and whether its EK matches them',
  options: [TPM_DEVICE_OPTION, { flags: '--json', description: 'machine-readable output on stdout' }],
  action: async (options) => (await import('./tpm-info.action')).runTpmInfo(options as unknown as TpmInfoOptions),
};
