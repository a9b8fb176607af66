import { constants, type KeyObject, verify } from 'node:crypto';
import { algName, TPM_ALG_ID } from '../constants';
import { hashAlgorithm } from '../hash-algorithms';
import type { TPMT_SIGNATURE } from '../structures/tpmt-signature';
import type { TPMT_PUBLIC } from '../structures/tpmt-public';

export type SignatureRefusalReason = 'scheme-mismatch' | 'unsupported-scheme' | 'signature-invalid';

export type SignatureCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: SignatureRefusalReason; readonly message: string };

const OK: SignatureCheck = { ok: true };

/** ECDSA coordinate sizes by node:crypto's curve names (asymmetricKeyDetails.namedCurve). */
const CURVE_BYTES: Readonly<Record<string, number>> = { prime256v1: 32, secp384r1: 48, secp521r1: 66 };

/**
 * A restricted signing key signs with the scheme fixed in its public area (the TPM
 * refuses any other), so a signature claiming another scheme or hash did not come from that key as
 * the TPM uses it. A NULL scheme in the key leaves the choice to the command.
 */
export function checkSigningScheme(signer: TPMT_PUBLIC, signature: TPMT_SIGNATURE): SignatureCheck {
  if (signer.type !== TPM_ALG_ID.TPM_ALG_RSA && signer.type !== TPM_ALG_ID.TPM_ALG_ECC) {
    return { ok: false, reason: 'unsupported-scheme', message: `${algName(signer.type)} keys make no asymmetric signatures` };
  }
  const fixed = signer.parameters.scheme;
  if (fixed.scheme === TPM_ALG_ID.TPM_ALG_NULL || signature.sigAlg === TPM_ALG_ID.TPM_ALG_NULL) {
    return OK;
  }
  const hash = signature.sigAlg === TPM_ALG_ID.TPM_ALG_HMAC ? signature.signature.hashAlg : signature.signature.hash;
  if (signature.sigAlg !== fixed.scheme || hash !== fixed.hashAlg) {
    return {
      ok: false,
      reason: 'scheme-mismatch',
      message: `signature is ${algName(signature.sigAlg)}/${algName(hash)} but the key's scheme is ${algName(fixed.scheme)}/${algName(fixed.hashAlg ?? TPM_ALG_ID.TPM_ALG_NULL)}`,
    };
  }
  return OK;
}

/**
 * Verifies a TPMT_SIGNATURE over `message` (for attestations: the raw TPMS_ATTEST bytes, never a
 * re-encoding) with the signer's public key:
 * - RSASSA: PKCS#1 v1.5 with the signature's hash;
 * - RSAPSS: any salt length (RSA_PSS_SALTLEN_AUTO). Current TPMs use salt = hash length, as the
 *   reference implementation does; some hardware TPMs use the largest salt the modulus allows. Both
 *   are sound PSS signatures, and the salt length is recovered from the signature itself;
 * - ECDSA: r ‖ s, each left-padded to the curve size (TPMs drop leading zero bytes), IEEE P1363.
 * Other schemes (ECDAA, SM2, EC-Schnorr, HMAC, NULL) are refused as unsupported. Never throws.
 */
export function verifyTpmSignature(key: KeyObject, message: Uint8Array, signature: TPMT_SIGNATURE): SignatureCheck {
  const keyType = key.asymmetricKeyType;
  const mismatch = (): SignatureCheck => ({
    ok: false,
    reason: 'scheme-mismatch',
    message: `${algName(signature.sigAlg)} signature cannot come from ${keyType ?? 'a non-asymmetric'} key`,
  });
  const invalid: SignatureCheck = {
    ok: false,
    reason: 'signature-invalid',
    message: `${algName(signature.sigAlg)} signature does not verify under the signing key`,
  };
  try {
    switch (signature.sigAlg) {
      case TPM_ALG_ID.TPM_ALG_RSASSA:
      case TPM_ALG_ID.TPM_ALG_RSAPSS: {
        if (keyType !== 'rsa') {
          return mismatch();
        }
        const pss = signature.sigAlg === TPM_ALG_ID.TPM_ALG_RSAPSS;
        const valid = verify(
          hashAlgorithm(signature.signature.hash).node,
          message,
          pss
            ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }
            : { key, padding: constants.RSA_PKCS1_PADDING },
          signature.signature.sig,
        );
        return valid ? OK : invalid;
      }
      case TPM_ALG_ID.TPM_ALG_ECDSA: {
        if (keyType !== 'ec') {
          return mismatch();
        }
        const curve = key.asymmetricKeyDetails?.namedCurve;
        const size = curve === undefined ? undefined : CURVE_BYTES[curve];
        if (size === undefined) {
          return { ok: false, reason: 'unsupported-scheme', message: `ECDSA on curve ${curve ?? '(unknown)'} is not supported` };
        }
        const r = stripLeadingZeros(signature.signature.signatureR);
        const s = stripLeadingZeros(signature.signature.signatureS);
        if (r.length > size || s.length > size) {
          return { ...invalid, message: `ECDSA r or s is longer than the ${size}-byte curve order` };
        }
        const p1363 = Buffer.concat([Buffer.alloc(size - r.length), r, Buffer.alloc(size - s.length), s]);
        const valid = verify(hashAlgorithm(signature.signature.hash).node, message, { key, dsaEncoding: 'ieee-p1363' }, p1363);
        return valid ? OK : invalid;
      }
      default:
        return { ok: false, reason: 'unsupported-scheme', message: `${algName(signature.sigAlg)} signatures are not supported` };
    }
  } catch (error) {
    // OpenSSL rejects some malformed signatures (wrong length, r or s out of range) by throwing.
    return { ...invalid, message: `${invalid.message}: ${(error as Error).message}` };
  }
}

function stripLeadingZeros(value: Buffer): Buffer {
  let i = 0;
  while (i < value.length && value[i] === 0) {
    i += 1;
  }
  return value.subarray(i);
}
