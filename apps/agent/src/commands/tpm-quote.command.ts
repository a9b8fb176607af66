import { join } from 'node:path';
import {
  AK_TEMPLATE_ECC,
  AK_TEMPLATE_RSA,
  createAttestationKey,
  type EkKind,
  formatPcrSelection,
  getEndorsementKey,
  parsePcrSelection,
  quotePcrs,
  type TPML_PCR_SELECTION,
  withTpmScope,
} from '@rackseal/tpm2';
import type { Command } from 'commander';
import { CliError, ensureDirectory, parseHexOption, writeOutput } from '@rackseal/command-line';
import { DEFAULT_TPM_DEVICE, withTpmDevice } from '../tpm-device';

interface TpmQuoteOptions {
  tpm: string;
  selection: string;
  nonce: string;
  outDir: string;
  ek: string;
  ak: string;
}

const EK_KINDS: readonly EkKind[] = ['rsa-2048', 'ecc-p256', 'ecc-p384'];
const AK_TEMPLATES = { rsa: AK_TEMPLATE_RSA, ecc: AK_TEMPLATE_ECC } as const;

/**
 * `rackseal-agent tpm quote`: a fresh AK under the EK quotes a PCR selection over a nonce, and the
 * result is written as tpm2-tools writes it (DESIGN §4), so `tpm2_checkquote` and `rackseal quote
 * verify` check it unchanged: ak.pub (TPM2B_PUBLIC, the TPM's exact bytes), q.msg (TPMS_ATTEST),
 * q.sig (TPMT_SIGNATURE), q.pcrs (the values in selection order, as `tpm2_quote -o -F values`).
 * The AK and every session are flushed before the command ends: swtpm has no resource manager.
 */
export function registerTpmQuote(tpm: Command): void {
  tpm
    .command('quote')
    .description('create an AK under the EK and quote PCRs with it, writing ak.pub, q.msg, q.sig and q.pcrs (tpm2-tools formats)')
    .option('--tpm <device>', 'TPM device: /dev/tpmrm0, /dev/tpm0 or swtpm:HOST:PORT', DEFAULT_TPM_DEVICE)
    .requiredOption('--selection <banks>', 'PCRs to quote, e.g. sha256:0,7 or sha1:0+sha256:0,7')
    .requiredOption('--nonce <hex>', "qualifying data in hex ('' for none)")
    .requiredOption('--out-dir <dir>', 'where to write ak.pub, q.msg, q.sig and q.pcrs')
    .option('--ek <kind>', `the EK the AK is created under: ${EK_KINDS.join(', ')}`, 'rsa-2048')
    .option('--ak <type>', 'AK key type: ecc (ECDSA P-256 SHA256, the default: milliseconds to create) or rsa (RSASSA-SHA256)', 'ecc')
    .action(async (options: TpmQuoteOptions) => {
      // Every argument is checked before the TPM is touched: a usage error never costs a key.
      const selection = readSelection(options.selection);
      const nonce = parseHexOption(options.nonce, '--nonce', true);
      const ekKind = EK_KINDS.find((k) => k === options.ek);
      if (ekKind === undefined) {
        throw CliError.usage(`--ek must be one of ${EK_KINDS.join(', ')}`);
      }
      const template = options.ak === 'rsa' || options.ak === 'ecc' ? AK_TEMPLATES[options.ak] : undefined;
      if (template === undefined) {
        throw CliError.usage('--ak must be rsa or ecc');
      }
      ensureDirectory(options.outDir, '--out-dir');

      const { ak, quote } = await withTpmDevice(options.tpm, (client) =>
        withTpmScope(client, async (scope) => {
          const ek = await getEndorsementKey(scope, ekKind);
          const ak = await createAttestationKey(scope, ek, { template });
          return { ak, quote: await quotePcrs(scope, ak, selection, nonce) };
        }),
      );

      const files = {
        'ak.pub': Buffer.concat([u16(ak.public.raw.length), ak.public.raw]),
        'q.msg': quote.message,
        'q.sig': quote.signatureBytes,
        'q.pcrs': Buffer.concat(quote.pcrValues),
      };
      for (const [name, bytes] of Object.entries(files)) {
        writeOutput(join(options.outDir, name), bytes, name);
      }
      process.stdout.write(
        `quoted ${formatPcrSelection(selection)} with AK ${ak.name.toString('hex')} (under the ${ekKind} EK), ` +
          `nonce ${nonce.length === 0 ? '(empty)' : nonce.toString('hex')}\n` +
          `wrote ${Object.keys(files).map((name) => join(options.outDir, name)).join(', ')}\n`,
      );
    });
}

function u16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(value);
  return bytes;
}

function readSelection(text: string): TPML_PCR_SELECTION {
  try {
    return parsePcrSelection(text);
  } catch (error) {
    throw CliError.usage(`--selection: ${(error as Error).message}`);
  }
}
