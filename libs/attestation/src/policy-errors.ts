import { domainErrorFor, type ErrorCodeTable } from '@rackseal/api-contracts';

/**
 * The refusals of the PCR policy operations (`policy set|show|promote|remove`, PcrPolicies), with
 * their kinds (the README lists them with their HTTP status). Input refused before anything is
 * decided (a bad group name, a body parsePcrPolicy refuses, an unknown group or machine) is not
 * audited; a promotion refused because of the canary's state is (`policy.promoted`, outcome refused).
 */
export const POLICY_ERROR_CODES = {
  'policy.invalid-group': 'invalid',
  'policy.invalid': 'invalid',
  'policy.not-found': 'not-found',
  'policy.group-not-found': 'not-found',
  'policy.machine-not-in-group': 'conflict',
  'policy.machine-revoked': 'conflict',
  'policy.no-evidence': 'conflict',
  'policy.evidence-changed': 'conflict',
  'policy.bank-mismatch': 'conflict',
  'policy.evidence-incomplete': 'conflict',
  'policy.shape-conflict': 'conflict',
  'policy.runtime-capture-incomplete': 'conflict',
} as const satisfies ErrorCodeTable;
export type PolicyErrorCode = keyof typeof POLICY_ERROR_CODES;

/** A refusal of a PCR policy operation, carrying one of POLICY_ERROR_CODES. */
export class PolicyError extends domainErrorFor(POLICY_ERROR_CODES) {}
