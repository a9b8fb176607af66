import type { AuditOutcome } from '@rackseal/api-contracts';
import type { JsonValue } from './canonical-json';

// The outcome names are part of the operator API (GET /v1/audit): declared in its contract.
export { AUDIT_OUTCOMES, type AuditOutcome } from '@rackseal/api-contracts';

/** What a caller records: who did what to which thing, how it ended, and non-secret details. */
export interface AuditEntry {
  /** e.g. `operator:alice`, `machine:<ekPubHash>`, `system:worker`. */
  readonly actor: string;
  /** Dotted verb, e.g. `ek.refused`, `secret.released`, `audit.chain-verified`. */
  readonly action: string;
  /** The thing acted on, e.g. `machine:SN123`; empty when there is none. */
  readonly subject: string;
  readonly outcome: AuditOutcome;
  readonly details: { readonly [key: string]: JsonValue };
}

/** A record as appended: pending until the sequencer gives it a place in the tree (audit-sequencer.ts). */
export interface AuditRecord extends AuditEntry {
  /** Append order; not a tree position. */
  readonly id: number;
  readonly recordedAt: Date;
}
