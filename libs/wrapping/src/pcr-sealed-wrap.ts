import { approvalPolicyRef, APPROVAL_HASH_ALG, sealedObjectAuthPolicy } from '@rackseal/pcr-policy';
import { createImportBlob, draw, ekPubHash, systemRandom, TPM_ALG_ID, type TPMT_PUBLIC } from '@rackseal/tpm2';
import { deliveryAckProof, type WrappedDelivery } from './ack-proof';
import { sealPayload } from './content-cipher';
import type { WrapAddress, WrapOptions } from './certified-key-wrap';
import { CONTENT_KEY_BYTES, GCM_NONCE_BYTES } from './envelope-format';
import { RecipientKeyError } from './wrapping-errors';

export interface PcrSealedRecipient {
  /** The machine's EK public area (as attested; ekPublicFromKey for one known by its certificate). */
  readonly ekPublic: TPMT_PUBLIC;
  /** The group whose approvals open it, and its current approval epoch. */
  readonly group: string;
  readonly epoch: number;
  /** Name of the control plane's PCR-approval signing key. */
  readonly signingKeyName: Buffer;
}

/**
 * The `pcr-sealed` binding: `payload` AES-256-GCM-encrypted under a fresh 32-byte content key,
 * which is sealed in a TPM2 import blob under the machine's EK (createImportBlob: outer wrapper
 * only, Part 1 §23.3.2) with authPolicy = PolicyAuthorize(signing key, policyRef(group, epoch)).
 * The TPM unseals it only after PolicyPCR with a PCR state the signing key approved for that group
 * and epoch: a new approval opens the same envelope; an envelope of epoch N never opens with
 * approvals of another epoch.
 */
export function wrapToApprovedPcrPolicy(recipient: PcrSealedRecipient, payload: Buffer, address: WrapAddress, options: Pick<WrapOptions, 'random'> = {}): Buffer {
  return pcrSealedWrap(recipient, payload, address, options, false).envelope;
}

/**
 * wrapToApprovedPcrPolicy for a delivery: the envelope and its ack proof (deliveryAckProof),
 * computed from the content key before it is zeroed, so the key never leaves this call.
 */
export function wrapDeliveryToApprovedPcrPolicy(recipient: PcrSealedRecipient, payload: Buffer, address: WrapAddress, options: Pick<WrapOptions, 'random'> = {}): WrappedDelivery {
  const wrapped = pcrSealedWrap(recipient, payload, address, options, true);
  return { envelope: wrapped.envelope, ackProof: wrapped.ackProof! };
}

function pcrSealedWrap(recipient: PcrSealedRecipient, payload: Buffer, address: WrapAddress, options: Pick<WrapOptions, 'random'>, proof: boolean): { envelope: Buffer; ackProof?: Buffer } {
  const ek = recipient.ekPublic;
  if (ek.type !== TPM_ALG_ID.TPM_ALG_RSA && ek.type !== TPM_ALG_ID.TPM_ALG_ECC) {
    throw new RecipientKeyError('the EK is not an RSA or ECC key');
  }
  const policyRef = approvalPolicyRef(recipient.group, recipient.epoch);
  const random = options.random ?? systemRandom;
  // The content key first: a recording source's first draw (the bus-capture test searches for it).
  const contentKey = draw(random, CONTENT_KEY_BYTES);
  try {
    // Only an injected source goes on to the seed: with it libs/tpm2 pads OAEP in JavaScript, slower than OpenSSL's.
    const blob = createImportBlob(ek, contentKey, { authPolicy: sealedObjectAuthPolicy(recipient.signingKeyName, policyRef), nameAlg: APPROVAL_HASH_ALG, ...(options.random === undefined ? {} : { random: options.random }) });
    const envelope = sealPayload(
      {
        ...address,
        transport: {
          binding: 'pcr-sealed',
          recipient: Buffer.from(ekPubHash(ek), 'hex'),
          policyHashAlg: APPROVAL_HASH_ALG,
          group: recipient.group,
          epoch: recipient.epoch,
          signingKeyName: recipient.signingKeyName,
          blob: { public: blob.public, duplicate: blob.duplicate, inSymSeed: blob.inSymSeed },
        },
      },
      contentKey,
      payload,
      draw(random, GCM_NONCE_BYTES),
    );
    return proof ? { envelope, ackProof: deliveryAckProof(contentKey, address.deliveryId) } : { envelope };
  } finally {
    contentKey.fill(0);
  }
}
