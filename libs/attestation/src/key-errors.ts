import { domainErrorFor, type ErrorCodeTable } from '@rackseal/api-contracts';

/**
 * Every refusal of key certification (the README lists them with their HTTP status). Each is audited
 * (`key.refused` with the code) in the refusal's transaction and stores no key; the agent shows the
 * code and message.
 */
export const KEY_ERROR_CODES = {
  'key.malformed': 'invalid',
  'key.not-certify': 'invalid',
  'key.wrong-ak': 'invalid',
  'key.name-mismatch': 'invalid',
  'key.nonce-unknown': 'invalid',
  'key.nonce-reused': 'conflict',
  'key.nonce-expired': 'conflict',
  'key.attributes': 'invalid',
  'key.weak': 'invalid',
  'key.no-credential': 'conflict',
  'key.none': 'not-found',
} as const satisfies ErrorCodeTable;
export type KeyErrorCode = keyof typeof KEY_ERROR_CODES;

export class KeyError extends domainErrorFor(KEY_ERROR_CODES) {
  constructor(code: KeyErrorCode, message: string) {
    super(code, message);
    this.name = 'KeyError';
  }
}
