import { domainErrorFor, type ErrorCodeTable } from '@rackseal/api-contracts';

/**
 * Every refusal of the enrollment protocol, with its kind (the README lists them with their HTTP
 * status). Each is audited (`attestation.refused` with the code) and issues nothing; the agent shows
 * the code and message. Which refusals change the machine's state: README "Refusals and the machine".
 */
export const ATTESTATION_ERROR_CODES = {
  'attestation.malformed': 'invalid',
  'attestation.unknown-ek': 'not-found',
  'attestation.ek-untrusted': 'invalid',
  'attestation.ek-mismatch': 'invalid',
  'attestation.machine-revoked': 'conflict',
  'attestation.ak-rejected': 'invalid',
  'attestation.unknown-registration': 'not-found',
  'attestation.registration-finished': 'conflict',
  'attestation.registration-expired': 'conflict',
  'attestation.activation-failed': 'invalid',
  'attestation.quote-invalid': 'invalid',
  'attestation.nonce-mismatch': 'invalid',
  'attestation.selection-mismatch': 'invalid',
  'attestation.pcr-values-mismatch': 'invalid',
  'attestation.event-log-mismatch': 'invalid',
  'attestation.policy-mismatch': 'conflict',
  'attestation.no-policy': 'conflict',
  'attestation.ima-pcr-missing': 'invalid',
  'attestation.ima-restart': 'conflict',
  'attestation.runtime-policy-violation': 'conflict',
} as const satisfies ErrorCodeTable;
export type AttestationErrorCode = keyof typeof ATTESTATION_ERROR_CODES;

/**
 * A refusal of this library. `lines` (a policy mismatch's explanation) travel to the client with the
 * message, one entry each, so the agent can show why its machine was quarantined.
 */
export class AttestationError extends domainErrorFor(ATTESTATION_ERROR_CODES) {
  constructor(
    code: AttestationErrorCode,
    message: string,
    readonly lines: readonly string[] = [],
  ) {
    super(code, message);
    this.name = 'AttestationError';
  }

  override publicMessage(): string | readonly string[] {
    return this.lines.length === 0 ? this.message : [this.message, ...this.lines];
  }
}
