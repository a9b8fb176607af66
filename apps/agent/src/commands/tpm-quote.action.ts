import { join } from 'node:path';
import {
  AK_TEMPLATE_ECC,
  AK_TEMPLATE_RSA,
  createAttestationKey,
  formatPcrSelection,
  getEndorsementKey,
  parsePcrSelection,
  quotePcrs,
  type TPML_PCR_SELECTION,
  withTpmScope,
} from '@rackseal/tpm2';
import { CliError, ensureDirectory, parseHexOption, writeOutput } from '@rackseal/command-line';
import { withTpmDevice } from '../tpm-device';
import { EK_KINDS, type TpmQuoteOptions } from './tpm.command';

const AK_TEMPLATES = { rsa: AK_TEMPLATE_RSA, ecc: AK_TEMPLATE_ECC } as const;

/** Runs `rackseal-agent tpm quote` (see tpmQuoteCommand). */
export async function runTpmQuote(options: TpmQuoteOptions): Promise<void> {
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
