import { EkCertificateError, readCertificate, type ReadCertificate } from '@rackseal/ek-trust';
import { ekPubHash, ekPublicFromKey, isHashAlgorithm, type ParsedPublic, type TPMT_PUBLIC, TpmParseError, unmarshalTpm2bPublic } from '@rackseal/tpm2';
import { AttestationError } from './attestation-errors';

/**
 * The start request's key material read into typed values; each failure is `attestation.malformed`
 * naming the field, never a parser exception reaching the HTTP layer.
 */

/** A TPM2B_PUBLIC field (TPM 2.0 Part 2 §12.2.5). */
export function parsePublic(field: string, bytes: Buffer): ParsedPublic {
  try {
    return unmarshalTpm2bPublic(bytes);
  } catch (error) {
    if (error instanceof TpmParseError) {
      throw new AttestationError('attestation.malformed', `${field} is not a TPM2B_PUBLIC: ${error.message}`);
    }
    throw error;
  }
}

export function readEkCertificate(der: Buffer): ReadCertificate {
  try {
    return readCertificate(der);
  } catch (error) {
    if (error instanceof EkCertificateError) {
      throw new AttestationError('attestation.malformed', `ekCertificate cannot be read: ${error.message}`);
    }
    throw error;
  }
}

/** The inventory's key for an EK sent as a public area (cert-less rows). */
export function publicHash(pub: TPMT_PUBLIC): string {
  if (!isHashAlgorithm(pub.nameAlg)) {
    throw new AttestationError('attestation.malformed', 'ekPublic names no hash algorithm this server implements');
  }
  try {
    return ekPubHash(pub);
  } catch (error) {
    throw new AttestationError('attestation.malformed', `ekPublic is not an RSA or ECC public key: ${(error as Error).message}`);
  }
}

/** The EK public area implied by the certificate's key under the default EK templates. */
export function ekPublicFromCertificate(cert: ReadCertificate): TPMT_PUBLIC {
  try {
    return ekPublicFromKey(cert.certificate.publicKey);
  } catch (error) {
    throw new AttestationError('attestation.malformed', `no EK template for the certificate's key (send ekPublic): ${(error as Error).message}`);
  }
}
