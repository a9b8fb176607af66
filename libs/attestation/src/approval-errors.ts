import { domainErrorFor, type ErrorCodeTable } from '@rackseal/api-contracts';

/**
 * The refusals of the PCR approval reads (PcrApprovals; the README lists them with their HTTP
 * status). A machine's refusals are audited `pcr-approvals.refused` with the code; a bad group name
 * on the operator route is input refused before anything is decided, not audited.
 */
export const APPROVAL_ERROR_CODES = {
  'approval.invalid-group': 'invalid',
  'approval.machine-quarantined': 'conflict',
  'approval.no-group': 'conflict',
} as const satisfies ErrorCodeTable;
export type ApprovalErrorCode = keyof typeof APPROVAL_ERROR_CODES;

export class ApprovalError extends domainErrorFor(APPROVAL_ERROR_CODES) {
  constructor(code: ApprovalErrorCode, message: string) {
    super(code, message);
    this.name = 'ApprovalError';
  }
}
