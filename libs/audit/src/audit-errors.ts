import { domainErrorFor, type ErrorCodeTable } from '@rackseal/api-contracts';

/** Every code this library throws, with its kind (libs/audit/README.md lists them with their HTTP status). */
export const AUDIT_ERROR_CODES = {
  'audit.not-sequenced': 'not-found',
  'audit.no-checkpoint': 'not-found',
  'audit.invalid-size': 'invalid',
} as const satisfies ErrorCodeTable;
export type AuditErrorCode = keyof typeof AUDIT_ERROR_CODES;

/** A refusal of this library, carrying one of AUDIT_ERROR_CODES. */
export class AuditError extends domainErrorFor(AUDIT_ERROR_CODES) {}
