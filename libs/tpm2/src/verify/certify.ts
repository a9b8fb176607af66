import { TpmParseError } from '../codec/tpm-parse-error';
import { TPM_ST } from '../constants';
import { objectName } from '../names';
import { type ParsedPublic, type TPMT_PUBLIC, unmarshalTpmtPublic } from '../structures/tpmt-public';
import { type AttestationInput, type AttestationRefusalReason, type Refusal, type VerifiedAttestation, verifyAttestation } from './attestation';

export type CertifyRefusalReason =
  | AttestationRefusalReason
  /** The certified Name is not nameAlg ‖ H(the public area offered): the TPM certified another object. */
  | 'name-mismatch';

export interface CertifyInput extends AttestationInput {
  /**
   * The public area claimed for the certified object: its exact TPMT_PUBLIC bytes (hashed as given),
   * or a parsed one (hashed from its `raw` bytes when it has them).
   */
  readonly certifiedPublic: Uint8Array | TPMT_PUBLIC;
}

export type VerifiedCertify = VerifiedAttestation<typeof TPM_ST.TPM_ST_ATTEST_CERTIFY> & {
  /** The certified object's public area, now proven to be loaded in the AK's TPM. */
  readonly certified: TPMT_PUBLIC | ParsedPublic;
};

/**
 * Verifies a TPM2_Certify (Part 3 §18.2) by an AK over `nonce`: the checks of every attestation
 * (verifyAttestation: AK attributes, scheme, signature, magic, type TPM_ST_ATTEST_CERTIFY, nonce) and
 * then that the certified Name is nameAlg ‖ H_nameAlg(certifiedPublic), so the TPM vouches for exactly
 * that public area. Whether the certified key's own attributes are acceptable is the caller's policy
 * (e.g. checkCertifiedKeyAttributes). Never throws for bad input.
 */
export function verifyCertify(input: CertifyInput): VerifiedCertify | Refusal<CertifyRefusalReason> {
  let certified: TPMT_PUBLIC | ParsedPublic;
  if (input.certifiedPublic instanceof Uint8Array) {
    try {
      certified = unmarshalTpmtPublic(input.certifiedPublic);
    } catch (error) {
      if (error instanceof TpmParseError) {
        return { ok: false, reason: 'malformed', message: `certified public area: ${error.message}` };
      }
      throw error;
    }
  } else {
    certified = input.certifiedPublic;
  }

  const verified = verifyAttestation(input, TPM_ST.TPM_ST_ATTEST_CERTIFY);
  if (!verified.ok) {
    return verified;
  }
  const expected = objectName(certified);
  const { name } = verified.attest.attested;
  if (!expected.equals(name)) {
    return {
      ok: false,
      reason: 'name-mismatch',
      message: `certified Name is ${name.toString('hex')}, the public area offered has Name ${expected.toString('hex')}`,
    };
  }
  return { ...verified, certified };
}
