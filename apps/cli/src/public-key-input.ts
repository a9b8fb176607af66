import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { ekPublicFromKey, KeyConversionError, type ParsedPublic, type TPMT_PUBLIC, TpmParseError, unmarshalTpm2bPublic, unmarshalTpmtPublic } from '@rackseal/tpm2';
import { CliError, readInput } from '@rackseal/command-line';

/**
 * A TPM key given on the command line, in whichever form the operator has it:
 * - `public-area`: a TPM2B_PUBLIC file (`tpm2_readpublic -o`, `tpm2_createak -u`) or a bare
 *   TPMT_PUBLIC (as go-attestation stores AKs): the exact public area, attributes included;
 * - `key`: a PEM or DER public key (SPKI) or X.509 certificate (an EK certificate), only the key.
 */
export type PublicInput =
  | { readonly kind: 'public-area'; readonly public: ParsedPublic }
  | { readonly kind: 'key'; readonly key: KeyObject; readonly certificate?: X509Certificate };

// Anywhere in the file: `openssl x509 -text` output puts the dump before the PEM block, and OpenSSL skips it.
const PEM = /-----BEGIN ([A-Z0-9 ]+)-----/;

function fromPem(bytes: Buffer, flag: string): PublicInput {
  const label = PEM.exec(bytes.toString('latin1'))?.[1];
  try {
    if (label === 'CERTIFICATE') {
      const certificate = new X509Certificate(bytes);
      return { kind: 'key', key: certificate.publicKey, certificate };
    }
    if (label === 'PUBLIC KEY' || label === 'RSA PUBLIC KEY') {
      return { kind: 'key', key: createPublicKey(bytes) };
    }
  } catch (error) {
    throw CliError.usage(`${flag}: malformed PEM ${label}: ${(error as Error).message}`);
  }
  throw CliError.usage(`${flag}: PEM "${label ?? '?'}" is neither a public key nor a certificate`);
}

/**
 * Reads a public key input (`--ek`, `--ak`). Unreadable or unrecognisable input is a usage error
 * (exit 2); for a binary file that is none of the three forms, the TPM2B_PUBLIC parse error is the
 * one reported, since that is the format tpm2-tools writes.
 */
export function readPublicInput(path: string, flag: string): PublicInput {
  const bytes = readInput(path, flag);
  if (PEM.test(bytes.toString('latin1'))) {
    return fromPem(bytes, flag);
  }
  let parseError: TpmParseError;
  try {
    return { kind: 'public-area', public: unmarshalTpm2bPublic(bytes) };
  } catch (error) {
    if (!(error instanceof TpmParseError)) {
      throw error;
    }
    parseError = error;
  }
  try {
    return { kind: 'public-area', public: unmarshalTpmtPublic(bytes) };
  } catch {
    // not a bare TPMT_PUBLIC either
  }
  // DER: a certificate, or a bare SubjectPublicKeyInfo.
  try {
    const certificate = new X509Certificate(bytes);
    return { kind: 'key', key: certificate.publicKey, certificate };
  } catch {
    // not a certificate
  }
  try {
    return { kind: 'key', key: createPublicKey({ key: bytes, format: 'der', type: 'spki' }) };
  } catch {
    // not an SPKI either
  }
  throw CliError.usage(
    `${flag} ${JSON.stringify(path)} is not a TPM2B_PUBLIC (${parseError.message}), nor a TPMT_PUBLIC, PEM/DER public key or certificate`,
  );
}

/**
 * The EK's public area for `--ek`: the TPM2B_PUBLIC as given, or, for a key or EK certificate, the
 * TCG default EK template its algorithm implies (RSA-2048 → L-1, P-256 → L-2, P-384 → H-3), which
 * fixes the nameAlg and symmetric definition MakeCredential and import blobs depend on.
 */
export function readEkPublic(path: string, flag = '--ek'): TPMT_PUBLIC {
  const input = readPublicInput(path, flag);
  if (input.kind === 'public-area') {
    return input.public;
  }
  try {
    return ekPublicFromKey(input.key);
  } catch (error) {
    if (error instanceof KeyConversionError) {
      throw CliError.usage(`${flag}: ${error.message}`);
    }
    throw error;
  }
}
