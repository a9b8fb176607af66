import { createHmac } from 'node:crypto';
import { EnvelopeSealer, type Sealed, type SealInput } from '@rackseal/deliveries';
import { draw, objectName, oaepHashAlg, hashAlgorithm, rsaLabeledEncapsulate, systemRandom, TPM_ALG_ID, unmarshalTpmtPublic } from '@rackseal/tpm2';
import { CONTENT_KEY_BYTES, CONTENT_KEY_LABEL, GCM_NONCE_BYTES, sealPayload } from '@rackseal/wrapping';

/** The ack proof's label (libs/node-api-contracts mailbox.ts): HMAC-SHA256(content key, label ‖ delivery id). */
const ACK_PROOF_LABEL = 'rackseal ack v1';

/**
 * The delivery benchmark's EnvelopeSealer, standing in for the product adapter until it is merged
 * (another branch: `WrappingEnvelopeSealer`, libs/deliveries, over libs/wrapping's
 * `wrapDeliveryToCertifiedKey`). It does the same work per seal for the `certified-key` binding to an
 * RSA-2048 key: the certified key's TPMT_PUBLIC (TPM 2.0 Part 2 §12.2.4) parsed from the bytes the
 * worker read, its Name, 32 random bytes RSAES-OAEP-encrypted to it (RFC 8017 §7.1, label
 * CONTENT_KEY_LABEL: libs/tpm2's labeled encapsulation, OpenSSL's OAEP as in the product path), the
 * payload AES-256-GCM-sealed under them in the libs/wrapping envelope (sealPayload), and the ack proof
 * HMAC-SHA256(content key, "rackseal ack v1" ‖ delivery id) (RFC 2104) computed before the key is
 * zeroed. libs/wrapping's wrapToCertifiedKey zeroes the content key inside and so cannot give the
 * proof; these are its own steps, minus its recipient attribute checks (a few comparisons).
 *
 * To bench the product adapter once merged: drop `sealer` in bench/delivery-worker-main.ts (the
 * worker's default is then the product's) — nothing else here changes.
 */
export class BenchEnvelopeSealer extends EnvelopeSealer {
  /** Seals made by this process: a duplicate run of a job seals twice (one of them loses its markReady). */
  seals = 0;

  seal(input: SealInput): Promise<Sealed> {
    this.seals += 1;
    const keyBytes = input.machine.certifiedKeyPublic;
    if (input.binding !== 'certified-key' || keyBytes === undefined) {
      return Promise.reject(new Error('the bench sealer seals certified-key deliveries to a certified key only'));
    }
    const key = unmarshalTpmtPublic(keyBytes);
    if (key.type !== TPM_ALG_ID.TPM_ALG_RSA) {
      return Promise.reject(new Error('the bench sealer seals to RSA certified keys only'));
    }
    const recipient = objectName(key);
    const hashAlg = oaepHashAlg(key);
    const encapsulated = rsaLabeledEncapsulate(key, CONTENT_KEY_LABEL, systemRandom(hashAlgorithm(hashAlg).size));
    const contentKey = Buffer.from(encapsulated.seed.subarray(0, CONTENT_KEY_BYTES));
    encapsulated.seed.fill(0);
    // SealInput.secretVersion is "<name>@<n>" here, the number on the wiring branch: the header carries the number.
    const secretVersion = Number(String(input.secretVersion).split('@').pop());
    try {
      const envelope = sealPayload(
        { deliveryId: input.deliveryId, secretVersion, transport: { binding: 'certified-key', keyTransport: TPM_ALG_ID.TPM_ALG_OAEP, recipient, hashAlg, encryptedKey: encapsulated.encryptedSecret } },
        contentKey,
        input.payload,
        draw(systemRandom, GCM_NONCE_BYTES),
      );
      const ackProof = createHmac('sha256', contentKey).update(ACK_PROOF_LABEL, 'latin1').update(input.deliveryId, 'latin1').digest();
      return Promise.resolve({ envelope, ackProof });
    } finally {
      contentKey.fill(0);
    }
  }
}
