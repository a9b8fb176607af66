import { domainErrorFor, type ErrorCodeTable } from '@rackseal/api-contracts';

/**
 * The refusals of the delivery operations (mailbox, ack, operator list and retry) and the codes a
 * failed delivery keeps as its last error, with their kinds (the README lists them with their HTTP
 * status). Messages name deliveries, machines and secrets by id or name, never material.
 */
export const DELIVERY_ERROR_CODES = {
  'delivery.invalid': 'invalid',
  'delivery.bad-proof': 'invalid',
  'delivery.not-found': 'not-found',
  'delivery.not-ready': 'conflict',
  'delivery.not-failed': 'conflict',
  'delivery.machine-not-attested': 'conflict',
  'delivery.no-certified-key': 'conflict',
  'delivery.no-ek': 'conflict',
  'delivery.no-group': 'conflict',
  'delivery.unsealable': 'invalid',
  'delivery.no-policy': 'conflict',
  'delivery.no-prewrap': 'conflict',
  'delivery.prewrap-pending': 'conflict',
  'delivery.sealer-unavailable': 'unavailable',
  'delivery.internal': 'unavailable',
} as const satisfies ErrorCodeTable;
export type DeliveryErrorCode = keyof typeof DELIVERY_ERROR_CODES;

export class DeliveryError extends domainErrorFor(DELIVERY_ERROR_CODES) {}
