/**
 * The audit surface of the operator API (GET /v1/audit, GET /v1/audit/verify). libs/audit records
 * and verifies with these outcome names; the CLI reads the answers as these shapes.
 */

/** How an audited operation ended. */
export const AUDIT_OUTCOMES = ['success', 'refused', 'failure'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** GET /v1/audit: one record of the hash chain. Hashes are lowercase hex SHA-256. */
export interface AuditRecordView {
  readonly seq: number;
  /** ISO 8601. */
  readonly recordedAt: string;
  readonly actor: string;
  readonly action: string;
  readonly subject: string;
  readonly outcome: AuditOutcome;
  readonly details: Record<string, unknown>;
  /** The previous record's hash. */
  readonly prevHash: string;
  readonly hash: string;
}

/** What breaks a chain (docs/architecture.md: the audit log is a hash chain with a head). */
export type AuditChainProblemKind =
  /** A record's content no longer hashes to its stored hash: it was edited. */
  | 'content-mismatch'
  /** A record's prev_hash is not the previous record's hash: records were removed, reordered or re-linked. */
  | 'broken-link'
  /** seq values are not 1, 2, 3, …: records were deleted or inserted out of band. */
  | 'sequence-gap'
  /** The newest record is not the one the chain head names: newest records were deleted or replaced. */
  | 'head-mismatch';

/** GET /v1/audit/verify, and `rackseal audit verify` straight from PostgreSQL: the same verdict. */
export type AuditChainVerification =
  | { readonly ok: true; readonly records: number; readonly headSeq: number; readonly headHash: string }
  | {
      readonly ok: false;
      readonly records: number;
      readonly problem: { readonly kind: AuditChainProblemKind; readonly seq: number; readonly message: string };
    };
