/**
 * The audit surface of the operator API (GET /v1/audit, GET /v1/audit/verify). libs/audit records
 * and verifies with these outcome names; the CLI reads the answers as these shapes.
 */

/** How an audited operation ended. */
export const AUDIT_OUTCOMES = ['success', 'refused', 'failure'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** GET /v1/audit: one record. `seq` (its leaf index + 1) and `leafHash` are null while it waits for the sequencer. */
export interface AuditRecordView {
  /** Append order, the paging cursor. */
  readonly id: number;
  readonly seq: number | null;
  /** ISO 8601, exactly as the leaf covers it: milliseconds (`…08.123Z`), or all six digits for a stored value with microseconds. */
  readonly recordedAt: string;
  readonly actor: string;
  readonly action: string;
  readonly subject: string;
  readonly outcome: AuditOutcome;
  readonly details: Record<string, unknown>;
  /** Lowercase hex SHA-256 Merkle leaf hash (RFC 9162 §2.1.1). */
  readonly leafHash: string | null;
}

/**
 * GET /v1/audit filters: exact matches on actor, action and subject (`machine:SN-1`), and a time
 * window `since` ≤ recordedAt < `until` (RFC 3339 instants with an offset, as parseInstant reads).
 * The bounds are the longest values AuditLog.append stores.
 */
export interface AuditListFilters {
  /** `oldest` (the default: append order, page with `after`) or `newest` first (page with `before`). */
  readonly order?: AuditListOrder;
  readonly actor?: string;
  readonly action?: string;
  readonly subject?: string;
  readonly since?: string;
  readonly until?: string;
}
export const AUDIT_LIST_ORDERS = ['oldest', 'newest'] as const;
export type AuditListOrder = (typeof AUDIT_LIST_ORDERS)[number];
export const AUDIT_ACTOR_MAX_LENGTH = 200;
export const AUDIT_ACTION_MAX_LENGTH = 200;
export const AUDIT_SUBJECT_MAX_LENGTH = 500;

/** A signed checkpoint (C2SP tlog-checkpoint in a signed note, Ed25519) and what it commits to. */
export interface AuditCheckpointView {
  readonly origin: string;
  readonly treeSize: number;
  /** Lowercase hex. */
  readonly rootHash: string;
  /** ISO 8601, the time the sequencer signed it. */
  readonly signedAt: string;
  /** Hex of the 4-byte signed-note key ID. */
  readonly keyId: string;
  /** The signed note exactly as signed: what `rackseal audit checkpoint --save` keeps. */
  readonly note: string;
}

/** GET /v1/audit/public-keys: every key that ever signed checkpoints. */
export interface AuditPublicKeyView {
  readonly keyId: string;
  readonly name: string;
  /** Base64 of the 32-byte Ed25519 public key. */
  readonly publicKey: string;
  /** The signed-note verifier key: `<name>+<key id>+<base64(0x01 ‖ public key)>`. */
  readonly verifierKey: string;
  readonly createdAt: string;
}

/** GET /v1/audit/records/:seq/proof?size=N: the record, its leaf and the path to the root of the checkpoint of size N. */
export interface AuditInclusionProofView {
  readonly record: AuditRecordView;
  readonly treeSize: number;
  /** Lowercase hex hashes, bottom up (RFC 9162 §2.1.3.1). */
  readonly proof: string[];
  readonly checkpoint: AuditCheckpointView;
}

/** GET /v1/audit/consistency?from=A&to=B: the proof that the tree of size B extends the tree of size A (RFC 9162 §2.1.4.1). */
export interface AuditConsistencyProofView {
  readonly from: number;
  readonly to: number;
  readonly proof: string[];
  /** The checkpoint of size `to`; the caller holds the one of size `from`. */
  readonly checkpoint: AuditCheckpointView;
}

/** What makes the audit tree fail verification. */
export type AuditProblemKind =
  /** A sequenced record is missing (deleted) or numbers skip. */
  | 'sequence-gap'
  /** A record no longer hashes to its stored leaf: edited, moved or inserted. */
  | 'content-mismatch'
  /** A stored subtree hash differs from the one recomputed from the records. */
  | 'node-mismatch'
  /** The tree head names another size or root than the records give. */
  | 'head-mismatch'
  /** A stored checkpoint commits to a root the records do not give. */
  | 'checkpoint-mismatch'
  /** A stored or saved checkpoint's signature does not verify. */
  | 'checkpoint-signature'
  /** The log does not extend the operator's saved checkpoint: history was rewritten or rolled back. */
  | 'not-extending';

/** GET /v1/audit/verify, and `rackseal audit verify` straight from PostgreSQL: the same verdict. */
export type AuditVerification =
  | {
      readonly ok: true;
      /** Sequenced records, i.e. the tree size. */
      readonly records: number;
      /** Records appended but not yet sequenced (not covered by the verdict). */
      readonly pending: number;
      readonly rootHash: string;
      /** Stored checkpoints whose signature and root were checked. */
      readonly checkpoints: number;
      /** With a saved checkpoint: the size it had, proven to be a prefix of today's tree. */
      readonly since?: { readonly treeSize: number; readonly rootHash: string };
    }
  | {
      readonly ok: false;
      readonly records: number;
      readonly problem: { readonly kind: AuditProblemKind; readonly seq: number | null; readonly message: string };
    };

/** What breaks the former hash chain (before the transparency log). */
export type AuditChainProblemKind =
  /** A record's content no longer hashes to its stored hash: it was edited. */
  | 'content-mismatch'
  /** A record's prev_hash is not the previous record's hash: records were removed, reordered or re-linked. */
  | 'broken-link'
  /** seq values are not 1, 2, 3, …: records were deleted or inserted out of band. */
  | 'sequence-gap'
  /** The newest record is not the one the chain head names: newest records were deleted or replaced. */
  | 'head-mismatch';

/** The former hash chain's verdict, checked once before its records become the first leaves. */
export type AuditChainVerification =
  | { readonly ok: true; readonly records: number; readonly headSeq: number; readonly headHash: string }
  | {
      readonly ok: false;
      readonly records: number;
      readonly problem: { readonly kind: AuditChainProblemKind; readonly seq: number; readonly message: string };
    };
