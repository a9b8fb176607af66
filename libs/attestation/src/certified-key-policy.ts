import type { CertifiedKeyAlgorithm } from '@rackseal/node-api-contracts';
import { algName, describeObjectAttributes, TPM_ALG_ID, TPM_ECC_CURVE, TPMA_OBJECT, type TPMA_OBJECT_NAME, type TPMT_PUBLIC } from '@rackseal/tpm2';
import { KeyError } from './key-errors';

/**
 * What a certified key must be (issue 13 item 1): a plain decrypt key generated inside the TPM that
 * can never leave it — fixedTPM, fixedParent, sensitiveDataOrigin, decrypt — that cannot sign (a
 * key secrets are wrapped to must not also vouch for data) and is not restricted (a restricted
 * decrypt key is a storage parent: TPM2_RSA_Decrypt and ECDH on it are refused, Part 1 §25.2).
 */
const REQUIRED: readonly TPMA_OBJECT_NAME[] = ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'decrypt'];
const FORBIDDEN: readonly TPMA_OBJECT_NAME[] = ['sign', 'restricted'];

/** RSA sizes taken: 2048 is the floor (NIST SP 800-57 Part 1 rev. 5 §5.6.1, 112-bit security). */
const RSA_SIZES: Readonly<Record<number, CertifiedKeyAlgorithm>> = { 2048: 'rsa-2048', 3072: 'rsa-3072', 4096: 'rsa-4096' };
/** ECC curves taken: NIST P-256 and up (Part 2 §6.4 TPM_ECC_CURVE). */
const CURVES: Readonly<Record<number, CertifiedKeyAlgorithm>> = {
  [TPM_ECC_CURVE.TPM_ECC_NIST_P256]: 'ecc-nist-p256',
  [TPM_ECC_CURVE.TPM_ECC_NIST_P384]: 'ecc-nist-p384',
  [TPM_ECC_CURVE.TPM_ECC_NIST_P521]: 'ecc-nist-p521',
};
/** A Name of SHA-1 could be collided: the certify would vouch for two public areas. */
const NAME_ALGS: ReadonlySet<number> = new Set([TPM_ALG_ID.TPM_ALG_SHA256, TPM_ALG_ID.TPM_ALG_SHA384, TPM_ALG_ID.TPM_ALG_SHA512]);

/**
 * The key's algorithm label when its public area is exactly a certified decrypt key; otherwise a
 * KeyError: `key.attributes` for the wrong kind of key (attributes, type, an unknown size),
 * `key.weak` for the right kind too weak (RSA below 2048, a curve below P-256, a SHA-1 Name).
 */
export function certifiedKeyAlgorithm(pub: TPMT_PUBLIC): CertifiedKeyAlgorithm {
  for (const name of REQUIRED) {
    if ((pub.objectAttributes & TPMA_OBJECT[name]) === 0) {
      throw new KeyError('key.attributes', `the key must have ${name} set (it has ${describeObjectAttributes(pub.objectAttributes).join(', ') || 'none'})`);
    }
  }
  for (const name of FORBIDDEN) {
    if ((pub.objectAttributes & TPMA_OBJECT[name]) !== 0) {
      throw new KeyError('key.attributes', `the key must have ${name} clear: only a plain decrypt key is certified`);
    }
  }
  let algorithm: CertifiedKeyAlgorithm | undefined;
  if (pub.type === TPM_ALG_ID.TPM_ALG_RSA) {
    const bits = pub.parameters.keyBits;
    if (bits < 2048) {
      throw new KeyError('key.weak', `RSA-${bits} is weaker than the RSA-2048 a certified key must have at least`);
    }
    algorithm = RSA_SIZES[bits];
    if (algorithm === undefined) {
      throw new KeyError('key.attributes', `RSA-${bits} is not a key size taken (2048, 3072, 4096)`);
    }
  } else if (pub.type === TPM_ALG_ID.TPM_ALG_ECC) {
    algorithm = CURVES[pub.parameters.curveID];
    if (algorithm === undefined) {
      throw new KeyError('key.weak', `ECC curve 0x${pub.parameters.curveID.toString(16).padStart(4, '0')} is not NIST P-256, P-384 or P-521`);
    }
  } else {
    throw new KeyError('key.attributes', `the key is of type ${algName(pub.type)}: a certified key is an RSA or ECC key`);
  }
  if (!NAME_ALGS.has(pub.nameAlg)) {
    throw new KeyError('key.weak', `the key's nameAlg ${algName(pub.nameAlg)} is weaker than SHA-256`);
  }
  return algorithm;
}
