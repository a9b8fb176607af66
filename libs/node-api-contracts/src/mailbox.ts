/**
 * The machine's mailbox (issue 14 item 2): the deliveries sealed for it, fetched by long poll and
 * acknowledged with a proof that the agent unwrapped them. Both calls are signed with the node
 * credential (self.ts):
 *
 *   GET  /node/v1/deliveries?wait=N          → MailboxResponse   (N seconds, 0-30; 0 answers at once)
 *   POST /node/v1/deliveries/:id/ack  AckDeliveryRequest → AckDeliveryResponse
 *
 * The GET answers at once when the machine has ready deliveries, else holds the request until one
 * becomes ready (on any control-plane replica) or `wait` seconds pass, and then answers the list,
 * empty or not. The ack's proof is HMAC-SHA256(content key, "rackseal ack v1" ‖ delivery id), which
 * only a holder of the unwrapped content key can compute; the server keeps only its SHA-256.
 */

/** Route of the mailbox, below the node API base path (nodeApiPath). */
export const DELIVERIES_ROUTE = 'deliveries';
/** Route of one delivery's ack. */
export const deliveryAckRoute = (deliveryId: string): string => `deliveries/${deliveryId}/ack`;

/** Longest a mailbox request is held, in seconds. */
export const MAILBOX_MAX_WAIT_SECONDS = 30;
/** Most deliveries one mailbox answer carries (the next request gets the rest). */
export const MAILBOX_MAX_DELIVERIES = 100;
/** Bytes of an ack proof (HMAC-SHA256). */
export const ACK_PROOF_BYTES = 32;

/** One ready delivery: what the agent unwraps and installs. */
export interface MailboxDelivery {
  readonly id: string;
  readonly secret: string;
  readonly kind: 'tls' | 'disk' | 'opaque' | 'kubelet-client';
  readonly version: number;
  readonly binding: 'certified-key' | 'pcr-sealed';
  /** The sealed envelope, standard base64 (the wrapping library's format). */
  readonly envelope: string;
}

export interface MailboxResponse {
  readonly deliveries: readonly MailboxDelivery[];
}

export interface AckDeliveryRequest {
  /** ACK_PROOF_BYTES bytes, standard base64. */
  readonly proof: string;
}

export interface AckDeliveryResponse {
  readonly deliveryId: string;
  readonly state: 'acked';
  /** True when this ack found the delivery acked already (a repeat: nothing changed). */
  readonly alreadyAcked: boolean;
  readonly ackedAt: string;
}
