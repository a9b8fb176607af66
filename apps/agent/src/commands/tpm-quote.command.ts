import { type CommandSpec, TPM_DEVICE_OPTION } from '@rackseal/command-line';
import type { EkKind } from '@rackseal/tpm2';

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
 * The TPM code is loaded when the command runs, not for `--help` (the agent runs at boot).
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
