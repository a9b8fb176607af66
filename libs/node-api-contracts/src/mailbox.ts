/**
 * The machine's mailbox (issue 14 item 2): the deliveries sealed for it, fetched by long poll and
 * acknowledged with a proof that the agent unwrapped them. Both calls are signed with the node
 * credential (self.ts):
 *
 *   GET  /node/v1/deliveries?wait=N          → MailboxResponse   (N seconds, 0-30; 0 answers at once)
 *   POST /node/v1/deliveries/:id/ack  AckDeliveryRequest → AckDeliveryResponse
 *   POST /node/v1/deliveries/poll?wait=N  MailboxPollRequest → MailboxPollResponse
 *
 * The POST poll is the GET carrying the acks of the deliveries the agent installed since its last
 * poll (docs/decisions.md, "One request per delivery"): the server decides each carried ack exactly
 * as the ack route does, then answers the mailbox as the GET does, with one answer per carried ack
 * in the request's order. In steady state a delivery then costs one request: the poll that brought
 * it is answered, the next one carries its ack and waits for the next delivery.
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

/** Route of the poll that carries acks (POST). */
export const DELIVERIES_POLL_ROUTE = 'deliveries/poll';

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

/** Most acks one poll carries: one per delivery of the previous answer. */
export const MAILBOX_MAX_CARRIED_ACKS = MAILBOX_MAX_DELIVERIES;

/** One ack carried by a poll: the delivery id and its proof, as AckDeliveryRequest's. */
export interface CarriedAck {
  readonly id: string;
  /** ACK_PROOF_BYTES bytes, standard base64. */
  readonly proof: string;
}

export interface MailboxPollRequest {
  /** At most MAILBOX_MAX_CARRIED_ACKS; none is a plain poll. */
  readonly acks: readonly CarriedAck[];
}

/** A carried ack the server refused: the code and message the ack route would have answered (and audited). */
export interface CarriedAckRefusal {
  readonly refused: { readonly code: string; readonly message: string };
}

/** What a carried ack got: acked (now or already), or refused. */
export type CarriedAckAnswer = AckDeliveryResponse | CarriedAckRefusal;

export interface MailboxPollResponse extends MailboxResponse {
  /** One answer per carried ack, in the request's order. */
  readonly acks: readonly CarriedAckAnswer[];
}

/** A mailbox answer that is not a MailboxResponse: the agent installs nothing from it. */
export class MailboxResponseError extends Error {
  readonly code = 'delivery.invalid-mailbox';
  constructor(reason: string) {
    super(`the mailbox answer ${reason}`);
    this.name = 'MailboxResponseError';
  }
}

const MAILBOX_KINDS: readonly string[] = ['tls', 'disk', 'opaque', 'kubelet-client'];
const MAILBOX_BINDINGS: readonly string[] = ['certified-key', 'pcr-sealed'];
/** The server's delivery ids are UUIDs: an id that is not one never reaches a request path. */
const DELIVERY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Checks what the server answered to the mailbox's GET before the agent acts on it: an object with
 * at most MAILBOX_MAX_DELIVERIES deliveries, each with a UUID id, a string secret name, a known kind
 * and binding, a version ≥ 1 and a base64 envelope. A proxy's empty 200 or a hostile server's
 * `{"deliveries":[null]}` is refused as a whole rather than crashing the agent's loop.
 */
export function parseMailboxResponse(body: unknown): MailboxResponse {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new MailboxResponseError('is not a JSON object');
  }
  const deliveries = (body as { deliveries?: unknown }).deliveries;
  if (!Array.isArray(deliveries) || deliveries.length > MAILBOX_MAX_DELIVERIES) {
    throw new MailboxResponseError(`has no list of at most ${MAILBOX_MAX_DELIVERIES} deliveries`);
  }
  deliveries.forEach((d: unknown, i) => {
    const o = (typeof d === 'object' && d !== null && !Array.isArray(d) ? d : {}) as Record<string, unknown>;
    const fine =
      typeof o.id === 'string' &&
      DELIVERY_ID.test(o.id) &&
      typeof o.secret === 'string' &&
      o.secret.length > 0 &&
      typeof o.kind === 'string' &&
      MAILBOX_KINDS.includes(o.kind) &&
      typeof o.binding === 'string' &&
      MAILBOX_BINDINGS.includes(o.binding) &&
      Number.isSafeInteger(o.version) &&
      (o.version as number) >= 1 &&
      typeof o.envelope === 'string' &&
      /^[A-Za-z0-9+/]*={0,2}$/.test(o.envelope);
    if (!fine) {
      throw new MailboxResponseError(`has a delivery [${i}] that is not { id (a UUID), secret, kind, version, binding, envelope (base64) }`);
    }
  });
  return { deliveries: deliveries as MailboxDelivery[] };
}

/**
 * Checks the POST poll's answer (parseMailboxResponse's checks, then one answer per carried ack in
 * order: `acked` naming the delivery sent at that place, or a refusal with a code). An answer that
 * does not match what was sent is refused as a whole: the agent then treats its acks as unanswered
 * and carries them again (a second ack is harmless).
 */
export function parseMailboxPollResponse(body: unknown, sent: readonly string[]): MailboxPollResponse {
  const mailbox = parseMailboxResponse(body);
  const acks = (body as { acks?: unknown }).acks;
  if (!Array.isArray(acks) || acks.length !== sent.length) {
    throw new MailboxResponseError(`has no list of ${sent.length} ack answers`);
  }
  acks.forEach((a: unknown, i) => {
    const o = (typeof a === 'object' && a !== null && !Array.isArray(a) ? a : {}) as Record<string, unknown>;
    const refused = (typeof o.refused === 'object' && o.refused !== null ? o.refused : {}) as Record<string, unknown>;
    const acked = o.state === 'acked' && o.deliveryId === sent[i] && typeof o.alreadyAcked === 'boolean' && typeof o.ackedAt === 'string';
    const refusal = o.state === undefined && typeof refused.code === 'string' && typeof refused.message === 'string';
    if (!acked && !refusal) {
      throw new MailboxResponseError(`has an ack answer [${i}] that is neither the ack of ${sent[i]} nor a refusal with a code`);
    }
  });
  return { deliveries: mailbox.deliveries, acks: acks as CarriedAckAnswer[] };
}
