import type { SecretBinding } from '@rackseal/api-contracts';
import { DeliveryError } from './delivery-errors';

/** What one delivery is sealed for. */
export interface SealInput {
  readonly deliveryId: string;
  /**
   * The secret version's number (≥ 1), as the envelope header carries it (authenticated with the
   * delivery id, which is unique per (version, machine) and so names the secret too).
   */
  readonly secretVersion: number;
  readonly binding: SecretBinding;
  readonly machine: {
    readonly id: string;
    readonly group: string | null;
    /** TPMT_PUBLIC of the EK (TPM 2.0 Part 2 §12.2.4) of the machine's current attestation. */
    readonly ekPublic: Buffer;
    /** TPMT_PUBLIC (Part 2 §12.2.4) of its live certified decrypt key, as certified; present for `certified-key`. */
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
 * The wrapping of a delivery (issue 13 item 5), injected: the processor does not know the envelope
 * format. The product's adapter is WrappingEnvelopeSealer (libs/wrapping, wrapping-envelope-sealer.ts);
 * the delivery suites pass a test sealer instead.
 */
export abstract class EnvelopeSealer {
  abstract seal(input: SealInput): Promise<Sealed>;
}

/** A sealer that refuses every seal (`delivery.sealer-unavailable`): what a test shows a worker without sealing does. */
export class UnwiredEnvelopeSealer extends EnvelopeSealer {
  seal(): Promise<Sealed> {
    return Promise.reject(new DeliveryError('delivery.sealer-unavailable', 'this worker has no envelope sealer: the wrapping library is not wired in'));
  }
}
