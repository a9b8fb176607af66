import { createHmac } from 'node:crypto';
import { CONTENT_KEY_BYTES } from './envelope-format';

/** The proof's domain-separation prefix: no other HMAC under a content key starts with it. */
export const ACK_PROOF_LABEL = 'rackseal ack v1';

/**
 * The proof of unwrap an agent acknowledges a delivery with (issue 14 item 2):
 * HMAC-SHA256(content key, "rackseal ack v1" ‖ delivery id) (RFC 2104), the delivery id in its
 * printable-ASCII form as the envelope header carries it. Only the holder of the content key — the
 * control plane that made it, the TPM that unwraps it — can compute it; the server keeps only its
 * SHA-256, so a database reader cannot ack. The content key encrypts one payload and keys this one
 * HMAC: GCM and HMAC are different primitives, and the label keeps the HMAC from being anything else.
 */
export function deliveryAckProof(contentKey: Buffer, deliveryId: string): Buffer {
  if (contentKey.length !== CONTENT_KEY_BYTES) {
    throw new RangeError(`the content key must be ${CONTENT_KEY_BYTES} bytes`);
  }
  return createHmac('sha256', contentKey).update(ACK_PROOF_LABEL, 'latin1').update(deliveryId, 'latin1').digest();
}

/** A delivery's envelope and the proof its agent will ack with; the content key stayed inside the wrap. */
export interface WrappedDelivery {
  readonly envelope: Buffer;
  readonly ackProof: Buffer;
}
