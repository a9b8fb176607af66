import type { CommandSpec } from '@rackseal/command-line/command-tree';
import type { EkKind } from '@rackseal/tpm2';

/*
 * `rackseal-agent tpm …` described as data, each command's code in its *.action.ts, loaded by
 * `import()` when that command runs. The descriptions share one file on purpose: `--help` runs at
 * boot, and every file it loads costs a module resolution (bench/README.md, agent-startup).
 */

/** The kernel resource manager, which flushes what a crashed agent leaves behind. */
const DEFAULT_TPM_DEVICE = '/dev/tpmrm0';

/**
 * `--tpm <device>` of every `tpm` command. Its strings live here rather than in `@rackseal/tpm2`
 * (whose openTransport parses the forms) so that `--help` does not load the TPM library.
 */
export const TPM_DEVICE_OPTION = {
  flags: '--tpm <device>',
  description: 'TPM device: /dev/tpmrm0, /dev/tpm0 or swtpm:HOST:PORT',
  defaultValue: DEFAULT_TPM_DEVICE,
} as const;

export interface TpmInfoOptions {
  tpm: string;
  json?: boolean;
}

/**
 * `rackseal-agent tpm info`: answers "is this TPM usable by rackseal?" on a node, with no server
 * (docs/architecture.md §6). Exit 0 when at least one EK certificate is present and the TPM's EK is its key;
 * exit 1 (the report is still printed) when none is, as enrollment would then be refused.
 */
export const tpmInfoCommand: CommandSpec = {
  name: 'info',
  description: 'manufacturer, firmware, PCR banks and EK certificates of a TPM, and whether its EK matches them',
  options: [TPM_DEVICE_OPTION, { flags: '--json', description: 'machine-readable output on stdout' }],
  action: async (options) => (await import('./tpm-info.action')).runTpmInfo(options as unknown as TpmInfoOptions),
};

export interface TpmQuoteOptions {
  tpm: string;
  selection: string;
  nonce: string;
  outDir: string;
  ek: string;
  ak: string;
}

/** The EKs an AK can be created under (libs/tpm2's EkKind). */
export const EK_KINDS = ['rsa-2048', 'ecc-p256', 'ecc-p384'] as const satisfies readonly EkKind[];

/**
 * `rackseal-agent tpm quote`: a fresh AK under the EK quotes a PCR selection over a nonce, and the
 * result is written as tpm2-tools writes it (docs/architecture.md §6), so `tpm2_checkquote` and `rackseal quote
 * verify` check it unchanged: ak.pub (TPM2B_PUBLIC, the TPM's exact bytes), q.msg (TPMS_ATTEST),
 * q.sig (TPMT_SIGNATURE), q.pcrs (the values in selection order, as `tpm2_quote -o -F values`).
 * The AK and every session are flushed before the command ends: swtpm has no resource manager.
 */
export const tpmQuoteCommand: CommandSpec = {
  name: 'quote',
  description: 'create an AK under the EK and quote PCRs with it, writing ak.pub, q.msg, q.sig and q.pcrs (tpm2-tools formats)',
  options: [
    TPM_DEVICE_OPTION,
    { flags: '--selection <banks>', description: 'PCRs to quote, e.g. sha256:0,7 or sha1:0+sha256:0,7', required: true },
    { flags: '--nonce <hex>', description: "qualifying data in hex ('' for none)", required: true },
    { flags: '--out-dir <dir>', description: 'where to write ak.pub, q.msg, q.sig and q.pcrs', required: true },
    { flags: '--ek <kind>', description: `the EK the AK is created under: ${EK_KINDS.join(', ')}`, defaultValue: 'rsa-2048' },
    { flags: '--ak <type>', description: 'AK key type: ecc (ECDSA P-256 SHA256, the default: milliseconds to create) or rsa (RSASSA-SHA256)', defaultValue: 'ecc' },
  ],
  action: async (options) => (await import('./tpm-quote.action')).runTpmQuote(options as unknown as TpmQuoteOptions),
};

/** `rackseal-agent tpm …`: diagnostics that talk to the TPM only, no server (docs/architecture.md §6). */
export const tpmCommand: CommandSpec = {
  name: 'tpm',
  description: 'TPM diagnostics (no server needed)',
  subcommands: [tpmInfoCommand, tpmQuoteCommand],
};
