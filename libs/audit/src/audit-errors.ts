import { domainErrorFor, type ErrorCodeTable } from '@rackseal/api-contracts';

/** Every code this library throws, with its kind (libs/audit/README.md lists them with their HTTP status). */
export const AUDIT_ERROR_CODES = {
  'audit.not-sequenced': 'not-found',
  'audit.no-checkpoint': 'not-found',
  'audit.invalid-size': 'invalid',
  'audit.busy': 'unavailable',
} as const satisfies ErrorCodeTable;
export type AuditErrorCode = keyof typeof AUDIT_ERROR_CODES;

/** A refusal of this library, carrying one of AUDIT_ERROR_CODES. */
export class AuditError extends domainErrorFor(AUDIT_ERROR_CODES) {}

/**
 * A verification recomputes the whole tree (tens of seconds for a log of 10^5–10^6 records); one at a
 * time per process, so `audit:read` holders cannot stack them up and starve the pool.
 */
export class AuditVerificationBusyError extends AuditError {
  constructor() {
    super('audit.busy', 'an audit verification is already running in this process; retry when it has finished', { retryAfterSeconds: 10 });
    this.name = 'AuditVerificationBusyError';
  }
}
