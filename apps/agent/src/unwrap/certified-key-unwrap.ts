import { curveById, ecdhZGen, KDFe, type KeyBlob, leftPad, loadKeyBlobUnder, objectName, resolveParent, rsaOaepDecrypt, TPM_ALG_ID, type TpmScope } from '@rackseal/tpm2';
import { CONTENT_KEY_BYTES, CONTENT_KEY_LABEL, CONTENT_KEY_OAEP_LABEL, type EcdhKeyTransport, type OaepKeyTransport } from '@rackseal/wrapping';
import { EnvelopeRecipientError, UnwrapRefusal } from './unwrap-errors';

/*
 * The certified-key half of unwrapEnvelope (unwrap-envelope.ts), which loads it by import() when an
 * envelope is certified-key: deliveries to the running daemon. Boot unlock opens pcr-sealed
 * envelopes only and never loads this file, nor the libraries' indexes it imports
 * (docs/decisions.md "Boot unlock loads single files").
 */

/** The certified key a certified-key envelope is for: the state dir's (unwrap-envelope.ts UnwrapKeys), by its Name. */
export function checkCertifiedKeyRecipient(transport: OaepKeyTransport | EcdhKeyTransport, key: KeyBlob | undefined): KeyBlob {
  if (key === undefined) {
    throw new UnwrapRefusal('unwrap.no-certified-key', 'a certified-key envelope, and this machine has no certified key in its state dir');
  }
  const name = objectName(key.public);
  if (!name.equals(transport.recipient)) {
    throw new EnvelopeRecipientError('certified-key', `key ${name.toString('hex')}`, `key ${transport.recipient.toString('hex')}`);
  }
  return key;
}

/**
 * The content key from the certified key, in the TPM. The key's parent (the storage primary) is
 * resolved by the Name the key blob records (KeyBlobParentError if this TPM's differs) and salts
 * the session; the decrypt key itself never could (checkSaltKey: it is unrestricted).
 */
export async function certifiedKeyContentKey(scope: TpmScope, blob: KeyBlob, transport: OaepKeyTransport | EcdhKeyTransport, salt: false | undefined): Promise<Buffer> {
  const parent = await resolveParent(scope, blob.parent);
  const key = await loadKeyBlobUnder(scope, parent, blob);
  const saltKey = salt === false ? false : parent;
  if (transport.keyTransport === TPM_ALG_ID.TPM_ALG_OAEP) {
    if (key.public.type !== TPM_ALG_ID.TPM_ALG_RSA) {
      throw new UnwrapRefusal('unwrap.wrong-recipient', 'an RSA-OAEP envelope for a key that is not RSA');
    }
    const message = await rsaOaepDecrypt(scope, key, transport.encryptedKey, CONTENT_KEY_OAEP_LABEL, { hashAlg: transport.hashAlg, salt: saltKey });
    const contentKey = Buffer.from(message.subarray(0, CONTENT_KEY_BYTES));
    message.fill(0);
    return contentKey;
  }
  const pub = key.public;
  if (pub.type !== TPM_ALG_ID.TPM_ALG_ECC || pub.parameters.curveID !== transport.curveID) {
    throw new UnwrapRefusal('unwrap.wrong-recipient', 'an ECDH envelope for a key that is not on its curve');
  }
  const size = curveById(transport.curveID).size;
  const Z = await ecdhZGen(scope, key, transport.ephemeral, { salt: saltKey });
  try {
    // Part 1 §11.4.10.3: partyUInfo = x of the ephemeral key, partyVInfo = x of the static key.
    return KDFe(transport.hashAlg, Z, CONTENT_KEY_LABEL, leftPad(transport.ephemeral.x, size), leftPad(pub.unique.x, size), 8 * CONTENT_KEY_BYTES);
  } finally {
    Z.fill(0);
  }
}
