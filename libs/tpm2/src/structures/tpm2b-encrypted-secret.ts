import { parseExact, type TpmReader } from '../codec/tpm-reader';
import { marshal, type TpmWriter } from '../codec/tpm-writer';

/**
 * Part 2 §11.4.34 TPM2B_ENCRYPTED_SECRET: u16 size ‖ secret, the seed of a credential, duplicate or
 * salted session encapsulated to a key. The content is TPMU_ENCRYPTED_SECRET (§11.4.33): an RSA
 * ciphertext (at most MAX_RSA_KEY_BYTES = 512) or a marshalled TPMS_ECC_POINT (at most 2·(2 + 128)).
 */
export const MAX_ENCRYPTED_SECRET = 512;

export function readTpm2bEncryptedSecret(r: TpmReader): Buffer {
  return r.within('TPM2B_ENCRYPTED_SECRET', () => r.tpm2b('secret', MAX_ENCRYPTED_SECRET));
}

export function writeTpm2bEncryptedSecret(w: TpmWriter, secret: Uint8Array): void {
  w.tpm2b(secret);
}

export function unmarshalTpm2bEncryptedSecret(bytes: Uint8Array): Buffer {
  return parseExact(bytes, 'TPM2B_ENCRYPTED_SECRET', readTpm2bEncryptedSecret);
}

export function marshalTpm2bEncryptedSecret(secret: Uint8Array): Buffer {
  return marshal((w) => writeTpm2bEncryptedSecret(w, secret));
}
