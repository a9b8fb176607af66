import {
  CredentialTooLargeError,
  makeCredential,
  marshalCredentialFile,
  ObjectNameError,
  ProtectorKeyError,
} from '@rackseal/tpm2';
import type { Command } from 'commander';
import { CliError, parseHexOption, readInput, writeOutput } from '@rackseal/command-line';
import { readEkPublic } from '../public-key-input';

interface CredentialMakeOptions {
  ek: string;
  name: string;
  secret: string;
  out: string;
}

/**
 * `rackseal credential make`: TPM2_MakeCredential offline, for the TPM whose EK is given, bound to the
 * AK Name; the output is tpm2-tools' credential file, for `tpm2_activatecredential -i`.
 * Exit 1 when the EK cannot protect a credential (not a storage key, unsupported symmetric
 * definition); exit 2 for unreadable input, a malformed Name or a secret over the EK's digest size.
 */
export function runCredentialMake(options: CredentialMakeOptions): void {
  const ekPublic = readEkPublic(options.ek);
  const akName = parseHexOption(options.name, '--name');
  const secret = readInput(options.secret, '--secret');
  let made;
  try {
    made = makeCredential(ekPublic, akName, secret);
  } catch (error) {
    if (error instanceof ObjectNameError || error instanceof CredentialTooLargeError) {
      throw CliError.usage(error.message);
    }
    if (error instanceof ProtectorKeyError) {
      throw CliError.invalid(`--ek: ${error.message}`);
    }
    throw error;
  }
  writeOutput(options.out, marshalCredentialFile(made), '--out');
}

export function registerCredentialMake(program: Command): void {
  const credential = program.command('credential').description('credential activation tools (TPM2_MakeCredential offline)');
  credential
    .command('make')
    .description('make a credential for tpm2_activatecredential (tpm2-tools 0xBADCC0DE file format)')
    .requiredOption('--ek <file>', 'EK: TPM2B_PUBLIC file, PEM/DER public key or EK certificate')
    .requiredOption('--name <hex>', 'Name of the key the credential is bound to (the AK): nameAlg ‖ digest')
    .requiredOption('--secret <file>', 'the credential, at most the EK nameAlg digest size (32 bytes for SHA-256)')
    .requiredOption('--out <file>', 'credential file to write (mode 0600)')
    .action((options: CredentialMakeOptions) => runCredentialMake(options));
}
