import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CONTENT_KEY_BYTES, encodeEnvelopeHeader, type EnvelopeHeader, GCM_NONCE_BYTES, GCM_TAG_BYTES, MAX_PAYLOAD_BYTES, type ParsedEnvelope } from './envelope-format';
import { EnvelopeAuthenticationError, EnvelopeTooLargeError } from './wrapping-errors';

/**
 * AES-256-GCM of the payload under the content key, with the whole header as additional
 * authenticated data (NIST SP 800-38D): the delivery id, the secret version, the recipient and the
 * key transport cannot be edited, and an envelope cannot be re-addressed to another delivery, without
 * the tag failing. The nonce is random; each content key encrypts exactly one payload.
 */
export function sealPayload(header: EnvelopeHeader, contentKey: Buffer, payload: Buffer, nonce: Buffer = randomBytes(GCM_NONCE_BYTES)): Buffer {
  if (payload.length > MAX_PAYLOAD_BYTES) {
    throw new EnvelopeTooLargeError('payload', payload.length, MAX_PAYLOAD_BYTES);
  }
  checkKey(contentKey);
  const aad = encodeEnvelopeHeader(header, nonce, payload.length);
  const cipher = createCipheriv('aes-256-gcm', contentKey, nonce, { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(aad);
  // One copy into the envelope: header ‖ ciphertext ‖ tag.
  return Buffer.concat([aad, cipher.update(payload), cipher.final(), cipher.getAuthTag()]);
}

/** The payload of a parsed envelope, or EnvelopeAuthenticationError; nothing is released unless the tag verifies. */
export function openPayload(envelope: ParsedEnvelope, contentKey: Buffer): Buffer {
  if (contentKey.length !== CONTENT_KEY_BYTES) {
    throw new EnvelopeAuthenticationError();
  }
  const decipher = createDecipheriv('aes-256-gcm', contentKey, envelope.nonce, { authTagLength: GCM_TAG_BYTES });
  decipher.setAAD(envelope.header);
  decipher.setAuthTag(envelope.tag);
  const plaintext = decipher.update(envelope.ciphertext);
  try {
    decipher.final();
  } catch {
    plaintext.fill(0);
    throw new EnvelopeAuthenticationError();
  }
  return plaintext;
}

function checkKey(contentKey: Buffer): void {
  if (contentKey.length !== CONTENT_KEY_BYTES) {
    throw new RangeError(`the content key must be ${CONTENT_KEY_BYTES} bytes`);
  }
}
