import { parseExact, type TpmReader } from '../codec/tpm-reader';
import { marshal, type TpmWriter } from '../codec/tpm-writer';
import { algName, TPM_ALG_ID } from '../constants';
import { hashAlgorithm, isHashAlgorithm } from '../hash-algorithms';

// Part 2 §11.2.4.5 TPM2B_PUBLIC_KEY_RSA and §11.2.5.1 TPM2B_ECC_PARAMETER are bounded by the
// implementation's MAX_RSA_KEY_BYTES / MAX_ECC_KEY_BYTES; the same bounds as TPMT_PUBLIC's unique.
const MAX_RSA_KEY_BYTES = 512;
const MAX_ECC_KEY_BYTES = 128;

/**
 * Part 2 §11.3.1 TPMS_SIGNATURE_RSA (also named TPMS_SIGNATURE_RSASSA and TPMS_SIGNATURE_RSAPSS):
 *   hash TPMI_ALG_HASH          the hash signed
 *   sig  TPM2B_PUBLIC_KEY_RSA   the signature, as long as the modulus
 */
export interface TPMS_SIGNATURE_RSA {
  readonly hash: number;
  readonly sig: Buffer;
}

/**
 * Part 2 §11.3.2 TPMS_SIGNATURE_ECC (TPMS_SIGNATURE_ECDSA, _ECDAA, _SM2, _ECSCHNORR):
 *   hash       TPMI_ALG_HASH
 *   signatureR TPM2B_ECC_PARAMETER   raw big-endian integers, not DER; a TPM may drop leading zeros
 *   signatureS TPM2B_ECC_PARAMETER
 */
export interface TPMS_SIGNATURE_ECC {
  readonly hash: number;
  readonly signatureR: Buffer;
  readonly signatureS: Buffer;
}

/** Part 2 §10.3.2 TPMT_HA: hashAlg ‖ digest (exactly the hash's size); the HMAC "signature". */
export interface TPMT_HA {
  readonly hashAlg: number;
  readonly digest: Buffer;
}

type RsaSigAlg = typeof TPM_ALG_ID.TPM_ALG_RSASSA | typeof TPM_ALG_ID.TPM_ALG_RSAPSS;
type EccSigAlg =
  | typeof TPM_ALG_ID.TPM_ALG_ECDSA
  | typeof TPM_ALG_ID.TPM_ALG_ECDAA
  | typeof TPM_ALG_ID.TPM_ALG_SM2
  | typeof TPM_ALG_ID.TPM_ALG_ECSCHNORR;

/**
 * Part 2 §11.3.4 TPMT_SIGNATURE: sigAlg (TPMI_ALG_SIG_SCHEME+) ‖ signature (§11.3.3 TPMU_SIGNATURE
 * [sigAlg]). TPM_ALG_NULL carries no signature (what TPM2_Quote returns for a NULL sign handle).
 */
export type TPMT_SIGNATURE =
  | { readonly sigAlg: RsaSigAlg; readonly signature: TPMS_SIGNATURE_RSA }
  | { readonly sigAlg: EccSigAlg; readonly signature: TPMS_SIGNATURE_ECC }
  | { readonly sigAlg: typeof TPM_ALG_ID.TPM_ALG_HMAC; readonly signature: TPMT_HA }
  | { readonly sigAlg: typeof TPM_ALG_ID.TPM_ALG_NULL };

/** TPMI_ALG_HASH: a hash algorithm this library implements (NULL is not allowed here). */
function readHashAlg(r: TpmReader, field: string): number {
  const offset = r.offset;
  const alg = r.u16(field);
  if (!isHashAlgorithm(alg)) {
    throw r.error(field, `${algName(alg)} is not a supported hash algorithm`, offset);
  }
  return alg;
}

export function readTpmtSignature(r: TpmReader): TPMT_SIGNATURE {
  return r.within('TPMT_SIGNATURE', () => {
    const start = r.offset;
    const sigAlg = r.u16('sigAlg');
    switch (sigAlg) {
      case TPM_ALG_ID.TPM_ALG_RSASSA:
      case TPM_ALG_ID.TPM_ALG_RSAPSS:
        return {
          sigAlg,
          signature: r.within('TPMS_SIGNATURE_RSA', () => ({
            hash: readHashAlg(r, 'hash'),
            sig: r.tpm2b('sig', MAX_RSA_KEY_BYTES),
          })),
        };
      case TPM_ALG_ID.TPM_ALG_ECDSA:
      case TPM_ALG_ID.TPM_ALG_ECDAA:
      case TPM_ALG_ID.TPM_ALG_SM2:
      case TPM_ALG_ID.TPM_ALG_ECSCHNORR:
        return {
          sigAlg,
          signature: r.within('TPMS_SIGNATURE_ECC', () => ({
            hash: readHashAlg(r, 'hash'),
            signatureR: r.tpm2b('signatureR', MAX_ECC_KEY_BYTES),
            signatureS: r.tpm2b('signatureS', MAX_ECC_KEY_BYTES),
          })),
        };
      case TPM_ALG_ID.TPM_ALG_HMAC:
        return {
          sigAlg,
          signature: r.within('TPMT_HA', () => {
            const hashAlg = readHashAlg(r, 'hashAlg');
            return { hashAlg, digest: r.bytesOf(hashAlgorithm(hashAlg).size, 'digest') };
          }),
        };
      case TPM_ALG_ID.TPM_ALG_NULL:
        return { sigAlg };
      default:
        throw r.error('sigAlg', `${algName(sigAlg)} is not a signature scheme`, start);
    }
  });
}

export function writeTpmtSignature(w: TpmWriter, signature: TPMT_SIGNATURE): void {
  w.u16(signature.sigAlg);
  switch (signature.sigAlg) {
    case TPM_ALG_ID.TPM_ALG_RSASSA:
    case TPM_ALG_ID.TPM_ALG_RSAPSS:
      w.u16(signature.signature.hash).tpm2b(signature.signature.sig);
      return;
    case TPM_ALG_ID.TPM_ALG_ECDSA:
    case TPM_ALG_ID.TPM_ALG_ECDAA:
    case TPM_ALG_ID.TPM_ALG_SM2:
    case TPM_ALG_ID.TPM_ALG_ECSCHNORR:
      w.u16(signature.signature.hash).tpm2b(signature.signature.signatureR).tpm2b(signature.signature.signatureS);
      return;
    case TPM_ALG_ID.TPM_ALG_HMAC:
      w.u16(signature.signature.hashAlg).bytes(signature.signature.digest);
      return;
    case TPM_ALG_ID.TPM_ALG_NULL:
      return;
  }
}

/** TPMT_SIGNATURE from its exact bytes, as `tpm2_quote -s` / `tpm2_certify -s` write it (`-f tss`). */
export function unmarshalTpmtSignature(bytes: Uint8Array): TPMT_SIGNATURE {
  return parseExact(bytes, 'TPMT_SIGNATURE', readTpmtSignature);
}

export function marshalTpmtSignature(signature: TPMT_SIGNATURE): Buffer {
  return marshal((w) => writeTpmtSignature(w, signature));
}

/** The hash a signature was made over (undefined for TPM_ALG_NULL). */
export function signatureHash(signature: TPMT_SIGNATURE): number | undefined {
  switch (signature.sigAlg) {
    case TPM_ALG_ID.TPM_ALG_NULL:
      return undefined;
    case TPM_ALG_ID.TPM_ALG_HMAC:
      return signature.signature.hashAlg;
    default:
      return signature.signature.hash;
  }
}
