/**
 * PCR approvals (issue 13 item 5; docs/decisions.md "PCR approvals"): the signed PCR states a
 * machine's TPM accepts for `pcr-sealed` envelopes.
 *
 *   GET /node/v1/approvals   → ApprovalsResponse (signed with the node credential, like every node call)
 *
 * The control plane signs, for each allowed value set of the machine's group policy, aHash =
 * SHA-256(approvedPolicy ‖ policyRef) with its PCR-approval signing key (TPM 2.0 Part 3 §23.16).
 * The agent loads the key's public area with TPM2_LoadExternal in the owner hierarchy, checks the
 * signature with TPM2_VerifySignature (the ticket), runs PolicyPCR then PolicyAuthorize and unseals.
 * Binary fields are standard base64 of the TPM structure named (TPM 2.0 Library Part 2); digests
 * and Names are lowercase hex.
 */

/** Route below the node API base path (nodeApiPath). */
export const APPROVALS_ROUTE = 'approvals';

export interface PcrApproval {
  /** The allowed set's label in the group's policy. */
  readonly label: string;
  /** The PolicyPCR digest (SHA-256 session) of the set's values over `selection`, hex. */
  readonly approvedPolicy: string;
  /** TPMT_SIGNATURE over SHA-256(approvedPolicy ‖ policyRef), base64. */
  readonly signature: string;
}

export interface ApprovalsResponse {
  readonly group: string;
  /** The group's current approval epoch (≥ 1); policyRef derives from (group, epoch). */
  readonly epoch: number;
  /** approvalPolicyRef(group, epoch), hex. */
  readonly policyRef: string;
  /** The PCR bank and indexes PolicyPCR selects, as the group's policy names them. */
  readonly bank: string;
  readonly pcrs: readonly number[];
  /** The signing key's TPM2B_PUBLIC, base64 (for TPM2_LoadExternal). */
  readonly signingKeyPublic: string;
  /** Its Name, hex: what the sealed objects' PolicyAuthorize binds. */
  readonly signingKeyName: string;
  /** One per allowed set of the current epoch; empty when the group has no policy. */
  readonly approvals: readonly PcrApproval[];
}
