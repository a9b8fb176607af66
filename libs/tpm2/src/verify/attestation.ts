import { KeyObject, timingSafeEqual } from 'node:crypto';
import { checkAkAttributes } from '../attributes';
import { TpmParseError } from '../codec/tpm-parse-error';
import { TPM_GENERATED_VALUE, TPM_ST } from '../constants';
import { KeyConversionError, publicKeyFromTpmt } from '../keys';
import { type AttestOf, type ParsedAttest, type TPMI_ST_ATTEST, unmarshalTpmsAttest } from '../structures/tpms-attest';
import { type TPMT_SIGNATURE, unmarshalTpmtSignature } from '../structures/tpmt-signature';
import type { TPMT_PUBLIC } from '../structures/tpmt-public';
import { checkSigningScheme, type SignatureRefusalReason, verifyTpmSignature } from './signature';

/**
 * Why an attestation (quote, certify, …) is refused. Every check that can fail has its own reason, so a
 * caller (the enrollment flow, the CLI, an auditor) can tell tampering from misconfiguration.
 */
export type AttestationRefusalReason =
  /** The signing key is not a restricted, TPM-bound signing key (checkAkAttributes). */
  | 'ak-attributes'
  /** A structure (TPMS_ATTEST, TPMT_SIGNATURE, a public area) does not parse; the message names the field. */
  | 'malformed'
  /** magic is not TPM_GENERATED_VALUE: the signed data was not made by a TPM. */
  | 'bad-magic'
  /** A TPMS_ATTEST of another type (a certify offered as a quote, …). */
  | 'wrong-type'
  /** extraData is not the verifier's nonce: a replay, or a quote made for someone else. */
  | 'nonce-mismatch'
  | SignatureRefusalReason;

export interface Refusal<R extends string> {
  readonly ok: false;
  readonly reason: R;
  readonly message: string;
}

/**
 * The signing key (AK). A TPMT_PUBLIC is checked in full: attributes (restricted signing, fixedTPM,
 * fixedParent, sensitiveDataOrigin) and the scheme it fixes. A bare KeyObject (a PEM file) carries no
 * TPMA_OBJECT, so with one only the signature is checked and the result says
 * `akAttributesChecked: false`: the caller must know from elsewhere that the key is a TPM's AK.
 */
export type SigningKey = TPMT_PUBLIC | KeyObject;

export interface AttestationInput {
  readonly akPublic: SigningKey;
  /** The raw TPMS_ATTEST bytes the signature covers (`tpm2_quote -m`, `tpm2_certify -o`). */
  readonly attest: Uint8Array;
  /** TPMT_SIGNATURE, parsed or as its bytes (`tpm2_quote -s`). */
  readonly signature: Uint8Array | TPMT_SIGNATURE;
  /** The qualifyingData the verifier gave the TPM; may be empty (real quotes without a nonce exist). */
  readonly nonce: Uint8Array;
}

export interface VerifiedAttestation<T extends TPMI_ST_ATTEST> {
  readonly ok: true;
  readonly attest: AttestOf<T> & { readonly raw: Buffer };
  readonly signature: TPMT_SIGNATURE;
  /** False when the AK was a bare public key, whose TPMA_OBJECT attributes could not be checked. */
  readonly akAttributesChecked: boolean;
}

const TYPE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(TPM_ST).map(([name, value]) => [value, name]),
);

function typeName(type: number): string {
  return TYPE_NAMES[type] ?? `0x${type.toString(16).padStart(4, '0')}`;
}

function hexOrEmpty(bytes: Uint8Array): string {
  return bytes.length === 0 ? '(empty)' : Buffer.from(bytes).toString('hex');
}

function parseFailure(what: string, error: unknown): Refusal<'malformed'> {
  if (error instanceof TpmParseError) {
    return { ok: false, reason: 'malformed', message: `${what}: ${error.message}` };
  }
  throw error;
}

/** Constant-time equality after a length check (the length of a nonce is no secret). */
export function nonceEquals(expected: Uint8Array, actual: Uint8Array): boolean {
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/**
 * The checks every TPM attestation (Part 3 §18) needs: the signing key is an AK, the
 * signature verifies over the raw TPMS_ATTEST with the AK's scheme, magic == TPM_GENERATED_VALUE, the
 * type is the one expected, and extraData equals the nonce. Returns a typed refusal, never throws for
 * bad input. verifyQuote and verifyCertify add their type's own checks.
 */
export function verifyAttestation<T extends TPMI_ST_ATTEST>(
  input: AttestationInput,
  expectedType: T,
): VerifiedAttestation<T> | Refusal<AttestationRefusalReason> {
  let key: KeyObject;
  let akAttributesChecked = false;
  let signerPublic: TPMT_PUBLIC | undefined;
  if (input.akPublic instanceof KeyObject) {
    key = input.akPublic;
  } else {
    signerPublic = input.akPublic;
    const attributes = checkAkAttributes(signerPublic);
    if (!attributes.ok) {
      return { ok: false, reason: 'ak-attributes', message: attributes.message };
    }
    akAttributesChecked = true;
    try {
      key = publicKeyFromTpmt(signerPublic);
    } catch (error) {
      const reason = error instanceof KeyConversionError ? 'unsupported-scheme' : 'malformed';
      return { ok: false, reason, message: `AK public key unusable: ${(error as Error).message}` };
    }
  }

  let signature: TPMT_SIGNATURE;
  if (input.signature instanceof Uint8Array) {
    try {
      signature = unmarshalTpmtSignature(input.signature);
    } catch (error) {
      return parseFailure('signature', error);
    }
  } else {
    signature = input.signature;
  }

  if (signerPublic !== undefined) {
    const scheme = checkSigningScheme(signerPublic, signature);
    if (!scheme.ok) {
      return scheme;
    }
  }
  const signed = verifyTpmSignature(key, input.attest, signature);
  if (!signed.ok) {
    return signed;
  }

  let attest: ParsedAttest;
  try {
    attest = unmarshalTpmsAttest(input.attest);
  } catch (error) {
    return parseFailure('attestation', error);
  }
  if (attest.magic !== TPM_GENERATED_VALUE) {
    return {
      ok: false,
      reason: 'bad-magic',
      message: `magic is 0x${attest.magic.toString(16).padStart(8, '0')}, not TPM_GENERATED_VALUE 0xff544347: not TPM-generated data`,
    };
  }
  if (attest.type !== expectedType) {
    return { ok: false, reason: 'wrong-type', message: `attestation is ${typeName(attest.type)}, expected ${typeName(expectedType)}` };
  }
  if (!nonceEquals(input.nonce, attest.extraData)) {
    return {
      ok: false,
      reason: 'nonce-mismatch',
      message: `extraData is ${hexOrEmpty(attest.extraData)}, the expected nonce is ${hexOrEmpty(input.nonce)}`,
    };
  }
  return { ok: true, attest: attest as AttestOf<T> & { readonly raw: Buffer }, signature, akAttributesChecked };
}
