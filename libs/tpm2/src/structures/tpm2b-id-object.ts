import { parseExact, TpmReader } from '../codec/tpm-reader';
import { marshal, type TpmWriter } from '../codec/tpm-writer';

/**
 * Part 2 §12.4.2 TPMS_ID_OBJECT, the credential blob of TPM2_MakeCredential/ActivateCredential:
 * integrityHMAC (TPM2B_DIGEST) ‖ encIdentity. encIdentity is a TPM2B_DIGEST holding the credential,
 * CFB-encrypted size field included (Part 1 §24.4), so on the wire it is simply the rest of the
 * structure; its length is the TPM2B size minus the HMAC.
 */
export interface TPMS_ID_OBJECT {
  readonly integrityHMAC: Buffer;
  readonly encIdentity: Buffer;
}

// Part 2 §12.4.3: TPM2B_ID_OBJECT.credential is at most sizeof(TPMS_ID_OBJECT) = 2·(2 + 64).
const MAX_ID_OBJECT = 2 * (2 + 64);
const MAX_DIGEST = 64;

/** Part 2 §12.4.3 TPM2B_ID_OBJECT: u16 size ‖ TPMS_ID_OBJECT. */
export function readTpm2bIdObject(r: TpmReader): TPMS_ID_OBJECT {
  return r.within('TPM2B_ID_OBJECT', () => {
    const content = r.tpm2b('credential', MAX_ID_OBJECT);
    const inner = new TpmReader(content, 'TPMS_ID_OBJECT');
    // The encrypted part runs to the end of the content, so nothing can trail it.
    return {
      integrityHMAC: inner.tpm2b('integrityHMAC', MAX_DIGEST),
      encIdentity: inner.bytesOf(inner.remaining, 'encIdentity'),
    };
  });
}

export function writeTpm2bIdObject(w: TpmWriter, idObject: TPMS_ID_OBJECT): void {
  w.sized((inner) => inner.tpm2b(idObject.integrityHMAC).bytes(idObject.encIdentity));
}

export function unmarshalTpm2bIdObject(bytes: Uint8Array): TPMS_ID_OBJECT {
  return parseExact(bytes, 'TPM2B_ID_OBJECT', readTpm2bIdObject);
}

export function marshalTpm2bIdObject(idObject: TPMS_ID_OBJECT): Buffer {
  return marshal((w) => writeTpm2bIdObject(w, idObject));
}
