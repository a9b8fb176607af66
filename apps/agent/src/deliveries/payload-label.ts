import { type DeliveryPayload, DeliveryPayloadError, type MailboxDelivery } from '@rackseal/node-api-contracts';

/**
 * The mailbox labels each delivery with its secret's name, and the agent installs by that name; the
 * label is plain JSON, not authenticated (a proxy or anyone on a plain-http path could relabel one
 * of this machine's deliveries as another of its secrets of the same kind). The name inside the
 * payload is authenticated with it by the envelope's GCM: a payload without a name, or of another
 * secret, is refused and not installed (`delivery.invalid-payload`, field `secret`).
 */
export function checkPayloadLabel(payload: DeliveryPayload<unknown>, delivery: Pick<MailboxDelivery, 'secret' | 'kind'>): void {
  if (payload.secret !== delivery.secret) {
    const named = payload.secret === undefined ? 'unnamed' : `of secret ${JSON.stringify(payload.secret)}`;
    throw new DeliveryPayloadError('secret', `the payload is ${named}, not of ${JSON.stringify(delivery.secret)} as the mailbox labels it: not installed`);
  }
  if (payload.kind !== delivery.kind) {
    throw new DeliveryPayloadError('kind', `the payload is a ${payload.kind} secret, not ${delivery.kind} as the mailbox labels it: not installed`);
  }
}
