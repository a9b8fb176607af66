import { type ErrorKind, type GenericErrorCode } from '@rackseal/api-contracts';
import { API_TOKEN_ERROR_CODES } from '@rackseal/api-tokens';
import { APPROVAL_ERROR_CODES, ATTESTATION_ERROR_CODES, KEY_ERROR_CODES, POLICY_ERROR_CODES } from '@rackseal/attestation';
import { AUDIT_ERROR_CODES } from '@rackseal/audit';
import { DELIVERY_ERROR_CODES } from '@rackseal/deliveries';
import { INVENTORY_ERROR_CODES } from '@rackseal/inventory';
import { MACHINE_ERROR_CODES } from '@rackseal/machines';
import { CA_ERROR_CODES, SECRET_ERROR_CODES } from '@rackseal/secrets';
import { VENDOR_CA_ERROR_CODES } from '@rackseal/vendor-cas';
import { NODE_REQUEST_ERROR_CODES } from '../node-api/node-request-errors';

/**
 * The HTTP status of each kind of domain error. A Record over every kind: a new kind does not
 * compile until it has its status here.
 */
export const KIND_STATUS: Readonly<Record<ErrorKind, number>> = {
  invalid: 400,
  // A node request whose signature or credential does not authenticate it (RFC 9110 §15.5.2).
  unauthenticated: 401,
  'not-found': 404,
  conflict: 409,
  'too-large': 413,
  // RFC 9110 §15.5.9: the server closes the connection after a 408 (the filter sends Connection: close).
  timeout: 408,
  // RFC 9110 §15.6.4: with Retry-After when the error says when to retry.
  unavailable: 503,
};

/**
 * Every domain error code the control plane answers with, and its kind. A DomainError whose code is
 * not here is a bug (a library added a code the server does not know): it becomes a logged 500
 * rather than a status guessed from the error itself. Each library's README lists the same codes
 * (test/error-codes.test.ts checks both). The node request guard's `node.*` codes are the control
 * plane's own (README, "Node API").
 */
export const DOMAIN_ERROR_CODES: Readonly<Record<string, ErrorKind>> = {
  ...API_TOKEN_ERROR_CODES,
  ...APPROVAL_ERROR_CODES,
  ...ATTESTATION_ERROR_CODES,
  ...AUDIT_ERROR_CODES,
  ...INVENTORY_ERROR_CODES,
  ...KEY_ERROR_CODES,
  ...MACHINE_ERROR_CODES,
  ...POLICY_ERROR_CODES,
  ...SECRET_ERROR_CODES,
  ...CA_ERROR_CODES,
  ...DELIVERY_ERROR_CODES,
  ...NODE_REQUEST_ERROR_CODES,
  ...VENDOR_CA_ERROR_CODES,
};

/** The code of a refusal that comes from no library (validation, auth, routing), by its HTTP status. */
export function genericCodeOf(status: number, routeMiss: boolean): GenericErrorCode {
  switch (status) {
    case 400:
      return 'request.invalid';
    case 401:
      return 'auth.unauthenticated';
    case 403:
      return 'auth.forbidden';
    case 404:
      return routeMiss ? 'route.not-found' : 'request.refused';
    case 408:
      return 'request.timeout';
    case 409:
      return 'request.conflict';
    case 413:
      return 'request.too-large';
    case 415:
      return 'request.unsupported-media-type';
    case 429:
      return 'request.rate-limited';
    case 503:
      return 'service.unavailable';
    default:
      return status >= 500 ? 'internal' : 'request.refused';
  }
}
