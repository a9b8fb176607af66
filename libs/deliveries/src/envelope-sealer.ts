import type { SecretBinding } from '@rackseal/api-contracts';
import { DeliveryError } from './delivery-errors';

/** What one delivery is sealed for. */
export interface SealInput {
  readonly deliveryId: string;
  /** `<secret name>@<version number>`: bound into the envelope (AAD) with the delivery id. */
  readonly secretVersion: string;
  readonly binding: SecretBinding;
  readonly machine: {
    readonly id: string;
    readonly group: string | null;
    /** TPMT_PUBLIC of the EK (TPM 2.0 Part 2 §12.2.4) of the machine's current attestation. */
    readonly ekPublic: Buffer;
    /** TPM2B_PUBLIC (Part 2 §12.2.5) of its live certified decrypt key; present for `certified-key`. */
    readonly certifiedKeyPublic?: Buffer;
  };
  /** The serialised payload (delivery-payload.ts). The sealer must not keep it. */
  readonly payload: Buffer;
}

export interface Sealed {
  /** The self-describing envelope the agent unwraps in its TPM. */
  readonly envelope: Buffer;
  /**
   * What a correct ack must carry: HMAC-SHA256(content key, "rackseal ack v1" ‖ delivery id), which
   * only the holder of the unwrapped content key can compute. The server keeps only its SHA-256.
   */
  readonly ackProof: Buffer;
}

/**
 * The wrapping of a delivery (issue 13 item 5, `@rackseal/wrapping`), injected: the deliveries do not
 * know the envelope format. The product's adapter (wrapToCertifiedKey / wrapToPcrPolicy with the
 * group's sealing target) is wired where that library lands; until then the worker has
 * UnwiredEnvelopeSealer and every delivery fails visibly with `delivery.sealer-unavailable`.
 */
export abstract class EnvelopeSealer {
  abstract seal(input: SealInput): Promise<Sealed>;
}

/** The sealer of a process without the wrapping library: refuses, so nothing leaves unwrapped or half-wrapped. */
export class UnwiredEnvelopeSealer extends EnvelopeSealer {
  seal(): Promise<Sealed> {
    return Promise.reject(new DeliveryError('delivery.sealer-unavailable', 'this worker has no envelope sealer: the wrapping library is not wired in'));
  }
}
