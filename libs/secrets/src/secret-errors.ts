import { domainErrorFor, type ErrorCodeTable } from '@rackseal/api-contracts';

/**
 * The refusals of the secret operations (create, rotate, show, list, versions), with their kinds
 * (the README lists them with their HTTP status). Every refusal of a create or a rotate is audited
 * (`secret.created` / `secret.rotated`, outcome refused, names and the code only) and writes nothing
 * else. Messages name fields and machines, never material.
 */
export const SECRET_ERROR_CODES = {
  'secret.invalid': 'invalid',
  'secret.invalid-name': 'invalid',
  'secret.invalid-binding': 'invalid',
  'secret.invalid-san-template': 'invalid',
  'secret.unknown-group': 'not-found',
  'secret.unknown-machine': 'not-found',
  'secret.not-found': 'not-found',
  'secret.exists': 'conflict',
  'secret.no-kubernetes-ca': 'conflict',
  'secret.machine-unfit': 'conflict',
  'secret.ca-expired': 'conflict',
  'secret.wrong-group': 'conflict',
  'secret.version-changed': 'conflict',
} as const satisfies ErrorCodeTable;
export type SecretErrorCode = keyof typeof SECRET_ERROR_CODES;

export class SecretError extends domainErrorFor(SECRET_ERROR_CODES) {}

/**
 * The refusals of the cluster CA operations (import, show, download). An import refusal is audited
 * (`ca.imported`, outcome refused) and never echoes the key or says which of its bytes were wrong.
 */
export const CA_ERROR_CODES = {
  'ca.invalid-kind': 'invalid',
  'ca.invalid': 'invalid',
  'ca.not-found': 'not-found',
  'ca.exists': 'conflict',
} as const satisfies ErrorCodeTable;
export type CaErrorCode = keyof typeof CA_ERROR_CODES;

export class CaError extends domainErrorFor(CA_ERROR_CODES) {}
