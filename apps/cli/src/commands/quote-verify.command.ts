import {
  algName,
  formatPcrSelection,
  objectName,
  parsePcrSelection,
  pcrValuesLength,
  signatureHash,
  type SigningKey,
  splitPcrValues,
  TpmParseError,
  type TPML_PCR_SELECTION,
  type TPMT_SIGNATURE,
  unmarshalTpmsAttest,
  unmarshalTpmtSignature,
  verifyQuote,
  type VerifiedQuote,
} from '@rackseal/tpm2';
import type { Command } from 'commander';
import { CliError, parseHexOption, readInput } from '@rackseal/command-line';
import { readPublicInput } from '../public-key-input';
import { terminalJson } from '../terminal-text';

interface QuoteVerifyOptions {
  ak: string;
  msg: string;
  sig: string;
  pcrs: string;
  selection: string;
  nonce: string;
  json?: boolean;
}

/**
 * `rackseal quote verify`: checks offline, with no server and no TPM, a quote as `tpm2_quote -m q.msg
 * -s q.sig -o q.pcrs -F values` writes it (docs/architecture.md §5). Exit 0 valid, 1 refused (the reason on stderr),
 * 2 usage or unreadable/malformed input: every file is parsed before anything is verified, so a file
 * that is not what its flag says is a usage error, and exit 1 always means "well-formed, and refused".
 *
 * --ak takes a TPM2B_PUBLIC (tpm2_createak -u, tpm2_readpublic -o), a bare TPMT_PUBLIC (as
 * go-attestation stores AKs), or a PEM public key. A PEM key carries no TPMA_OBJECT: the signature,
 * nonce and PCR digest are still verified, but not that the key is a restricted, fixedTPM signing key
 * nor the scheme it fixes — so the command says so on stderr and reports akAttributesChecked: false.
 */
export function registerQuoteVerify(program: Command): void {
  const quote = program.command('quote').description('TPM quote tools (offline)');
  quote
    .command('verify')
    .description('verify a TPM2_Quote (tpm2_quote -m/-s/-o -F values) against an AK, a nonce and a PCR selection')
    .requiredOption('--ak <file>', 'AK public key: TPM2B_PUBLIC (tpm2_createak -u), TPMT_PUBLIC or PEM')
    .requiredOption('--msg <file>', 'the quoted TPMS_ATTEST (tpm2_quote -m)')
    .requiredOption('--sig <file>', 'the TPMT_SIGNATURE (tpm2_quote -s)')
    .requiredOption('--pcrs <file>', 'PCR values concatenated in selection order (tpm2_quote -o FILE -F values)')
    .requiredOption('--selection <banks>', 'the PCR selection asked for, e.g. sha256:0,7 or sha1:0+sha256:0,7')
    .requiredOption('--nonce <hex>', "the qualifying data given to tpm2_quote -q, in hex ('' for none)")
    .option('--json', 'machine-readable output on stdout')
    .action((options: QuoteVerifyOptions) => {
      const selection = readSelection(options.selection);
      const nonce = parseHexOption(options.nonce, '--nonce', true);
      const ak = readAk(options.ak);
      const attest = readInput(options.msg, '--msg');
      parseOrUsage(() => unmarshalTpmsAttest(attest), `--msg ${JSON.stringify(options.msg)} is not a TPMS_ATTEST`);
      const signature = parseOrUsage(
        () => unmarshalTpmtSignature(readInput(options.sig, '--sig')),
        `--sig ${JSON.stringify(options.sig)} is not a TPMT_SIGNATURE`,
      );
      const pcrFile = readInput(options.pcrs, '--pcrs');
      const pcrValues = splitPcrValues(selection, pcrFile);
      if (pcrValues === undefined) {
        throw CliError.usage(
          `--pcrs ${JSON.stringify(options.pcrs)} holds ${pcrFile.length} bytes; ${formatPcrSelection(selection)} needs ${pcrValuesLength(selection)}`,
        );
      }
      if (!ak.checked) {
        process.stderr.write(
          'rackseal: warning: --ak is a bare public key (PEM): its TPM object attributes and signing scheme ' +
            'cannot be checked; only the signature, nonce and PCR digest are verified\n',
        );
      }

      const result = verifyQuote({ akPublic: ak.key, attest, signature, nonce, pcrValues, selection });
      if (!result.ok) {
        if (options.json) {
          process.stdout.write(`${terminalJson({ valid: false, reason: result.reason, message: result.message })}\n`);
        }
        const message = `quote refused (${result.reason}): ${result.message}`;
        throw result.reason === 'malformed' ? CliError.usage(message) : CliError.invalid(message);
      }
      process.stdout.write(options.json ? `${terminalJson(summaryJson(result, ak))}\n` : summaryText(result, ak));
    });
}

interface AkInput {
  readonly key: SigningKey;
  /** Whether the AK's TPMA_OBJECT attributes and scheme can be checked (not for a bare PEM key). */
  readonly checked: boolean;
  /** The AK's Name, when it came as a public area. */
  readonly name?: Buffer;
}

function readAk(path: string): AkInput {
  const input = readPublicInput(path, '--ak');
  if (input.kind === 'public-area') {
    return { key: input.public, checked: true, name: objectName(input.public) };
  }
  if (input.key.asymmetricKeyType !== 'rsa' && input.key.asymmetricKeyType !== 'ec') {
    throw CliError.usage(`--ak ${JSON.stringify(path)}: a ${input.key.asymmetricKeyType ?? 'non-asymmetric'} key cannot be an AK`);
  }
  return { key: input.key, checked: false };
}

function readSelection(text: string): TPML_PCR_SELECTION {
  try {
    return parsePcrSelection(text);
  } catch (error) {
    throw CliError.usage(`--selection: ${(error as Error).message}`);
  }
}

function parseOrUsage<T>(parse: () => T, what: string): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof TpmParseError) {
      throw CliError.usage(`${what}: ${error.message}`);
    }
    throw error;
  }
}

function schemeName(signature: TPMT_SIGNATURE): string {
  const hash = signatureHash(signature);
  const short = (alg: number): string => algName(alg).replace(/^TPM_ALG_/, '').toLowerCase();
  return hash === undefined ? short(signature.sigAlg) : `${short(signature.sigAlg)}-${short(hash)}`;
}

function summaryJson(result: VerifiedQuote, ak: AkInput): object {
  const pcrs: Record<string, Record<string, string>> = {};
  for (const pcr of result.pcrs) {
    (pcrs[pcr.bank] ??= {})[String(pcr.index)] = pcr.value.toString('hex');
  }
  const { clockInfo } = result.attest;
  return {
    valid: true,
    akName: ak.name?.toString('hex') ?? null,
    akAttributesChecked: result.akAttributesChecked,
    qualifiedSigner: result.attest.qualifiedSigner.toString('hex'),
    signature: schemeName(result.signature),
    nonce: result.attest.extraData.toString('hex'),
    selection: formatPcrSelection(result.attest.attested.pcrSelect),
    pcrDigest: result.attest.attested.pcrDigest.toString('hex'),
    pcrs,
    clockInfo: {
      clock: clockInfo.clock.toString(),
      resetCount: clockInfo.resetCount,
      restartCount: clockInfo.restartCount,
      safe: clockInfo.safe,
    },
    firmwareVersion: result.attest.firmwareVersion.toString(16).padStart(16, '0'),
  };
}

function summaryText(result: VerifiedQuote, ak: AkInput): string {
  const { attest } = result;
  const lines = [
    `quote valid: ${formatPcrSelection(attest.attested.pcrSelect)}, ${schemeName(result.signature)}, nonce ${attest.extraData.length === 0 ? '(empty)' : attest.extraData.toString('hex')}`,
    `  signer: ${ak.name === undefined ? 'PEM public key (AK attributes not checked)' : `AK ${ak.name.toString('hex')}`}`,
    `  qualifiedSigner: ${attest.qualifiedSigner.toString('hex')}`,
    `  clock: ${attest.clockInfo.clock} ms, resetCount ${attest.clockInfo.resetCount}, restartCount ${attest.clockInfo.restartCount}, safe ${attest.clockInfo.safe ? 'yes' : 'no'}`,
    ...result.pcrs.map((pcr) => `  ${pcr.bank}:${pcr.index} ${pcr.value.toString('hex')}`),
  ];
  return `${lines.join('\n')}\n`;
}
