import { createCipheriv } from 'node:crypto';
import { algName, TPM_ALG_ID, TPMA_OBJECT } from '../constants';
import { hashAlgorithm, hmac } from '../hash-algorithms';
import type { EccPublic, RsaPublic, TPMT_PUBLIC } from '../structures/tpmt-public';
import { ProtectorKeyError } from './errors';
import { KDFa } from './kdf';

/** What the outer wrapper takes from the protecting key: its nameAlg and its AES-CFB key size. */
export interface ProtectorParameters {
  readonly nameAlg: number;
  readonly keyBits: number;
}

const AES_KEY_BITS = new Set([128, 192, 256]);

/**
 * Checks that `pub` can protect a credential or a duplicate, the way ActivateCredential and Import
 * check their key: an asymmetric storage key (restricted | decrypt, Part 3 §12.5, §13.3) whose
 * symmetric definition (TPMS_*_PARMS.symmetric) is one this library implements, AES in CFB mode.
 * `role` names the key in errors ("EK", "parent").
 */
export function protectorParameters(pub: TPMT_PUBLIC, role: string): ProtectorParameters & { key: RsaPublic | EccPublic } {
  if (pub.type !== TPM_ALG_ID.TPM_ALG_RSA && pub.type !== TPM_ALG_ID.TPM_ALG_ECC) {
    throw new ProtectorKeyError(`${role} is a ${algName(pub.type)} object; only RSA and ECC keys can protect a secret`);
  }
  const storage = TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt;
  if ((pub.objectAttributes & storage) !== storage || (pub.objectAttributes & TPMA_OBJECT.sign) !== 0) {
    throw new ProtectorKeyError(
      `${role} is not a storage key: objectAttributes 0x${pub.objectAttributes.toString(16).padStart(8, '0')} must have restricted and decrypt set and sign clear`,
    );
  }
  const { algorithm, keyBits, mode } = pub.parameters.symmetric;
  if (algorithm !== TPM_ALG_ID.TPM_ALG_AES || mode !== TPM_ALG_ID.TPM_ALG_CFB || keyBits === undefined || !AES_KEY_BITS.has(keyBits)) {
    throw new ProtectorKeyError(
      `${role} symmetric definition ${algName(algorithm)}-${keyBits ?? '?'}-${mode === undefined ? '?' : algName(mode)} is not supported (AES-128/192/256-CFB only)`,
    );
  }
  return { key: pub, nameAlg: pub.nameAlg, keyBits };
}

/** An outer wrapper: the HMAC that heads the blob, and the encrypted structure behind it. */
export interface OuterWrap {
  readonly integrityHMAC: Buffer;
  readonly encrypted: Buffer;
}

/**
 * The protection shared by credentials (Part 1 §24.4, §24.5) and the outer duplication wrapper
 * (§23.3.2, Outer Duplication Wrapper), with the protector's nameAlg nH:
 *   symKey = KDFa(nH, seed, "STORAGE", name, ∅, symmetric.keyBits)
 *   encrypted = AES-CFB(symKey, IV = 0, plaintext)   (CFB128, no padding)
 *   integrityHMAC = HMAC_nH(KDFa(nH, seed, "INTEGRITY", ∅, ∅, 8·|nH|), encrypted ‖ name)
 * `name` binds the blob to one object: the AK for a credential, the duplicated object for an import.
 */
export function outerWrap(protector: ProtectorParameters, seed: Buffer, name: Buffer, plaintext: Buffer): OuterWrap {
  const { nameAlg, keyBits } = protector;
  const symKey = KDFa(nameAlg, seed, 'STORAGE', name, Buffer.alloc(0), keyBits);
  const cipher = createCipheriv(`aes-${keyBits}-cfb`, symKey, Buffer.alloc(16));
  const encrypted = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const hmacKey = KDFa(nameAlg, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), 8 * hashAlgorithm(nameAlg).size);
  return { integrityHMAC: hmac(nameAlg, hmacKey, encrypted, name), encrypted };
}
