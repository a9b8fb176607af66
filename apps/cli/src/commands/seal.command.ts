import {
  createImportBlob,
  parsePcrSelection,
  parsePcrValues,
  PcrSelectionSyntaxError,
  PcrValuesLengthError,
  PolicyDigest,
  ProtectorKeyError,
  SealedDataTooLargeError,
  TPM_ALG_ID,
  type TPML_PCR_SELECTION,
} from '@rackseal/tpm2';
import type { Command } from 'commander';
import { join } from 'node:path';
import { CliError, ensureDirectory, readInput, writeOutput } from '@rackseal/command-line';
import { readEkPublic } from '../public-key-input';

interface SealOptions {
  ek: string;
  pcrs?: string;
  pcrValues?: string;
  secret: string;
  outDir: string;
}

/** The sealed object's nameAlg, and so the hash of its PolicyPCR digest (the agent's policy session too). */
const SEALED_NAME_ALG = TPM_ALG_ID.TPM_ALG_SHA256;

function pcrPolicy(pcrs: string, pcrValuesPath: string): Buffer {
  let selection: TPML_PCR_SELECTION;
  try {
    selection = parsePcrSelection(pcrs);
  } catch (error) {
    if (error instanceof PcrSelectionSyntaxError) {
      throw CliError.usage(`--pcrs: ${error.message}`);
    }
    throw error;
  }
  try {
    const values = parsePcrValues(selection, readInput(pcrValuesPath, '--pcr-values'));
    return new PolicyDigest(SEALED_NAME_ALG).pcr(selection, values).digest;
  } catch (error) {
    if (error instanceof PcrValuesLengthError) {
      throw CliError.usage(`--pcr-values: ${error.message}`);
    }
    throw error;
  }
}

/**
 * `rackseal seal`: seals a secret (≤ 128 bytes, MAX_SYM_DATA) to a TPM offline as an import blob under
 * its EK, optionally bound by PolicyPCR to expected PCR values; writes obj.pub, obj.dpriv and obj.seed
 * for `tpm2_import -u obj.pub -i obj.dpriv -s obj.seed`. Without --pcrs the object has no policy
 * and unseals with the empty password. Exit 1 when the EK cannot be a parent; exit 2 for unreadable
 * or malformed input, including PCR values of the wrong length and a secret over 128 bytes.
 */
export function runSeal(options: SealOptions): void {
  if ((options.pcrs === undefined) !== (options.pcrValues === undefined)) {
    throw CliError.usage('--pcrs and --pcr-values go together');
  }
  const ekPublic = readEkPublic(options.ek);
  const authPolicy = options.pcrs === undefined || options.pcrValues === undefined ? undefined : pcrPolicy(options.pcrs, options.pcrValues);
  const secret = readInput(options.secret, '--secret');
  let blob;
  try {
    blob = createImportBlob(ekPublic, secret, { authPolicy, nameAlg: SEALED_NAME_ALG });
  } catch (error) {
    if (error instanceof SealedDataTooLargeError) {
      throw CliError.usage(`--secret: ${error.message}`);
    }
    if (error instanceof ProtectorKeyError) {
      throw CliError.invalid(`--ek: ${error.message}`);
    }
    throw error;
  }
  ensureDirectory(options.outDir, '--out-dir');
  writeOutput(join(options.outDir, 'obj.pub'), blob.public, 'obj.pub');
  writeOutput(join(options.outDir, 'obj.dpriv'), blob.duplicate, 'obj.dpriv');
  writeOutput(join(options.outDir, 'obj.seed'), blob.inSymSeed, 'obj.seed');
}

export function registerSeal(program: Command): void {
  program
    .command('seal')
    .description('seal a secret to a TPM as an import blob under its EK (for tpm2_import), optionally bound to PCR values')
    .requiredOption('--ek <file>', 'EK: TPM2B_PUBLIC file, PEM/DER public key or EK certificate')
    .option('--pcrs <selection>', 'PCR selection for a PolicyPCR policy, e.g. sha256:0,7')
    .option('--pcr-values <file>', 'expected PCR values, concatenated in selection order')
    .requiredOption('--secret <file>', 'the data to seal, at most 128 bytes')
    .requiredOption('--out-dir <dir>', 'directory for obj.pub, obj.dpriv and obj.seed')
    .action((options: SealOptions) => runSeal(options));
}
